-- pgtenancy lint 0001 (ERROR): a tenant table without row level security enabled and forced.
-- A tenant table is one with a policy that calls tenancy.context_tenant_id: without ENABLE its
-- policies do nothing; without FORCE they do nothing for the table's owner.
-- "char" is PostgreSQL's one-byte type, not char(1): its quotes are needed.
-- noqa: disable=RF06

create or replace view tenancy.lint_0001_rls_not_forced as
select
    '0001'::pg_catalog.text as code,
    'rls_not_forced'::pg_catalog.text as name,
    'ERROR'::pg_catalog.text as level,
    c.oid::pg_catalog.regclass::pg_catalog.text as object,
    pg_catalog.format(
        'row level security is %s on tenant table %s',
        case
            when not c.relrowsecurity then 'not enabled'
            else 'enabled but not forced (its owner bypasses the policies)'
        end,
        c.oid::pg_catalog.regclass
    ) as detail,
    pg_catalog.format(
        'alter table %s enable row level security; alter table %s force row level security;',
        c.oid::pg_catalog.regclass, c.oid::pg_catalog.regclass
    ) as remediation
from pg_catalog.pg_class as c
where
    c.relkind operator (pg_catalog.=) any(array['r', 'p']::pg_catalog."char"[])
    and not (c.relrowsecurity and c.relforcerowsecurity)
    and exists (
        select from tenancy.lint_tenant_tables as tt
        where tt.relid operator (pg_catalog.=) c.oid
    );

comment on view tenancy.lint_0001_rls_not_forced is
'pgtenancy doctor, lint 0001 (ERROR): tenant tables (a policy calls tenancy.context_tenant_id) '
'whose row level security is not enabled or not forced. See docs/lints/0001_rls_not_forced.md.';
revoke all on tenancy.lint_0001_rls_not_forced from public;
grant select on tenancy.lint_0001_rls_not_forced to tenancy_admin, tenancy_auditor;
