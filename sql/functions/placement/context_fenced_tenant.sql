-- tenancy.context_fenced_tenant: take the tenant's fence lock in shared mode, then tell whether its writes are fenced.

-- Called by tenancy.establish_context for every context. The shared advisory lock (class
-- 1886151022, key uuid_hash(tenant)) is held until the transaction ends: tenancy.fence_tenant
-- takes it exclusively, so it waits for every transaction that set a context of the tenant before
-- the fence, and a context set while the fence is being set waits for it. Under READ COMMITTED
-- the fence is then read with a fresh snapshot; under REPEATABLE READ and SERIALIZABLE the row
-- is read FOR SHARE, so a fence committed after the transaction's snapshot raises 40001 instead
-- of being missed (the row lock is released at once, as in tenancy.context_preconditions).
create or replace function tenancy.context_fenced_tenant(p_tenant_id uuid)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_fenced boolean;
begin
    perform pg_advisory_xact_lock_shared(1886151022, uuid_hash(p_tenant_id));
    if current_setting('transaction_isolation') = 'read committed' then
        select t.fenced_at is not null into v_fenced from tenancy.tenants as t where t.id = p_tenant_id;
        return coalesce(v_fenced, false);
    end if;
    begin
        select t.fenced_at is not null into v_fenced
        from tenancy.tenants as t
        where t.id = p_tenant_id
        for share;
        raise exception using errcode = 'TN000', message = 'release the row lock';
    exception when sqlstate 'TN000' then
        null;  -- v_fenced keeps the value read above
    end;
    return coalesce(v_fenced, false);
end
$$;

comment on function tenancy.context_fenced_tenant(uuid) is
'pgtenancy internal: takes the tenant''s fence lock in shared mode until the transaction ends '
'and returns whether the tenant''s writes are fenced (tenancy.fence_tenant); under REPEATABLE '
'READ or SERIALIZABLE a fence committed after the snapshot raises 40001.';

revoke all on function tenancy.context_fenced_tenant(uuid) from public;
