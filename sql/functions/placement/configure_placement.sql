-- tenancy.configure_placement: add or change a placement (a database that holds tenants' rows).

-- A placement's region, once declared, is enforced: it may not be set to a region other than
-- that of a tenant placed there (TN022). p_here marks the placement that is this database (one
-- at most; new tenants are placed there).
create or replace function tenancy.configure_placement(
    p_name text,
    p_alias text,
    p_region text default null,
    p_state text default 'active',
    p_here boolean default false
)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_region tenancy.region_tag;
    v_tenant uuid;
    v_tenant_region text;
begin
    if p_name is null or p_name !~ '^[a-z][a-z0-9-]{0,61}[a-z0-9]$' then
        raise exception using
            errcode = '22023',
            message = format('invalid placement name %L', left(p_name, 100)),
            hint = 'A placement name is 2 to 63 characters of a-z, 0-9 and hyphens, starting with a letter.';
    end if;
    if p_alias is null or p_alias !~ '^[A-Za-z0-9_.-]{1,100}$' then
        raise exception using
            errcode = '22023',
            message = format('invalid placement alias %L', left(p_alias, 100)),
            hint = 'An alias is 1 to 100 characters of A-Z, a-z, 0-9, _, . and -; it names a connection string in the router''s configuration, never holds one.';
    end if;
    if p_state is null or p_state <> all(array['active', 'draining', 'retired']) then
        raise exception using
            errcode = '22023',
            message = format('invalid placement state %L: active, draining or retired', left(p_state, 100));
    end if;
    if p_region is not null then
        v_region := tenancy.checked_region(p_region);
        perform 1 from tenancy.regions as r where r.region = v_region for key share;
        if not found then
            raise exception using errcode = '22023', message = format('unknown region %L', p_region);
        end if;
        -- Lock the placement's tenants' settings so that no region changes meanwhile.
        select t.id, s.region into v_tenant, v_tenant_region
        from tenancy.tenants as t
        inner join tenancy.tenant_settings as s on s.tenant_id = t.id
        where t.placement = p_name and t.status <> 'deleted' and s.region is not null and s.region <> v_region
        limit 1
        for share of s;
        if found then
            raise exception using
                errcode = 'TN022',
                message = format(
                    'placement %s cannot be in region %s: tenant %s placed there is in region %s',
                    p_name, v_region, v_tenant, v_tenant_region
                );
        end if;
    end if;
    if p_here then
        update tenancy.placements as p set here = false, updated_at = now() where p.here and p.name <> p_name;
    end if;
    insert into tenancy.placements as p (name, alias, region, state, here)
    values (p_name, p_alias, v_region, p_state, p_here)
    on conflict (name) do update
    set alias = excluded.alias, region = excluded.region, state = excluded.state,
        here = excluded.here or p.here, updated_at = now();
end
$$;

comment on function tenancy.configure_placement(text, text, text, text, boolean) is
'For tenancy_admin: adds or changes the placement p_name: its connection alias (the name a router '
'maps to a connection string), region (NULL: not declared), state (active, draining, retired) '
'and whether it is this database (p_here). 22023 for invalid values, TN022 when a tenant placed '
'there is in another region.';

revoke all on function tenancy.configure_placement(text, text, text, text, boolean) from public;
grant execute on function tenancy.configure_placement(text, text, text, text, boolean) to tenancy_admin;
