-- pgtenancy lint 0014 (WARN): a table with a column named like a tenant column (tenant_id, or a
-- name some tenant table uses as its tenant column) that is not a tenant table: it probably
-- holds tenant data that no policy protects. Partitions and inheritance children of tenant
-- tables are lint 0009's; system schemas and pgtenancy's own schema are left out.
-- "char" is PostgreSQL's one-byte type, not char(1): its quotes are needed.
-- noqa: disable=RF06

create or replace view tenancy.lint_0014_tenant_column_outside_tenant_table as
with recursive secured (relid) as (
    select tt.relid from tenancy.lint_tenant_tables as tt
    union
    select i.inhrelid
    from secured as s
    inner join pg_catalog.pg_inherits as i on i.inhparent operator (pg_catalog.=) s.relid
),

column_names (name) as (
    select 'tenant_id'::pg_catalog.name
    union
    -- A tenant table's tenant column, unless it is that table's whole primary key: a directory
    -- of the tenants (companies keyed by their id) lends its generic key name (id) to no one.
    select tt.tenant_column from tenancy.lint_tenant_tables as tt
    where
        tt.tenant_column is not null
        and not exists (
            select from pg_catalog.pg_constraint as k
            inner join pg_catalog.pg_attribute as ka
                on
                    ka.attrelid operator (pg_catalog.=) k.conrelid
                    and ka.attnum operator (pg_catalog.=) k.conkey[1]
            where
                k.conrelid operator (pg_catalog.=) tt.relid
                and k.contype operator (pg_catalog.=) 'p'
                and pg_catalog.array_length(k.conkey, 1) operator (pg_catalog.=) 1
                and ka.attname operator (pg_catalog.=) tt.tenant_column
        )
)

select distinct on (c.oid)
    '0014'::pg_catalog.text as code,
    'tenant_column_outside_tenant_table'::pg_catalog.text as name,
    'WARN'::pg_catalog.text as level,
    c.oid::pg_catalog.regclass::pg_catalog.text as object,
    pg_catalog.format(
        'table %s has a column %I, like the tenant tables, but no policy calling the tenant '
        'context: if it holds tenant data, every role with SELECT on it sees every tenant''s rows',
        c.oid::pg_catalog.regclass, a.attname
    ) as detail,
    pg_catalog.format(
        'list %s in the spec (tenant_column = %L) and run pgtenancy generate and apply; or, if '
        'it is no tenant data, rename the column',
        c.oid::pg_catalog.regclass, a.attname
    ) as remediation
from pg_catalog.pg_class as c
inner join pg_catalog.pg_attribute as a on a.attrelid operator (pg_catalog.=) c.oid
inner join column_names as n on n.name operator (pg_catalog.=) a.attname
where
    c.relkind operator (pg_catalog.=) any(array['r', 'p', 'f']::pg_catalog."char"[])
    and a.attnum operator (pg_catalog.>) 0
    and not a.attisdropped
    and not c.relpersistence operator (pg_catalog.=) 't'
    -- pgtenancy's own platform tables (tenancy.tenants, …) are classified by pgtenancy.
    and not c.relnamespace operator (pg_catalog.=) any(array[
        pg_catalog.to_regnamespace('tenancy')::pg_catalog.oid,
        pg_catalog.to_regnamespace('pg_catalog')::pg_catalog.oid,
        pg_catalog.to_regnamespace('information_schema')::pg_catalog.oid,
        pg_catalog.to_regnamespace('pg_toast')::pg_catalog.oid
    ])
    and not exists (
        select from secured as s
        where s.relid operator (pg_catalog.=) c.oid
    )
order by c.oid, a.attnum;

comment on view tenancy.lint_0014_tenant_column_outside_tenant_table is
'pgtenancy doctor, lint 0014 (WARN): tables with a column named like a tenant column that are not '
'tenant tables. See docs/lints/0014_tenant_column_outside_tenant_table.md.';
revoke all on tenancy.lint_0014_tenant_column_outside_tenant_table from public;
grant select on tenancy.lint_0014_tenant_column_outside_tenant_table to tenancy_admin, tenancy_auditor;
