-- tenancy.lint_orphan_rows: per tenant table, the rows the caller can see whose tenant column is NULL or names no tenant.

-- Runs as the caller (doctor's connection), one count per tenant table with dynamic SQL: rows
-- the caller's row level security hides are not counted (a superuser or a BYPASSRLS role sees
-- them all), and a table the caller may not read is skipped. A uuid tenant column names the
-- tenant whose id it holds; a bigint, integer or text one the tenant whose key
-- (tenancy.tenants.key) is its text. Partitions and inheritance children of a tenant table are
-- counted through it. Every table is read in full: on large tables this takes a while.
create or replace function tenancy.lint_orphan_rows()
returns table (
    table_oid pg_catalog.oid,
    tenant_column pg_catalog.name,
    null_rows pg_catalog.int8,
    unknown_rows pg_catalog.int8
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_table record;
    v_match pg_catalog.text;
begin
    if not pg_catalog.has_table_privilege('tenancy.tenants', 'SELECT') then
        return;
    end if;
    for v_table in
        select
            tt.relid,
            tt.tenant_column,
            tt.tenant_column_type
        from tenancy.lint_tenant_tables as tt
        where
            tt.tenant_column is not null
            and tt.tenant_column_type operator (pg_catalog.=) any(array[
                'uuid', 'bigint', 'integer', 'text'
            ]::pg_catalog.regtype[])
            and pg_catalog.has_column_privilege(tt.relid, tt.tenant_column, 'SELECT')
            and not exists (
                select from pg_catalog.pg_inherits as i
                inner join tenancy.lint_tenant_tables as parent
                    on parent.relid operator (pg_catalog.=) i.inhparent
                where i.inhrelid operator (pg_catalog.=) tt.relid
            )
        order by tt.relid
    loop
        if v_table.tenant_column_type operator (pg_catalog.=) 'uuid'::pg_catalog.regtype then
            v_match := pg_catalog.format('x.id operator (pg_catalog.=) t.%I', v_table.tenant_column);
        else
            v_match := pg_catalog.format(
                'x.key::pg_catalog.text operator (pg_catalog.=) t.%I::pg_catalog.text',
                v_table.tenant_column
            );
        end if;
        table_oid := v_table.relid;
        tenant_column := v_table.tenant_column;
        execute pg_catalog.format(
            'select pg_catalog.count(*) filter (where t.%1$I is null), '
            'pg_catalog.count(*) filter (where t.%1$I is not null and not exists '
            '(select from tenancy.tenants as x where %2$s)) from %3$s as t',
            v_table.tenant_column, v_match, v_table.relid::pg_catalog.regclass
        ) into null_rows, unknown_rows;
        return next;
    end loop;
end
$$;

comment on function tenancy.lint_orphan_rows() is
'pgtenancy doctor: per tenant table the caller may read, how many rows it sees whose tenant '
'column is NULL, and how many name no tenant (no tenancy.tenants row with that id, or key for '
'bigint, integer and text columns). Runs as the caller: rows its row level security hides are '
'not counted.';

revoke all on function tenancy.lint_orphan_rows() from public;
grant execute on function tenancy.lint_orphan_rows() to tenancy_admin, tenancy_auditor;
