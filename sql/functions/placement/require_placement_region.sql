-- tenancy.require_placement_region: raise TN022 unless a tenant's region agrees with a placement's.

-- Data residency: a placement that declares a region holds only tenants without a region or of
-- that region. A placement without a region (undeclared) holds any tenant.
create or replace function tenancy.require_placement_region(
    p_tenant_id uuid, p_placement text, p_region text
)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_placement_region text;
begin
    -- Locked until commit: a concurrent configure_placement cannot declare another region meanwhile.
    select p.region into v_placement_region from tenancy.placements as p where p.name = p_placement for share;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('placement %L does not exist', p_placement),
            hint = 'Placements are added with tenancy.configure_placement().';
    end if;
    if p_region is not null and v_placement_region is not null and p_region <> v_placement_region then
        raise exception using
            errcode = 'TN022',
            message = format(
                'tenant %s is in region %s but placement %s is in region %s: its rows may not live there',
                p_tenant_id, p_region, p_placement, v_placement_region
            ),
            hint = 'Place the tenant in a placement of its region, or change its region first.';
    end if;
end
$$;

comment on function tenancy.require_placement_region(uuid, text, text) is
'pgtenancy internal: P0002 for an unknown placement; TN022 when the tenant''s region p_region '
'and the placement''s declared region differ (data residency).';

revoke all on function tenancy.require_placement_region(uuid, text, text) from public;
