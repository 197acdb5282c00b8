-- tenancy.set_tenant_region: place a tenant in a data-residency region, recording the change.

-- Every change is a row of tenancy.tenant_region_changes (old region, new region, the login,
-- the time), for the placement work that moves data. The tenant's settings row is locked before
-- the old region is read, so concurrent changes are recorded one after the other, each with the
-- region the previous one set (under REPEATABLE READ and SERIALIZABLE a change committed after
-- the snapshot raises 40001 instead). Setting the region a tenant already has records nothing.
create or replace function tenancy.set_tenant_region(p_tenant_id uuid, p_region text)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_region tenancy.region_tag;
    v_old text;
begin
    if p_region is not null then
        v_region := tenancy.checked_region(p_region);
        -- Kept until commit, so configure_regions cannot remove the region meanwhile.
        perform 1 from tenancy.regions as r where r.region = v_region for key share;
        if not found then
            raise exception using
                errcode = '22023',
                message = format('unknown region %L', p_region),
                hint = format(
                    'Configured regions: %s (tenancy.configure_regions()).',
                    coalesce(
                        (select string_agg(r.region, ', ' order by r.region) from tenancy.regions as r),
                        'none'
                    )
                );
        end if;
    end if;
    perform tenancy.require_tenant_not_deleted(p_tenant_id);  -- P0002 unknown, 55000 deleted
    insert into tenancy.tenant_settings (tenant_id) values (p_tenant_id)
    on conflict (tenant_id) do nothing;
    select s.region into v_old
    from tenancy.tenant_settings as s
    where s.tenant_id = p_tenant_id
    for update;
    if v_old is not distinct from v_region then
        return;
    end if;
    if v_region is not null then
        -- Data residency: the placement holding the tenant's rows must be of its region (TN022).
        perform tenancy.require_placement_region(
            p_tenant_id, (select t.placement from tenancy.tenants as t where t.id = p_tenant_id), v_region
        );
    end if;
    update tenancy.tenant_settings as s
    set region = v_region, updated_at = now()
    where s.tenant_id = p_tenant_id;
    insert into tenancy.tenant_region_changes (tenant_id, old_region, new_region, changed_by)
    values (p_tenant_id, v_old, v_region, session_user);
end
$$;

comment on function tenancy.set_tenant_region(uuid, text) is
'For tenancy_admin: place a tenant in a region of tenancy.regions (NULL: none). Each change is '
'recorded in tenancy.tenant_region_changes with the old and new region, the login and the time. '
'22023 for an invalid or unconfigured region, P0002 for an unknown tenant, 55000 '
'for a deleted one, TN022 when the tenant''s placement declares another region.';

revoke all on function tenancy.set_tenant_region(uuid, text) from public;
grant execute on function tenancy.set_tenant_region(uuid, text) to tenancy_admin;
