-- The five pgtenancy roles: attributes, memberships, and what an application login cannot do.
-- The superuser creates a login role in tenancy_app and tenants with projects (through a service
-- context); the attacks then run as that login role through SET SESSION AUTHORIZATION.

begin;
select plan(30);

-- Attributes --------------------------------------------------------------------------------------

-- Each role: no LOGIN, SUPERUSER, BYPASSRLS, CREATEROLE or CREATEDB.
select
    is(
        (
            select array[r.rolcanlogin, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb]
            from pg_catalog.pg_roles as r
            where r.rolname = e.role
        ),
        array[false, false, false, false, false],
        format('%s exists with NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB', e.role)
    )
from (
    values ('tenancy_owner'), ('tenancy_app'), ('tenancy_service'), ('tenancy_admin'), ('tenancy_auditor')
) as e (role)
order by e.role;

select isnt_superuser('tenancy_owner', 'tenancy_owner is not a superuser');

-- Every role has a comment: 0 rows without one.
select is_empty(
    $$
    select r.rolname from pg_catalog.pg_roles as r
    where
        r.rolname in ('tenancy_owner', 'tenancy_app', 'tenancy_service', 'tenancy_admin', 'tenancy_auditor')
        and shobj_description(r.oid, 'pg_authid') is null
    $$,
    'every pgtenancy role has a comment'
);

-- Memberships -------------------------------------------------------------------------------------

select is_member_of('tenancy_app', 'tenancy_service', 'tenancy_service is a member of tenancy_app');

-- tenancy_app belongs to no other role: 0 rows.
select is_empty(
    $$select m.roleid::regrole::text from pg_catalog.pg_auth_members as m where m.member = 'tenancy_app'::regrole$$,
    'tenancy_app is a member of no role'
);

-- No pgtenancy role can act as tenancy_owner: 0 rows.
select is_empty(
    $$
    select r.role from (
        values ('tenancy_app'), ('tenancy_service'), ('tenancy_admin'), ('tenancy_auditor')
    ) as r (role)
    where pg_has_role(r.role, 'tenancy_owner', 'member')
    $$,
    'no other pgtenancy role is a member of tenancy_owner'
);

-- tenancy_app reaches neither tenancy_service, tenancy_admin nor tenancy_auditor: 0 rows.
select is_empty(
    $$
    select r.role from (values ('tenancy_service'), ('tenancy_admin'), ('tenancy_auditor')) as r (role)
    where pg_has_role('tenancy_app', r.role, 'member')
    $$,
    'tenancy_app is not a member of a more privileged role'
);

-- Fixtures --------------------------------------------------------------------------------------

select
    gen_random_uuid() as owner_a,
    gen_random_uuid() as owner_b
\gset

-- An application login (created by the superuser), as a deployment would create one.
create role pgtap_app_login login in role tenancy_app;

set local role tenancy_admin;
select tenancy.create_tenant('roles-a', 'Roles A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant('roles-b', 'Roles B', :'owner_b') as tenant_b \gset

-- Two projects in A and one in B, written in service contexts.
set local role tenancy_service;
select tenant_id as ignored from tenancy.set_context(:'tenant_b') \gset
insert into app.projects (name) values ('b-one');
select tenant_id as ignored from tenancy.set_context(:'tenant_a') \gset
insert into app.projects (name) values ('a-one'), ('a-two');
select tenancy.clear_context() \gset
reset role;

-- The name of one policy on app.projects, whatever the generator called it.
select p.policyname as projects_policy from pg_catalog.pg_policies as p
where p.schemaname = 'app' and p.tablename = 'projects'
order by p.policyname
limit 1 \gset

-- SET ROLE --------------------------------------------------------------------------------------

set local session authorization pgtap_app_login;

-- The login may not become any privileged role: 42501.
select
    throws_ok(
        format('set role %I', r.role),
        '42501',
        format('permission denied to set role "%s"', r.role),
        format('an application login cannot SET ROLE %s', r.role)
    )
from (values ('tenancy_owner'), ('tenancy_admin'), ('tenancy_service'), ('tenancy_auditor')) as r (role)
order by r.role;

-- ... but may become tenancy_app.
select lives_ok('set role tenancy_app', 'an application login can SET ROLE tenancy_app');
select is(current_user::text, 'tenancy_app', 'the current role is tenancy_app');

-- What tenancy_app cannot do ----------------------------------------------------------------------

-- Choose its own tenant: 42501 (tenancy_service can, below).
select throws_ok(
    format('select tenancy.set_context(%L)', :'tenant_b'),
    '42501',
    'permission denied for function set_context',
    'tenancy_app cannot call set_context'
);

-- TRUNCATE ignores row level security: 42501.
select throws_ok(
    'truncate app.projects', '42501', 'permission denied for table projects', 'tenancy_app cannot truncate'
);

-- Turn row level security off: 42501.
select throws_ok(
    'alter table app.projects disable row level security',
    '42501',
    'must be owner of table projects',
    'tenancy_app cannot disable row level security'
);
select throws_ok(
    'alter table app.projects no force row level security',
    '42501',
    'must be owner of table projects',
    'tenancy_app cannot drop FORCE ROW LEVEL SECURITY'
);
select throws_ok(
    format('drop policy %I on app.projects', :'projects_policy'),
    '42501',
    'must be owner of relation projects',
    'tenancy_app cannot drop policies'
);

-- Create objects in schema tenancy: 42501.
select throws_ok(
    'create function tenancy.current_tenant_id(p_x int) returns uuid language sql as ''select null::uuid''',
    '42501',
    'permission denied for schema tenancy',
    'tenancy_app cannot create functions in schema tenancy'
);

-- row_security = off makes a query that RLS would filter fail instead of bypassing RLS: 42501.
set local row_security = off;
select throws_ok(
    'select count(*) from app.projects',
    '42501',
    'query would be affected by row-level security policy for table "projects"',
    'with row_security off, reading a tenant table is refused'
);
set local row_security = on;

-- Without a context, nothing is visible.
select is((select count(*) from app.projects), 0::bigint, 'tenancy_app sees no project without a context');

-- The legitimate path -----------------------------------------------------------------------------

-- tenancy_service sets the context (as the superuser's session, then back to the login).
reset session authorization;
set local role tenancy_service;
select results_eq(
    format('select tenant_id from tenancy.set_context(%L)', :'tenant_a'),
    format('values (%L::uuid)', :'tenant_a'),
    'tenancy_service sets the context of tenant A'
);
set local session authorization pgtap_app_login;
select is(current_user::text, 'pgtap_app_login', 'back as the application login');

-- The login now reads A's projects, and only those.
select results_eq(
    'select name from app.projects order by name',
    $$values ('a-one'::text), ('a-two'::text)$$,
    'the application login reads exactly the projects of tenant A'
);

-- The same holds after SET ROLE tenancy_app.
set local role tenancy_app;
select is((select count(*) from app.projects), 2::bigint, 'tenancy_app reads the 2 projects of tenant A');

-- row_security = off is still refused with a context.
set local row_security = off;
select throws_ok(
    'select count(*) from app.projects',
    '42501',
    'query would be affected by row-level security policy for table "projects"',
    'with row_security off, reading is refused even with a context'
);
set local row_security = on;

reset session authorization;
select * from finish();
rollback;
