-- tenancy.unfence_tenant: lift a tenant's write fence on this database.

create or replace function tenancy.unfence_tenant(p_tenant_id uuid)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform tenancy.require_tenant_not_deleted(p_tenant_id);  -- P0002 unknown, 55000 deleted
    update tenancy.tenants as t
    set fenced_at = null, fence_reason = null
    where t.id = p_tenant_id and t.fenced_at is not null;
    return found;
end
$$;

comment on function tenancy.unfence_tenant(uuid) is
'For tenancy_admin: lifts the tenant''s write fence here (tenancy.fence_tenant); contexts set '
'from then on write again. True when a fence was lifted. P0002 for an unknown tenant, 55000 for '
'a deleted one.';

revoke all on function tenancy.unfence_tenant(uuid) from public;
grant execute on function tenancy.unfence_tenant(uuid) to tenancy_admin;
