-- pgtenancy lint 0009 (ERROR): a partition or inheritance child of a tenant table (at any
-- depth, pg_inherits) without row level security enabled and forced. Through its parent its
-- rows follow the parent's policies, but queried directly by name it has its own row level
-- security, or none. Children that are tenant tables themselves are lint 0001's.
-- "char" is PostgreSQL's one-byte type, not char(1): its quotes are needed.
-- noqa: disable=RF06

create or replace view tenancy.lint_0009_descendant_rls_not_forced as
with recursive descendants (root, relid) as (
    select
        tt.relid,
        i.inhrelid
    from tenancy.lint_tenant_tables as tt
    inner join pg_catalog.pg_inherits as i on i.inhparent operator (pg_catalog.=) tt.relid
    union
    select
        d.root,
        i.inhrelid
    from descendants as d
    inner join pg_catalog.pg_inherits as i on i.inhparent operator (pg_catalog.=) d.relid
)

select distinct on (c.oid)
    '0009'::pg_catalog.text as code,
    'descendant_rls_not_forced'::pg_catalog.text as name,
    'ERROR'::pg_catalog.text as level,
    c.oid::pg_catalog.regclass::pg_catalog.text as object,
    pg_catalog.format(
        '%s %s of tenant table %s has row level security %s',
        case when c.relispartition then 'partition' else 'inheritance child' end,
        c.oid::pg_catalog.regclass, d.root::pg_catalog.regclass,
        case
            when not c.relrowsecurity
                then
                    'not enabled: queried directly, it shows every tenant''s rows to every role '
                    'with SELECT on it'
            else 'enabled but not forced: queried directly, it shows every tenant''s rows to its owner'
        end
    ) as detail,
    pg_catalog.format(
        'alter table %s enable row level security; alter table %s force row level security; '
        '(and give it the policies of %s: apply the generated policy file of %s again)',
        c.oid::pg_catalog.regclass, c.oid::pg_catalog.regclass, d.root::pg_catalog.regclass,
        d.root::pg_catalog.regclass
    ) as remediation
from descendants as d
inner join pg_catalog.pg_class as c on c.oid operator (pg_catalog.=) d.relid
where
    c.relkind operator (pg_catalog.=) any(array['r', 'p']::pg_catalog."char"[])
    and not (c.relrowsecurity and c.relforcerowsecurity)
    and not exists (
        select from tenancy.lint_tenant_tables as tt
        where tt.relid operator (pg_catalog.=) c.oid
    )
order by c.oid, d.root;

comment on view tenancy.lint_0009_descendant_rls_not_forced is
'pgtenancy doctor, lint 0009 (ERROR): partitions and inheritance children of tenant tables '
'without row level security enabled and forced. See docs/lints/0009_descendant_rls_not_forced.md.';
revoke all on tenancy.lint_0009_descendant_rls_not_forced from public;
grant select on tenancy.lint_0009_descendant_rls_not_forced to tenancy_admin, tenancy_auditor;
