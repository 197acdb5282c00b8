-- tenancy.sign_context_mac: sign the context about to be set into tenancy.context_mac, when the Citus flavour's form is on.

-- Called by tenancy.establish_context just before it writes tenancy.context. Without the key row
-- (tenancy.configure_context_mac) it does nothing. Otherwise it writes, with SET LOCAL as a
-- statement of its own (the one form Citus forwards to the workers, with
-- citus.propagate_set_commands = 'local'; set_config is never forwarded):
--     m1|<expiry, epoch seconds>|<nonce, 32 hex>|<HMAC-SHA-256, 64 hex>
-- the HMAC over 'm1|<expiry>|<nonce>|' followed by the context value itself
-- (tenancy.context_value: tenant, role, key and user), in UTF-8. tenancy.context_tenant_id_mac
-- checks it against tenancy.context. A support context (support/...) is never signed: its proof
-- is the coordinator's transaction id, which a worker cannot check; its value is emptied, so a
-- signature of an earlier context of the transaction cannot outlive it.
create or replace function tenancy.sign_context_mac(
    p_tenant_id uuid, p_user_id text, p_role text, p_key text
)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_secret bytea;
    v_lifetime integer;
    v_head text;
begin
    select k.secret, k.lifetime_seconds into v_secret, v_lifetime
    from tenancy.context_mac_keys as k
    where k.singleton;
    if v_secret is null then
        return;
    end if;
    if p_role like 'support/%' then
        execute 'set local tenancy.context_mac = ''''';
        return;
    end if;
    v_head := format(
        'm1|%s|%s|',
        floor(extract(epoch from clock_timestamp()))::bigint + v_lifetime,
        replace(gen_random_uuid()::text, '-', '')
    );
    execute format(
        'set local tenancy.context_mac = %L',
        v_head || encode(
            tenancy.hmac_sha256(
                convert_to(v_head || tenancy.context_value(p_tenant_id, p_role, p_key, p_user_id), 'UTF8'),
                v_secret
            ),
            'hex'
        )
    );
end
$$;

comment on function tenancy.sign_context_mac(uuid, text, text, text) is
'pgtenancy internal: when the Citus flavour''s context form is on, writes tenancy.context_mac '
'(expiry, nonce, HMAC-SHA-256 over them and the context value) with SET LOCAL; nothing otherwise.';

revoke all on function tenancy.sign_context_mac(uuid, text, text, text) from public;
