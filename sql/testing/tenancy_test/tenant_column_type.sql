-- tenancy_test.tenant_column_type: what a tenant column holds, by its type (a domain by the type it stands for).

create or replace function tenancy_test.tenant_column_type(p_table regclass, p_column name)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    with recursive types (oid, typtype, typbasetype) as (
        select t.oid, t.typtype, t.typbasetype
        from pg_catalog.pg_attribute as a
        inner join pg_catalog.pg_type as t on t.oid = a.atttypid
        where a.attrelid = p_table and a.attname = p_column and a.attnum > 0 and not a.attisdropped
        union all
        select t.oid, t.typtype, t.typbasetype
        from pg_catalog.pg_type as t
        inner join types on t.oid = types.typbasetype and types.typtype = 'd'
    )

    select pg_catalog.format_type(types.oid, null) from types where types.typtype <> 'd'
$$;

comment on function tenancy_test.tenant_column_type(regclass, name) is
'The type of a tenant column as the generator reads it: uuid (the column holds the tenant id), '
'bigint, integer or text (the tenant key), or any other type; a domain by the type it stands '
'for. NULL when the table has no such column.';
