-- tenancy_test.tenant_table: the plan and every check of a generated tenant table, in one call.

-- A generated test is `begin; select * from tenancy_test.tenant_table(...); select * from
-- finish(); rollback;`. The first line returned is pgTAP's plan, computed from the arguments
-- before any assertion runs, so a check that stops part way shows as a plan mismatch. Call it once
-- per transaction and make no other assertion in the same file. The caller must be able to SET
-- ROLE to tenancy_admin, tenancy_service and tenancy_app (pg_prove's superuser can); the checks
-- act as those roles, never as the caller, and end with RESET ROLE.
create or replace function tenancy_test.tenant_table(
    p_table regclass,
    p_roles text[],
    p_read text[],
    p_write text[],
    p_policies text[],
    p_sequences regclass[] default '{}',
    p_descendants regclass[] default '{}',
    p_sample jsonb default '{}',
    p_fixtures text[] default '{}',
    p_tenant_column name default 'tenant_id'
)
returns setof text
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
    v_writers integer := (select count(*) from unnest(p_roles) as r where r = any(p_write));
    v_writes boolean := cardinality(coalesce(p_write, '{}')) > 0;
begin
    return next plan(
        -- tenant_table_structure
        8 + 2 * coalesce(array_length(p_policies, 1), 0) + cardinality(coalesce(p_sequences, '{}'))
        + 2 * cardinality(coalesce(p_descendants, '{}'))
        -- tenant_table_isolation
        + 6 + cardinality(coalesce(p_descendants, '{}')) + 3 * cardinality(p_roles) + v_writers
        + case when v_writes then 3 else 2 end
    );
    return query select * from tenancy_test.tenant_table_structure(
        p_table, p_write, p_policies, p_sequences, p_descendants, p_tenant_column
    );
    return query select * from tenancy_test.tenant_table_isolation(
        p_table, p_roles, p_read, p_write, p_descendants, p_sample, p_fixtures, p_tenant_column
    );
end
$$;

comment on function tenancy_test.tenant_table(regclass, text[], text[], text[], text[], regclass[], regclass[], jsonb, text[], name) is
'pgTAP: plan(N), then tenancy_test.tenant_table_structure and tenancy_test.tenant_table_isolation '
'for one generated tenant table whose tenant column is p_tenant_column. p_policies rows are '
'{name, command, grantee}; p_sample maps columns to SQL expressions; p_fixtures run in a service '
'context of each fixture tenant first.';
