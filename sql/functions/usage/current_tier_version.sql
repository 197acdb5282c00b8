-- tenancy.current_tier_version: the current version of a tenant's tier, locked FOR KEY SHARE (P0002 when none).

create or replace function tenancy.current_tier_version(p_tenant_id uuid, p_tier text)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_id uuid;
begin
    -- A concurrent tenancy.update_tier holds the row FOR UPDATE: this waits, and when that made a
    -- new version, the old one is no longer current (READ COMMITTED re-checks the row): the
    -- second look finds the new one.
    for i in 1..2 loop
        select t.id into v_id
        from tenancy.tiers as t
        where t.tenant_id = p_tenant_id and t.name = p_tier and t.is_current
        for key share;
        if found then
            return v_id;
        end if;
    end loop;
    raise exception using
        errcode = 'P0002',
        message = format('tier %L does not exist in tenant %s', tenancy.token_excerpt(p_tier, 100), p_tenant_id);
end
$$;

comment on function tenancy.current_tier_version(uuid, text) is
'pgtenancy internal: the id of the current version of tier p_tier of tenant p_tenant_id, locked '
'FOR KEY SHARE until the transaction ends; P0002 when there is none.';

revoke all on function tenancy.current_tier_version(uuid, text) from public;
