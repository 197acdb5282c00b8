-- The tenant context: set_context, the current_* functions, forged values, clear_context, and
-- what a suspension or a membership change does to a context already set (nothing until the
-- transaction ends: revocation applies to every context set after the change commits).
-- A value replayed in a later transaction is refused too; pg_prove runs each file in one
-- transaction, so that case is covered by the Python suite, which can commit.
-- Fixtures: tenants by tenancy_admin, projects in service contexts. The superuser reads and puts
-- back one context value, its key and its fingerprint, standing in for a second session that keeps
-- its context while another changes the membership.

begin;
select plan(53);

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as member_a,
    'user_2' || md5(random()::text) as owner_b,
    'auth0|' || gen_random_uuid() as stranger,
    gen_random_uuid() as unknown_tenant
\gset

set local role tenancy_admin;
-- Tenant A has a key holding '|' (the context value reads it by its length); B has none.
select tenancy.create_tenant('context-a', 'Context A', :'owner_a', p_key => 'acct|42') as tenant_a \gset
select tenancy.create_tenant('context-b', 'Context B', :'owner_b') as tenant_b \gset

set local role tenancy_service;
select tenant_id as ignored from tenancy.set_context(:'tenant_b') \gset
insert into app.projects (name) values ('b-secret');
select tenant_id as ignored from tenancy.set_context(:'tenant_a') \gset
select tenancy.add_member(:'member_a', 'member') \gset
insert into app.projects (name) values ('a-one'), ('a-two');
select tenancy.clear_context() \gset

-- No context -------------------------------------------------------------------------------------

set local role tenancy_app;
select is(tenancy.current_tenant_id(), null, 'current_tenant_id() is NULL without a context');
select is(tenancy.current_user_id(), null, 'current_user_id() is NULL without a context');
select is(tenancy.current_member_role(), null, 'current_member_role() is NULL without a context');
select is((select count(*) from app.projects), 0::bigint, 'no project is visible without a context');

-- set_context ------------------------------------------------------------------------------------

-- tenancy_service sets tenant and user; the role comes from the membership.
set local role tenancy_service;
select results_eq(
    format('select tenant_id, user_id, role from tenancy.set_context(%L, %L)', :'tenant_a', :'member_a'),
    format('values (%L::uuid, %L::text, %L::text)', :'tenant_a', :'member_a', 'member'),
    'set_context returns tenant, user and member role'
);

-- The context survives SET ROLE tenancy_app.
set local role tenancy_app;
select is(tenancy.current_tenant_id(), :'tenant_a'::uuid, 'current_tenant_id() is tenant A');
select is(tenancy.current_user_id(), :'member_a'::text, 'current_user_id() is the member');
select is(tenancy.current_member_role(), 'member', 'current_member_role() is member');
select is(tenancy.current_tenant_key(), 'acct|42', 'current_tenant_key() is tenant A''s key');
select is(
    tenancy.context_tenant_key(array['member', 'viewer']), 'acct|42',
    'context_tenant_key() gives the key to an allowed role'
);
select is(
    tenancy.context_tenant_key(array['owner']), null,
    'context_tenant_key() gives no key to a role not in the list'
);
select results_eq(
    'select tenant_id, name from app.projects order by name',
    format('values (%L::uuid, %L::text), (%L, %L)', :'tenant_a', 'a-one', :'tenant_a', 'a-two'),
    'the member sees the two projects of tenant A and nothing else'
);

-- Forged values ----------------------------------------------------------------------------------

-- The application can read its context value; keep it.
select current_setting('tenancy.context') as legit \gset

-- Swap tenant B's id into the legitimate value: no tenant, and none of B's rows.
select set_config('tenancy.context', replace(:'legit', :'tenant_a', :'tenant_b'), true) as forged \gset
select is(tenancy.current_tenant_id(), null, 'a value with another tenant swapped in gives no tenant');
select is(
    (
        select count(*) from app.projects
        where tenant_id = :'tenant_b'
    ),
    0::bigint,
    'a value with another tenant swapped in shows none of that tenant''s rows'
);
select is((select count(*) from app.projects), 0::bigint, '... and no row at all');

