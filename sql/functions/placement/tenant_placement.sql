-- tenancy.tenant_placement: where a tenant's rows live, for trusted routers.

create or replace function tenancy.tenant_placement(p_tenant_id uuid)
returns table (
    tenant_id uuid,
    placement text,
    alias text,
    region text,
    state text,
    epoch bigint,
    fenced boolean,
    status text
)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
    select t.id, t.placement, p.alias, p.region::text, p.state, t.placement_epoch, t.fenced_at is not null, t.status
    from tenancy.tenants as t
    inner join tenancy.placements as p on p.name = t.placement
    where t.id = p_tenant_id
$$;

comment on function tenancy.tenant_placement(uuid) is
'For tenancy_service (routers) and tenancy_admin: the tenant''s placement, its connection alias, '
'region and state, the placement epoch (bumped by every change), whether the tenant''s writes are '
'fenced here, and its status. No row for an unknown tenant.';

revoke all on function tenancy.tenant_placement(uuid) from public;
grant execute on function tenancy.tenant_placement(uuid) to tenancy_service, tenancy_admin;
