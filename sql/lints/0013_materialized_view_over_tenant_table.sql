-- pgtenancy lint 0013 (WARN): a materialized view that reads a tenant table. It stores the rows
-- its owner saw when it was refreshed, and row level security does not apply to a materialized
-- view: whoever may select from it sees every tenant's rows it holds.

create or replace view tenancy.lint_0013_materialized_view_over_tenant_table as
select distinct on (m.oid)
    '0013'::pg_catalog.text as code,
    'materialized_view_over_tenant_table'::pg_catalog.text as name,
    'WARN'::pg_catalog.text as level,
    m.oid::pg_catalog.regclass::pg_catalog.text as object,
    pg_catalog.format(
        'materialized view %s stores rows of tenant table %s as its owner %s saw them; row level '
        'security does not apply to it',
        m.oid::pg_catalog.regclass, t.oid::pg_catalog.regclass,
        pg_catalog.pg_get_userbyid(m.relowner)
    ) as detail,
    pg_catalog.format(
        'drop materialized view %1$s; (a view with security_invoker instead, or a table of its '
        'own with a tenant column and row level security; at least: revoke all on %1$s from '
        'public, tenancy_app;)',
        m.oid::pg_catalog.regclass
    ) as remediation
from pg_catalog.pg_class as m
inner join pg_catalog.pg_rewrite as r on r.ev_class operator (pg_catalog.=) m.oid
inner join pg_catalog.pg_depend as d
    on
        d.classid operator (pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
        and d.objid operator (pg_catalog.=) r.oid
        and d.refclassid operator (pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
inner join pg_catalog.pg_class as t on t.oid operator (pg_catalog.=) d.refobjid
where
    m.relkind operator (pg_catalog.=) 'm'
    and not t.oid operator (pg_catalog.=) m.oid
    and exists (
        select from tenancy.lint_tenant_tables as tt
        where tt.relid operator (pg_catalog.=) t.oid
    )
order by m.oid, t.oid;

comment on view tenancy.lint_0013_materialized_view_over_tenant_table is
'pgtenancy doctor, lint 0013 (WARN): materialized views over tenant tables (row level security '
'does not apply to them). See docs/lints/0013_materialized_view_over_tenant_table.md.';
revoke all on tenancy.lint_0013_materialized_view_over_tenant_table from public;
grant select on tenancy.lint_0013_materialized_view_over_tenant_table to tenancy_admin, tenancy_auditor;
