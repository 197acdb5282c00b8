-- tenancy.context_tenant_id_mac: the policy key of the Citus flavour, the current tenant when the signed context is valid and its role allowed.

-- The Citus flavour's policies compare the tenant column with this, without a sub-select (Citus
-- refuses policies with subqueries on distributed tables):
--     tenant_id operator(pg_catalog.=) tenancy.context_tenant_id_mac(array[...])
-- so it runs once per index scan when the comparison is an index condition, and once per row of a
-- sequential scan (bench/citus_context.py, docs/citus.md). It checks what any node can check on
-- its own: tenancy.context (the context value, 'v3|tenant|role|...') and tenancy.context_mac
-- ('m1|<expiry>|<nonce>|<hmac>', tenancy.sign_context_mac), both written with SET LOCAL, which
-- Citus forwards to the workers. In order, the cheap tests first: both present; the role one of
-- p_roles (a service context passes any list; a support context is never signed); the expiry
-- after the start of the transaction (a context is good for a whole transaction that began in
-- time, on every node; a value replayed in a transaction that begins later is refused); then the
-- HMAC-SHA-256 under the key of tenancy.context_mac_keys over the signature's head and the whole
-- context value. A value written by hand, or a signature of another value, fails; a value and
-- signature replayed within their lifetime give the same tenant, role and user they were signed
-- for, no other (docs/citus.md).
-- SECURITY DEFINER (the key is tenancy_owner's alone), search_path pinned, and every name
-- schema-qualified as well. No exception block; parallel safe (it reads settings, which parallel
-- workers share, and one row).
create or replace function tenancy.context_tenant_id_mac(p_roles text[])
returns uuid
language plpgsql
stable
security definer
parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    v_value pg_catalog.text := pg_catalog.current_setting('tenancy.context', true);
    v_mac pg_catalog.text := pg_catalog.current_setting('tenancy.context_mac', true);
    v_role pg_catalog.text;
    v_expiry pg_catalog.text;
    v_secret pg_catalog.bytea;
begin
    if v_value is null or v_mac is null
        or v_value operator(pg_catalog.!~~) 'v3|%' or v_mac operator(pg_catalog.!~~) 'm1|%' then
        return null;
    end if;
    v_role := pg_catalog.split_part(v_value, '|', 3);
    if not (
        p_roles is null
        or v_role operator(pg_catalog.=) 'service'
        or v_role operator(pg_catalog.=) any(p_roles)
    ) then
        return null;
    end if;
    v_expiry := pg_catalog.split_part(v_mac, '|', 2);
    -- Digits only, 1 to 12 of them (string functions: a regular expression with a bounded
    -- repetition costs a call several times the rest of the check).
    if pg_catalog.length(v_expiry) operator(pg_catalog.<) 1 or pg_catalog.length(v_expiry) operator(pg_catalog.>) 12
        or pg_catalog.ltrim(v_expiry, '0123456789') operator(pg_catalog.<>) ''
        or pg_catalog.to_timestamp(v_expiry::pg_catalog.float8)
        operator(pg_catalog.<=) pg_catalog.transaction_timestamp() then
        return null;
    end if;
    select k.secret into v_secret from tenancy.context_mac_keys as k where k.singleton;
    if v_secret is null
        or pg_catalog.split_part(v_mac, '|', 4) operator(pg_catalog.<>) pg_catalog.encode(
            tenancy.hmac_sha256(
                pg_catalog.convert_to(pg_catalog.left(v_mac, -64) operator(pg_catalog.||) v_value, 'UTF8'),
                v_secret
            ),
            'hex'
        ) then
        return null;
    end if;
    return pg_catalog.split_part(v_value, '|', 2)::pg_catalog.uuid;
end
$$;

comment on function tenancy.context_tenant_id_mac(text[]) is
'The current tenant id when the signed context (tenancy.context_mac) is valid for tenancy.context '
'(unexpired at the start of the transaction, HMAC-SHA-256 under the current key) and its role is '
'one of p_roles (NULL: any role; a service context passes any list); NULL otherwise. The Citus '
'flavour''s policies call it without a sub-select; a Citus worker checks it on its own.';

revoke all on function tenancy.context_tenant_id_mac(text[]) from public;
grant execute on function tenancy.context_tenant_id_mac(text[])
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
