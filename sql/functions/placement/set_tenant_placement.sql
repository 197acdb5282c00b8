-- tenancy.set_tenant_placement: record that a tenant's rows live in another placement (a move's flip).

-- Checks the tenant's region against the placement's (TN022) and bumps the tenant's placement
-- epoch, so routers that cached the old placement re-read it. Moves the rows of nobody: the tenant
-- move (pgtenancy tenant move) calls it once the rows are on the destination.
create or replace function tenancy.set_tenant_placement(p_tenant_id uuid, p_placement text)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_region text;
    v_epoch bigint;
begin
    perform tenancy.require_tenant_not_deleted(p_tenant_id);  -- P0002 unknown, 55000 deleted
    select s.region into v_region from tenancy.tenant_settings as s where s.tenant_id = p_tenant_id for share;
    perform tenancy.require_placement_region(p_tenant_id, p_placement, v_region);
    update tenancy.tenants as t
    set placement = p_placement, placement_epoch = t.placement_epoch + 1, updated_at = now()
    where t.id = p_tenant_id and t.placement is distinct from p_placement
    returning t.placement_epoch into v_epoch;
    if v_epoch is null then
        select t.placement_epoch into v_epoch from tenancy.tenants as t where t.id = p_tenant_id;
    end if;
    return v_epoch;
end
$$;

comment on function tenancy.set_tenant_placement(uuid, text) is
'For tenancy_admin: records that the tenant''s rows live in placement p_placement and bumps its '
'placement epoch (routers re-read); returns the epoch. Moves no rows (pgtenancy tenant move '
'does). P0002 for an unknown tenant or placement, 55000 for a deleted tenant, TN022 when the '
'placement''s region is not the tenant''s.';

revoke all on function tenancy.set_tenant_placement(uuid, text) from public;
grant execute on function tenancy.set_tenant_placement(uuid, text) to tenancy_admin;
