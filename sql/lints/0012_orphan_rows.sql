-- pgtenancy lint 0012 (ERROR): rows of a tenant table whose tenant column is NULL or names no
-- tenant. The only lint that reads data: tenancy.lint_orphan_rows() counts, as the caller, the
-- rows the caller can see (a superuser or BYPASSRLS role sees them all).

create or replace view tenancy.lint_0012_orphan_rows as
select
    '0012'::pg_catalog.text as code,
    'orphan_rows'::pg_catalog.text as name,
    'ERROR'::pg_catalog.text as level,
    o.table_oid::pg_catalog.regclass::pg_catalog.text as object,
    pg_catalog.format(
        '%s row(s) of tenant table %s %s: %s',
        x.row_count, o.table_oid::pg_catalog.regclass,
        case
            when x.kind operator (pg_catalog.=) 'null'
                then pg_catalog.format('have no tenant (%I is NULL)', o.tenant_column)
            else pg_catalog.format('name no tenant (%I matches no tenancy.tenants row)', o.tenant_column)
        end,
        'no tenant context ever shows them, and they are nobody''s to export or delete'
    ) as detail,
    case
        when x.kind operator (pg_catalog.=) 'null'
            then pg_catalog.format(
                'select * from %1$s where %2$I is null; then set their tenant or delete them, and '
                'alter table %1$s alter column %2$I set not null;',
                o.table_oid::pg_catalog.regclass, o.tenant_column
            )
        else pg_catalog.format(
            'select %2$I, count(*) from %1$s as t where not exists (select from tenancy.tenants as '
            'x where x.id::text = t.%2$I::text or x.key = t.%2$I::text) group by 1; then create '
            'those tenants or delete the rows (and, for a uuid column, add a foreign key to '
            'tenancy.tenants)',
            o.table_oid::pg_catalog.regclass, o.tenant_column
        )
    end as remediation
from tenancy.lint_orphan_rows() as o
cross join
    lateral (
        values ('null', o.null_rows), ('unknown', o.unknown_rows)
    ) as x (kind, row_count)
where x.row_count operator (pg_catalog.>) 0;

comment on view tenancy.lint_0012_orphan_rows is
'pgtenancy doctor, lint 0012 (ERROR): rows of tenant tables, among those the caller can see, '
'whose tenant column is NULL or names no tenant. See docs/lints/0012_orphan_rows.md.';
revoke all on tenancy.lint_0012_orphan_rows from public;
grant select on tenancy.lint_0012_orphan_rows to tenancy_admin, tenancy_auditor;
