-- tenancy.fence_tenant: fence a tenant's writes on this database, after every transaction holding a context of it has ended.

-- The exclusive fence lock waits for every transaction that set a context of the tenant (each
-- holds the lock in shared mode: tenancy.context_fenced_tenant), at most p_wait (then 55P03 and
-- nothing changes: call again). Contexts set while it waits queue behind it. Once this
-- transaction commits, every context of the tenant reads but no write of it is accepted here
-- (TN021 from each tenant table's write trigger), whoever the client. Fencing a fenced tenant
-- changes nothing and returns the time of its fence.
create or replace function tenancy.fence_tenant(
    p_tenant_id uuid, p_reason text, p_wait interval default '5 seconds'
)
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
    if p_wait is null or p_wait < interval '0' or p_wait > interval '10 minutes' then
        raise exception using
            errcode = '22023',
            message = format('invalid fence wait %s: from 0 to 10 minutes', coalesce(p_wait::text, 'NULL'));
    end if;
    -- The fence lock first, holding no row lock while it waits: a transaction with a context of
    -- the tenant that locks the tenant's row (member management does) must not wait for this one.
    perform set_config('lock_timeout', (greatest(extract(epoch from p_wait) * 1000, 1))::bigint::text, true);
    perform pg_advisory_xact_lock(1886151022, uuid_hash(p_tenant_id));  -- 55P03 after p_wait
    perform set_config('lock_timeout', '0', true);
    perform tenancy.require_tenant_not_deleted(p_tenant_id);  -- P0002 unknown, 55000 deleted
    update tenancy.tenants as t
    set fenced_at = clock_timestamp(), fence_reason = p_reason
    where t.id = p_tenant_id and t.fenced_at is null;
    select t.fenced_at into v_fenced_at from tenancy.tenants as t where t.id = p_tenant_id;
    return v_fenced_at;
end
$$;

comment on function tenancy.fence_tenant(uuid, text, interval) is
'For tenancy_admin (tenant moves): fences the tenant''s writes on this database once every '
'transaction holding a context of it has ended (waiting at most p_wait, then 55P03). From then on '
'its contexts read but every write to a tenant table is refused with TN021. Returns the time of '
'the fence; a fenced tenant keeps its fence. 22023 for a bad reason or wait, P0002 for an '
'unknown tenant, 55000 for a deleted one.';

revoke all on function tenancy.fence_tenant(uuid, text, interval) from public;
grant execute on function tenancy.fence_tenant(uuid, text, interval) to tenancy_admin;