-- Swap the role instead (member -> owner): no context, so no member management either.
select set_config('tenancy.context', replace(:'legit', '|member|', '|owner|'), true) as forged \gset
select is(tenancy.current_member_role(), null, 'a value with an escalated role gives no role');
select is(tenancy.current_tenant_key(), null, 'a value with an escalated role gives no key');
select throws_ok(
    format('select tenancy.add_member(%L, %L)', :'stranger', 'owner'),
    'TN001',
    'no tenant context: call tenancy.authenticate() or tenancy.set_context() first',
    'an escalated value cannot add members'
);

-- A value made up from scratch for tenant B, with a user of its own: no tenant.
select set_config(
    'tenancy.context',
    regexp_replace(replace(:'legit', :'tenant_a', :'tenant_b'), '[^|]*$', :'owner_b'),
    true
) as forged \gset
select is(tenancy.current_tenant_id(), null, 'a made-up value for tenant B gives no tenant');

-- Same tenant and role, another user: the tenant stays (the key covers tenant and role), the
-- user is refused (the fingerprint covers the whole value).
select set_config('tenancy.context', replace(:'legit', :'member_a', :'stranger'), true) as forged \gset
select is(tenancy.current_tenant_id(), :'tenant_a'::uuid, 'a value with another user keeps its tenant');
select is(tenancy.current_user_id(), null, 'a value with another user gives no user');

-- Same tenant and role, another key (the key of another tenant, say): the tenant stays, the key
-- is refused (the fingerprint covers it).
select set_config('tenancy.context', replace(:'legit', '|7|acct|42', '|2|43'), true) as forged \gset
select is(tenancy.current_tenant_id(), :'tenant_a'::uuid, 'a value with another key keeps its tenant');
select is(tenancy.current_tenant_key(), null, 'a value with another key gives no key');

-- Moving the fingerprint to match a forged value is refused: 42501.
select throws_ok(
    $$select setval('tenancy.context_fingerprint', 1)$$,
    '42501',
    'permission denied for sequence context_fingerprint',
    'tenancy_app cannot setval the context fingerprint'
);
select throws_ok(
    $$select nextval('tenancy.context_fingerprint')$$,
    '42501',
    'permission denied for sequence context_fingerprint',
    'tenancy_app cannot nextval the context fingerprint'
);
select throws_ok(
    'alter sequence tenancy.context_fingerprint restart',
    '42501',
    'must be owner of sequence context_fingerprint',
    'tenancy_app cannot alter the context fingerprint'
);

-- ... nor the key a forged value is refused: 42501.
select throws_ok(
    $$select setval('tenancy.context_key', 1)$$,
    '42501',
    'permission denied for sequence context_key',
    'tenancy_app cannot setval the context key'
);
select throws_ok(
    $$select nextval('tenancy.context_key')$$,
    '42501',
    'permission denied for sequence context_key',
    'tenancy_app cannot nextval the context key'
);
select throws_ok(
    'alter sequence tenancy.context_key restart',
    '42501',
    'must be owner of sequence context_key',
    'tenancy_app cannot alter the context key'
);

-- The untouched value still works.
select set_config('tenancy.context', :'legit', true) as restored \gset
select is(tenancy.current_tenant_id(), :'tenant_a'::uuid, 'the legitimate value still gives tenant A');
select is(tenancy.current_user_id(), :'member_a'::text, '... and its user');

-- clear_context ----------------------------------------------------------------------------------

select tenancy.clear_context() \gset
select is(tenancy.current_tenant_id(), null, 'clear_context() drops the tenant');
select is((select count(*) from app.projects), 0::bigint, 'after clear_context() no project is visible');

-- Writing the old value back does not bring the context back.
select set_config('tenancy.context', :'legit', true) as restored \gset
select is(tenancy.current_tenant_id(), null, 'a cleared context cannot be restored with set_config');

-- A service context ------------------------------------------------------------------------------

set local role tenancy_service;
select tenant_id as ignored from tenancy.set_context(:'tenant_b') \gset
set local role tenancy_app;
select is(tenancy.current_member_role(), 'service', 'without a user the role is service');
select is(tenancy.current_user_id(), null, 'without a user current_user_id() is NULL');
select is(tenancy.current_tenant_key(), null, 'a tenant without a key: current_tenant_key() is NULL');
select results_eq(
    'select name from app.projects',
    $$values ('b-secret'::text)$$,
    'a service context of tenant B sees B''s project only'
);

-- tenancy_admin may not: an operator reads a tenant's rows through tenancy.begin_support_access
-- (audited, read-only, time-limited; tests/pgtap/28-support_access.sql). 42501.
set local role tenancy_admin;
select throws_ok(
    format('select tenancy.set_context(%L)', :'tenant_a'),
    '42501',
    'permission denied for function set_context',
    'tenancy_admin cannot set a context without support access'
);

