-- pgtenancy lint 0002 (ERROR): a privilege granted to PUBLIC on an object in schema tenancy.
-- Everything in tenancy is granted to pgtenancy's roles by name; PUBLIC means every login.
-- The schemas themselves too: tenancy, and tenancy_migrations (migrate's bookkeeping).
-- "char" is PostgreSQL's one-byte type, not char(1): its quotes are needed.
-- noqa: disable=RF06

create or replace view tenancy.lint_0002_public_grants as
select
    '0002'::pg_catalog.text as code,
    'public_grants'::pg_catalog.text as name,
    'ERROR'::pg_catalog.text as level,
    o.object,
    pg_catalog.format('PUBLIC holds %s on %s %s', a.privilege_type, o.kind, o.object) as detail,
    pg_catalog.format(
        'revoke %s on %s %s from public;', a.privilege_type,
        case
            when o.kind operator (pg_catalog.=) any(array['function', 'schema']) then o.kind
            else 'table'
        end,
        o.object
    ) as remediation
from (
    select
        'schema'::pg_catalog.text as kind,
        n.oid::pg_catalog.regnamespace::pg_catalog.text as object,
        coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner)) as acl
    from pg_catalog.pg_namespace as n
    where n.nspname operator (pg_catalog.=) any(array['tenancy', 'tenancy_migrations'])
    union all
    select
        'function'::pg_catalog.text as kind,
        p.oid::pg_catalog.regprocedure::pg_catalog.text as object,
        coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner)) as acl
    from pg_catalog.pg_proc as p
    where p.pronamespace operator (pg_catalog.=) 'tenancy'::pg_catalog.regnamespace
    union all
    select
        case
            when c.relkind operator (pg_catalog.=) 'S' then 'sequence'
            when c.relkind operator (pg_catalog.=) 'v' then 'view'
            else 'table'
        end as kind,
        c.oid::pg_catalog.regclass::pg_catalog.text as object,
        coalesce(
            c.relacl,
            pg_catalog.acldefault(
                case when c.relkind operator (pg_catalog.=) 'S' then 's' else 'r' end::pg_catalog."char",
                c.relowner
            )
        ) as acl
    from pg_catalog.pg_class as c
    where
        c.relnamespace operator (pg_catalog.=) 'tenancy'::pg_catalog.regnamespace
        and c.relkind operator (pg_catalog.=) any(array['r', 'p', 'v', 'm', 'S']::pg_catalog."char"[])
) as o
cross join lateral pg_catalog.aclexplode(o.acl) as a
where a.grantee operator (pg_catalog.=) 0::pg_catalog.oid;

comment on view tenancy.lint_0002_public_grants is
'pgtenancy doctor, lint 0002 (ERROR): privileges PUBLIC holds on schemas tenancy and '
'tenancy_migrations and on the functions, tables, views and sequences of schema tenancy. See docs/lints/0002_public_grants.md.';
revoke all on tenancy.lint_0002_public_grants from public;
grant select on tenancy.lint_0002_public_grants to tenancy_admin, tenancy_auditor;
