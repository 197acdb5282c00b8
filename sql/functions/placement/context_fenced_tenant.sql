-- tenancy.context_fenced_tenant: whether a tenant's writes are fenced, read so that a fence committed after the snapshot is never missed.

-- Called by tenancy.establish_context for every context. Under READ COMMITTED the fence is read
-- with a fresh snapshot (this function is volatile); under REPEATABLE READ and SERIALIZABLE the
-- row is read FOR SHARE, so a fence committed after the transaction's snapshot raises 40001
-- instead of being missed (the row lock is released at once, as in
-- tenancy.context_preconditions). No lock is kept: a fence waits for the transactions running
-- when it committed (tenancy.fence_transactions), not for a lock contexts hold.
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
'pgtenancy internal: whether the tenant''s writes are fenced (tenancy.fence_tenant); under '
'REPEATABLE READ or SERIALIZABLE a fence committed after the snapshot raises 40001.';

revoke all on function tenancy.context_fenced_tenant(uuid) from public;
