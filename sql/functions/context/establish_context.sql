-- tenancy.establish_context: write a verified context for the rest of the transaction.

create or replace function tenancy.establish_context(
    p_tenant_id uuid, p_user_id text, p_role text, p_key text
)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_context text;
    v_fenced boolean;
begin
    if current_setting('transaction_read_only') = 'on' then
        raise exception using
            errcode = '25006',
            message = 'a tenant context needs a read-write transaction (it records its key with setval)',
            hint = 'Start the transaction without READ ONLY; reads stay reads. Hot standbys cannot set a context.';
    end if;
    -- The write fence (tenancy.fence_tenant): whether the tenant's writes are fenced here. Under
    -- READ COMMITTED this statement's fresh snapshot sees a committed fence; under REPEATABLE
    -- READ and SERIALIZABLE the row is read FOR SHARE, so a fence committed after the
    -- transaction's snapshot raises 40001 instead of being missed (the row lock is released at
    -- once, as in tenancy.context_preconditions). A fence waits for the transactions running when
    -- it commits (tenancy.fence_transactions): contexts take no lock for it.
    if current_setting('transaction_isolation') = 'read committed' then
        select t.fenced_at is not null into v_fenced from tenancy.tenants as t where t.id = p_tenant_id;
    else
        begin
            select t.fenced_at is not null into v_fenced
            from tenancy.tenants as t
            where t.id = p_tenant_id
            for share;
            raise exception using errcode = 'TN000', message = 'release the row lock';
        exception when sqlstate 'TN000' then
            null;  -- v_fenced keeps the value read above
        end;
    end if;
    v_context := tenancy.context_value(p_tenant_id, p_role, p_key, p_user_id);
    -- Tenant and role, bound to this transaction: what every policy checks. A support role
    -- (tenancy.open_support_access) has a key of its own, over the whole role.
    if p_role like 'support/%' then
        perform setval('tenancy.context_key'::regclass, tenancy.support_key_of(p_tenant_id, p_role), true);
    else
        perform setval('tenancy.context_key'::regclass, tenancy.context_key_of(p_tenant_id, p_role), true);
    end if;
    -- The whole value (key and user included), bound to this transaction: what current_user_id() and
    -- context_tenant_key() check.
    -- The fingerprint's 8 bytes, big-endian, as the sequence value (int8send gives them back).
    perform setval(
        'tenancy.context_fingerprint'::regclass,
        ('x' || encode(tenancy.context_fingerprint_of(v_context), 'hex'))::bit(64)::bigint,
        true
    );
    -- The key again when the context may write, its complement while the tenant is fenced:
    -- tenancy.tg_require_context refuses every write unless the two agree (TN021).
    perform setval(
        'tenancy.context_fence'::regclass,
        case when coalesce(v_fenced, false) then ~currval('tenancy.context_key'::regclass)
            else currval('tenancy.context_key'::regclass) end,
        true
    );
    -- setval(..., false) changes the value every session can read (pg_sequence_last_value) but not
    -- this session's currval(): other sessions do not learn which tenant set a context last.
    perform setval('tenancy.context_key'::regclass, 0, false);
    perform setval('tenancy.context_fingerprint'::regclass, 0, false);
    perform setval('tenancy.context_fence'::regclass, 0, false);
    -- A session-level value left by an earlier borrower would come back once this transaction
    -- ends; replace it with the empty value (no context) first.
    perform set_config('tenancy.context', '', false);
    -- This session has a context key now: context_tenant_id may call currval().
    perform set_config('tenancy.context_keyed', 'on', false);
    -- SET LOCAL (not set_config) so that poolers and Citus see an ordinary local setting.
    perform tenancy.sign_context_mac(p_tenant_id, p_user_id, p_role, p_key);
    execute format('set local tenancy.context = %L', v_context);
end
$$;

comment on function tenancy.establish_context(uuid, text, text, text) is
'pgtenancy internal: sets the transaction''s context after the caller has verified it.';

revoke all on function tenancy.establish_context(uuid, text, text, text) from public;
