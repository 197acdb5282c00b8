-- pgtenancy lint 0006 (ERROR): an application login (a member of tenancy_app or tenancy_service)
-- that escapes row level security: superuser, BYPASSRLS, owner of a tenant table, or a member of
-- tenancy_owner. Memberships are followed through every level of pg_auth_members.

create or replace view tenancy.lint_0006_app_login_bypasses_rls as
with recursive member_of (member, grp) as (
    select
        m.member,
        m.roleid
    from pg_catalog.pg_auth_members as m
    union
    select
        mo.member,
        m.roleid
    from member_of as mo
    inner join pg_catalog.pg_auth_members as m on m.member operator (pg_catalog.=) mo.grp
),

app_logins as (
    select
        r.oid,
        r.rolsuper,
        r.rolbypassrls
    from pg_catalog.pg_roles as r
    where
        r.rolcanlogin
        and exists (
            select from member_of as mo
            where
                mo.member operator (pg_catalog.=) r.oid
                and mo.grp operator (pg_catalog.=) any(array[
                    pg_catalog.to_regrole('tenancy_app')::pg_catalog.oid,
                    pg_catalog.to_regrole('tenancy_service')::pg_catalog.oid
                ])
        )
),

problems as (
    select
        l.oid,
        'is a superuser: row level security never applies to it' as why,
        pg_catalog.format('alter role %s nosuperuser;', l.oid::pg_catalog.regrole) as fix
    from app_logins as l
    where l.rolsuper
    union all
    select
        l.oid,
        'has BYPASSRLS: row level security never applies to it' as why,
        pg_catalog.format('alter role %s nobypassrls;', l.oid::pg_catalog.regrole) as fix
    from app_logins as l
    where l.rolbypassrls
    union all
    select
        l.oid,
        'is a member of tenancy_owner, which owns pgtenancy''s tables, functions and policies'
            as why,
        pg_catalog.format(
            'revoke tenancy_owner from %s; (or from the role through which it is a member)',
            l.oid::pg_catalog.regrole
        ) as fix
    from app_logins as l
    where
        exists (
            select from member_of as mo
            where
                mo.member operator (pg_catalog.=) l.oid
                and mo.grp operator (pg_catalog.=) pg_catalog.to_regrole('tenancy_owner')::pg_catalog.oid
        )
    union all
    select
        l.oid,
        pg_catalog.format(
            'owns tenant table %s%s: an owner may disable, change or drop its policies',
            c.oid::pg_catalog.regclass,
            case
                when c.relowner operator (pg_catalog.=) l.oid then ''
                else pg_catalog.format(' (through role %s)', c.relowner::pg_catalog.regrole)
            end
        ) as why,
        pg_catalog.format(
            'alter table %s owner to <a role that does not log in and is no member of tenancy_app>;',
            c.oid::pg_catalog.regclass
        ) as fix
    from app_logins as l
    inner join pg_catalog.pg_class as c
        on
            c.relowner operator (pg_catalog.=) l.oid
            or (
                not c.relowner operator (pg_catalog.=) pg_catalog.to_regrole('tenancy_owner')::pg_catalog.oid
                and exists (
                    select from member_of as mo
                    where
                        mo.member operator (pg_catalog.=) l.oid
                        and mo.grp operator (pg_catalog.=) c.relowner
                )
            )
    inner join tenancy.lint_tenant_tables as tt on tt.relid operator (pg_catalog.=) c.oid
)

select
    '0006'::pg_catalog.text as code,
    'app_login_bypasses_rls'::pg_catalog.text as name,
    'ERROR'::pg_catalog.text as level,
    p.oid::pg_catalog.regrole::pg_catalog.text as object,
    pg_catalog.format('application login %s %s', p.oid::pg_catalog.regrole, p.why) as detail,
    p.fix as remediation
from problems as p;

comment on view tenancy.lint_0006_app_login_bypasses_rls is
'pgtenancy doctor, lint 0006 (ERROR): login roles that are members of tenancy_app or '
'tenancy_service and are superusers, have BYPASSRLS, own a tenant table or are members of '
'tenancy_owner. See docs/lints/0006_app_login_bypasses_rls.md.';
revoke all on tenancy.lint_0006_app_login_bypasses_rls from public;
grant select on tenancy.lint_0006_app_login_bypasses_rls to tenancy_admin, tenancy_auditor;
