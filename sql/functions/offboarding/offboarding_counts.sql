-- tenancy.offboarding_counts: how many rows of one tenant every tenant table holds.

-- Called by tenancy.offboard_tenant in a service context of the tenant, before it deletes
-- anything and once it has deleted everything. A table whose tenant column cannot hold the
-- tenant's key has none of its rows: 0.
create or replace function tenancy.offboarding_counts(p_tenant_id uuid, p_key text)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_table record;
    v_value text;
    v_count bigint;
    v_counts jsonb := '{}'::jsonb;
begin
    for v_table in select o.table_name, o.value_kind, o.predicate from tenancy.offboarding_tables() as o loop
        v_value := tenancy.offboarding_value(p_tenant_id, p_key, v_table.value_kind);
        v_count := 0;
        if v_value is not null then
            execute format('select pg_catalog.count(*) from %s as t where %s', v_table.table_name, v_table.predicate)
            using v_value into v_count;
        end if;
        v_counts := v_counts || jsonb_build_object(v_table.table_name, v_count);
    end loop;
    return v_counts;
end
$$;

comment on function tenancy.offboarding_counts(uuid, text) is
'pgtenancy internal: {"schema.table": rows} of the tenant p_tenant_id (key p_key) in every tenant '
'table (tenancy.offboarding_tables), as the current context reads them.';

revoke all on function tenancy.offboarding_counts(uuid, text) from public;
