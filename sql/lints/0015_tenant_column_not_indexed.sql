-- pgtenancy lint 0015 (WARN): a tenant table without an index leading with its tenant column.
-- Every policy compares the tenant column with the context: without such an index each
-- statement reads the whole table, every tenant's rows, to find one tenant's.

create or replace view tenancy.lint_0015_tenant_column_not_indexed as
select
    '0015'::pg_catalog.text as code,
    'tenant_column_not_indexed'::pg_catalog.text as name,
    'WARN'::pg_catalog.text as level,
    tt.relid::pg_catalog.regclass::pg_catalog.text as object,
    pg_catalog.format(
        'no index of tenant table %s leads with its tenant column %I: every statement reads '
        'every tenant''s rows',
        tt.relid::pg_catalog.regclass, tt.tenant_column
    ) as detail,
    pg_catalog.format(
        'create index on %s (%I); (better: make the primary key lead with it, see docs/key-layout.md)',
        tt.relid::pg_catalog.regclass, tt.tenant_column
    ) as remediation
from tenancy.lint_tenant_tables as tt
inner join pg_catalog.pg_attribute as a
    on
        a.attrelid operator (pg_catalog.=) tt.relid
        and a.attname operator (pg_catalog.=) tt.tenant_column
where not exists (
    select from pg_catalog.pg_index as i
    where
        i.indrelid operator (pg_catalog.=) tt.relid
        and i.indkey[0] operator (pg_catalog.=) a.attnum
        and i.indpred is null
);

comment on view tenancy.lint_0015_tenant_column_not_indexed is
'pgtenancy doctor, lint 0015 (WARN): tenant tables without an index leading with the tenant '
'column. See docs/lints/0015_tenant_column_not_indexed.md.';
revoke all on tenancy.lint_0015_tenant_column_not_indexed from public;
grant select on tenancy.lint_0015_tenant_column_not_indexed to tenancy_admin, tenancy_auditor;
