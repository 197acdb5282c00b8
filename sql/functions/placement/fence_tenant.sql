-- tenancy.fence_tenant: fence a tenant's writes on this database.

-- Once this transaction commits, a context of the tenant set from then on reads but writes
-- nothing here (TN021 from each tenant table's write trigger, and from pgtenancy's own functions),
-- whoever the client. A transaction that set a context before may still write until it ends: the
-- fence is complete once every transaction running when it committed has ended
-- (tenancy.fence_transactions lists them, tenancy.fence_pending tells which still run; pgtenancy
-- tenant move waits for them before it drains replication). Contexts take no lock for this:
-- nothing an application does can hold a fence back but keeping a transaction open, and that
-- only delays the move. Fencing a fenced tenant changes nothing and returns the time of its fence.
-- That time (tenants.fenced_at) is read inside this transaction, before its commit: a lower bound
-- of the moment the fence takes effect (pgtenancy tenant move records a time after the commit).
create or replace function tenancy.fence_tenant(p_tenant_id uuid, p_reason text)
returns timestamptz
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_fenced_at timestamptz;
begin
    if p_reason is null or length(btrim(p_reason)) = 0 or length(p_reason) > 500 then
        raise exception using
            errcode = '22023',
            message = format('invalid fence reason %L: 1 to 500 characters required', left(p_reason, 100));
    end if;
    perform tenancy.require_tenant_not_deleted(p_tenant_id);  -- P0002 unknown, 55000 deleted
    update tenancy.tenants as t
    set fenced_at = clock_timestamp(), fence_reason = p_reason
    where t.id = p_tenant_id and t.fenced_at is null;
    select t.fenced_at into v_fenced_at from tenancy.tenants as t where t.id = p_tenant_id;
    return v_fenced_at;
end
$$;

comment on function tenancy.fence_tenant(uuid, text) is
'For tenancy_admin (tenant moves): fences the tenant''s writes on this database from the commit '
'of this transaction: its contexts read but every write to a tenant table is refused with TN021. '
'Transactions running at the commit may finish their writes: tenancy.fence_transactions and '
'tenancy.fence_pending tell when they have ended. Returns the time of the fence; a fenced tenant '
'keeps its fence. 22023 for a bad reason, P0002 for an unknown tenant, 55000 for a deleted one.';

revoke all on function tenancy.fence_tenant(uuid, text) from public;
grant execute on function tenancy.fence_tenant(uuid, text) to tenancy_admin;
