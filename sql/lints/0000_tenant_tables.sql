-- pgtenancy lints: tenancy.lint_tenant_tables, the tables the lints treat as tenant tables.
-- A tenant table is one with a policy that calls tenancy.context_tenant_id (the generated
-- policies do); written once here for every lint that needs it.

create or replace view tenancy.lint_tenant_tables as
select c.oid as relid
from pg_catalog.pg_class as c
where exists (
    select from pg_catalog.pg_policy as p
    where
        p.polrelid operator (pg_catalog.=) c.oid
        and pg_catalog.strpos(
            pg_catalog.concat_ws(
                ' ',
                pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
            ),
            'context_tenant_id'
        ) operator (pg_catalog.>) 0
);

comment on view tenancy.lint_tenant_tables is
'pgtenancy doctor: the tables with a policy calling tenancy.context_tenant_id, which the lints '
'treat as tenant tables.';
revoke all on tenancy.lint_tenant_tables from public;
