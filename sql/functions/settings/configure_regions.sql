-- tenancy.configure_regions: set the platform's list of data-residency regions.

-- The list given becomes the list: new tags are added, absent ones removed. A region that is
-- still some tenant's region is not removed (55000, naming it and how many tenants hold it):
-- the regions to remove are locked first, so a concurrent tenancy.set_tenant_region() choosing
-- one either commits before the count (and is counted, or under REPEATABLE READ and
-- SERIALIZABLE found by the foreign key as the region is deleted) or waits and then finds it
-- gone.
create or replace function tenancy.configure_regions(p_regions text[])
returns text[]
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_regions text[];
    v_region text;
    v_in_use record;
begin
    if p_regions is null then
        raise exception using
            errcode = '22023',
            message = 'region list is NULL',
            hint = 'Pass ''{}'' for no regions.';
    end if;
    foreach v_region in array p_regions loop
        perform tenancy.checked_region(v_region);
    end loop;
    v_regions := array(select distinct r from unnest(p_regions) as u (r) order by r);
    perform 1 from tenancy.regions as r where r.region <> all(v_regions) order by r.region for update;
    for v_in_use in
        select s.region, count(*) as tenants
        from tenancy.tenant_settings as s
        where s.region is not null and s.region <> all(v_regions)
        group by s.region
        order by s.region
        limit 1
    loop
        raise exception using
            errcode = '55000',
            message = format(
                'region %L is the region of %s tenant(s) and cannot be removed', v_in_use.region, v_in_use.tenants
            ),
            hint = 'Move those tenants to another region with tenancy.set_tenant_region() first.';
    end loop;
    -- One at a time: under REPEATABLE READ and SERIALIZABLE the count above reads the
    -- transaction's snapshot, and a tenant placed in a region since is found by the foreign key.
    for v_region in
        select r.region from tenancy.regions as r where r.region <> all(v_regions) order by r.region
    loop
        begin
            delete from tenancy.regions as r where r.region = v_region;
        exception when foreign_key_violation then
            raise exception using
                errcode = '55000',
                message = format('region %L is the region of a tenant and cannot be removed', v_region),
                detail = 'The tenant was placed in it after this transaction''s snapshot was taken.',
                hint = 'Move those tenants to another region with tenancy.set_tenant_region() first.';
        end;
    end loop;
    insert into tenancy.regions (region)
    select u.r from unnest(v_regions) as u (r)
    on conflict (region) do nothing;
    return v_regions;
end
$$;

comment on function tenancy.configure_regions(text[]) is
'For tenancy_admin: the data-residency regions tenants may be placed in become p_regions '
'(tenancy.region_tag each: 22023 naming an invalid one); returns the list, sorted. A region '
'still held by a tenant cannot be removed (55000).';

revoke all on function tenancy.configure_regions(text[]) from public;
grant execute on function tenancy.configure_regions(text[]) to tenancy_admin;
