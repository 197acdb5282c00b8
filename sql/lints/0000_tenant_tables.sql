-- pgtenancy lints: tenancy.lint_tenant_tables, the tables the lints treat as tenant tables.
-- A tenant table is one with a policy that calls tenancy.context_tenant_id or
-- tenancy.context_tenant_key (the generated policies do); its tenant column is the column those
-- policies read (PostgreSQL records each column a policy expression uses in pg_depend): the one
-- most of them read, the first by position on a tie. Written once here for every lint.
-- "char" is PostgreSQL's one-byte type, not char(1): its quotes are needed.
-- noqa: disable=RF06

create or replace view tenancy.lint_tenant_tables as
with tenant_policies as (
    select
        p.oid,
        p.polrelid
    from pg_catalog.pg_policy as p
    where
        pg_catalog.concat_ws(
            ' ',
            pg_catalog.pg_get_expr(p.polqual, p.polrelid),
            pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
        ) operator (pg_catalog.~) 'tenancy\.context_tenant_(id|key)(_mac)?\('
)

select
    c.oid as relid,
    col.attname as tenant_column,
    col.atttypid::pg_catalog.regtype as tenant_column_type
from pg_catalog.pg_class as c
left join lateral (
    select
        a.attname,
        a.atttypid
    from tenant_policies as tp
    inner join pg_catalog.pg_depend as d
        on
            d.classid operator (pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass
            and d.objid operator (pg_catalog.=) tp.oid
            and d.refclassid operator (pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
            and d.refobjid operator (pg_catalog.=) c.oid
            and d.refobjsubid operator (pg_catalog.>) 0
    inner join pg_catalog.pg_attribute as a
        on
            a.attrelid operator (pg_catalog.=) c.oid
            and a.attnum operator (pg_catalog.=) d.refobjsubid
    where tp.polrelid operator (pg_catalog.=) c.oid
    group by a.attname, a.atttypid, a.attnum
    order by pg_catalog.count(distinct tp.oid) desc, a.attnum asc
    limit 1
) as col on true
where
    c.relkind operator (pg_catalog.=) any(array['r', 'p', 'f']::pg_catalog."char"[])
    and exists (
        select from tenant_policies as tp
        where tp.polrelid operator (pg_catalog.=) c.oid
    )
    -- The audit trail: a platform table whose readers (owners and admins of a tenant, the
    -- auditor across tenants) and writers (pgtenancy's functions) follow its own rules, tested
    -- with it; its partitions are closed to every role but its owner.
    and c.oid operator (pg_catalog.<>) coalesce(pg_catalog.to_regclass('tenancy.audit_logs')::pg_catalog.oid, 0);  -- noqa: LT01

comment on view tenancy.lint_tenant_tables is
'pgtenancy doctor: the tables with a policy calling tenancy.context_tenant_id or '
'tenancy.context_tenant_key, which the lints treat as tenant tables, with the tenant column '
'those policies read (NULL when they read none) and its type; the audit trail (tenancy.audit_logs) aside.';
revoke all on tenancy.lint_tenant_tables from public;
grant select on tenancy.lint_tenant_tables to tenancy_admin, tenancy_auditor;