-- Suspension in the same transaction ---------------------------------------------------------------

set local role tenancy_service;
select tenant_id as ignored from tenancy.set_context(:'tenant_a', :'member_a') \gset

-- tenancy_admin suspends A: a context set before the change keeps working until its transaction
-- ends (here the change is not even committed); every context set after it is refused.
set local role tenancy_admin;
select tenancy.suspend_tenant(:'tenant_a') \gset
set local role tenancy_app;
select is(
    tenancy.current_tenant_id(), :'tenant_a'::uuid, 'a context set before suspend_tenant lasts until its transaction ends'
);

-- A new context for a suspended tenant: TN002.
set local role tenancy_service;
select throws_ok(
    format('select tenancy.set_context(%L, %L)', :'tenant_a', :'member_a'),
    'TN002',
    format('tenant %s is suspended', :'tenant_a'),
    'set_context for a suspended tenant is TN002'
);
set local role tenancy_app;
select is(tenancy.current_tenant_id(), :'tenant_a'::uuid, 'the refused set_context left the earlier context in place');

-- Reactivated, A takes new contexts again.
set local role tenancy_admin;
select tenancy.reactivate_tenant(:'tenant_a') \gset
set local role tenancy_service;
select tenant_id as ignored from tenancy.set_context(:'tenant_a', :'member_a') \gset
set local role tenancy_app;
select is(tenancy.current_tenant_id(), :'tenant_a'::uuid, 'after reactivate_tenant a new context works');
select is((select count(*) from app.projects), 2::bigint, 'after reactivate_tenant A''s projects are visible');

-- A membership change in the same transaction -------------------------------------------------------

-- The member's context value, key and fingerprint, kept by the superuser.
reset role;
select
    current_setting('tenancy.context') as member_context,
    currval('tenancy.context_key') as member_key,
    currval('tenancy.context_fingerprint') as member_fingerprint
\gset

-- A service context of A makes the member a viewer.
set local role tenancy_service;
select tenant_id as ignored from tenancy.set_context(:'tenant_a') \gset
select tenancy.set_member_role(:'member_a', 'viewer') \gset

-- The member's session still holds its old context (put back by the superuser): it keeps its
-- role until its transaction ends.
reset role;
select
    set_config('tenancy.context', :'member_context', true) as restored,
    setval('tenancy.context_key', :member_key) as restored_key,
    setval('tenancy.context_fingerprint', :member_fingerprint) as restored_fingerprint
\gset
set local role tenancy_app;
select is(tenancy.current_member_role(), 'member', 'a context set before the role change keeps its role');
select is(tenancy.current_user_id(), :'member_a'::text, '... and its user');

-- A new context picks up the new role.
set local role tenancy_service;
select tenant_id as ignored from tenancy.set_context(:'tenant_a', :'member_a') \gset
set local role tenancy_app;
select is(tenancy.current_member_role(), 'viewer', 'a new context has the new role');
select is((select count(*) from app.projects), 2::bigint, 'the viewer reads A''s projects');

-- Refused set_context calls --------------------------------------------------------------------------

set local role tenancy_service;
select throws_ok(
    format('select tenancy.set_context(%L, %L)', :'tenant_a', :'stranger'),
    'TN003',
    format('user %L is not a member of tenant %s', :'stranger', :'tenant_a'),
    'set_context with a user who is not a member is TN003'
);
select throws_ok(
    format('select tenancy.set_context(%L, %L)', :'tenant_b', :'member_a'),
    'TN003',
    format('user %L is not a member of tenant %s', :'member_a', :'tenant_b'),
    'set_context with a member of another tenant is TN003'
);
select throws_ok(
    format('select tenancy.set_context(%L)', :'unknown_tenant'),
    'P0002',
    format('tenant %s does not exist', :'unknown_tenant'),
    'set_context for an unknown tenant is P0002'
);
select throws_ok(
    'select tenancy.set_context(NULL)',
    'P0002',
    'tenant NULL does not exist',
    'set_context without a tenant is P0002'
);

-- The refused calls left the viewer's context in place.
set local role tenancy_app;
select is(tenancy.current_user_id(), :'member_a'::text, 'refused set_context calls keep the current context');

reset role;
select * from finish();
rollback;
