-- pgtenancy lint 0005 (ERROR): a key or index of a tenant table that its tenant column does not lead.
-- The rule is tenancy.key_layout_problems, the one a generated policy file checks when applied
-- (tenancy.assert_tenant_keys, TN007). Partitions and inheritance children are checked with the
-- tenant table they belong to; whether they are secured is not this lint's question.
-- "char" is PostgreSQL's one-byte type, not char(1): its quotes are needed.
-- noqa: disable=RF06

create or replace view tenancy.lint_0005_key_layout as
select
    '0005'::pg_catalog.text as code,
    'key_layout'::pg_catalog.text as name,
    'ERROR'::pg_catalog.text as level,
    p.object,
    p.detail,
    pg_catalog.concat(p.remediation, ';') as remediation
from tenancy.lint_tenant_tables as tt
inner join pg_catalog.pg_class as c on c.oid operator (pg_catalog.=) tt.relid
cross join
    lateral tenancy.key_layout_problems(
        tt.relid::pg_catalog.regclass, tt.tenant_column, null::pg_catalog.text[]
    ) as p
where
    c.relkind operator (pg_catalog.=) any(array['r', 'p']::pg_catalog."char"[])
    and tt.tenant_column is not null
    and not exists (
        select from pg_catalog.pg_inherits as i
        inner join tenancy.lint_tenant_tables as parent
            on parent.relid operator (pg_catalog.=) i.inhparent
        where i.inhrelid operator (pg_catalog.=) tt.relid
    );

comment on view tenancy.lint_0005_key_layout is
'pgtenancy doctor, lint 0005 (ERROR): primary keys, indexes, unique and exclusion constraints and '
'foreign keys to other tenant tables that the tenant column does not lead, on tenant tables and '
'their partitions and inheritance children (tenancy.key_layout_problems). See '
'docs/lints/0005_key_layout.md.';
revoke all on tenancy.lint_0005_key_layout from public;
grant select on tenancy.lint_0005_key_layout to tenancy_admin, tenancy_auditor;
