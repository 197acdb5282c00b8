-- Members: add_member, set_member_role and remove_member as owners, admins, members, viewers
-- and a service context; the last-owner rule; every change stays inside the current tenant.
-- Fixtures: tenants are created by tenancy_admin; the superuser only reads memberships back.

begin;
select plan(46);

\ir setup/helpers.psql

-- User ids as identity providers write them (Auth0, Clerk, Google, SAML, Firebase-like).
-- members_of(tenant): user and role of every membership, read back by the superuser.
create function pg_temp.members_of(p_tenant_id uuid)
returns table (user_id text, role text)
language sql
as $$
    select m.user_id::text, m.role::text from tenancy.memberships as m
    where m.tenant_id = p_tenant_id
    order by m.role::text, m.user_id
$$;

select
    'auth0|' || gen_random_uuid() as owner_a,
    'user_2' || md5(random()::text) as admin_a,
    'google-oauth2|' || (random() * 1e18)::bigint as member_a,
    'samlp|acme|jane.doe@acme.example' as viewer_a,
    left(md5(random()::text), 28) as newbie,
    'auth0|' || gen_random_uuid() as owner_b,
    'user_2' || md5(random()::text) as shared,
    gen_random_uuid()::text as only_b,
    'auth0|' || gen_random_uuid() as stranger,
    'auth0|' || gen_random_uuid() as ghost
\gset

set local role tenancy_admin;
select tenancy.create_tenant('alpha', 'Alpha', :'owner_a') as tenant_a \gset
select tenancy.create_tenant('beta', 'Beta', :'owner_b') as tenant_b \gset
reset role;

-- Tenant B's owner adds the shared user and a user only B has.
select pg_temp.act_as(:'tenant_b', :'owner_b');
select lives_ok(
    format('select tenancy.add_member(%L, %L)', :'shared', 'member'),
    'the owner of B adds the shared user to B'
);
select lives_ok(
    format('select tenancy.add_member(%L, %L)', :'only_b', 'viewer'),
    'the owner of B adds a user that only B has'
);

-- The owner of A --------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');

-- The owner adds an admin, a member, a viewer and the shared user.
select lives_ok(
    format('select tenancy.add_member(%L, %L)', :'admin_a', 'admin'), 'an owner adds an admin'
);
select lives_ok(
    format('select tenancy.add_member(%L, %L)', :'member_a', 'member'), 'an owner adds a member'
);
select lives_ok(
    format('select tenancy.add_member(%L, %L)', :'viewer_a', 'viewer'), 'an owner adds a viewer'
);
select lives_ok(
    format('select tenancy.add_member(%L, %L)', :'shared', 'viewer'), 'an owner adds the shared user to A'
);

-- An unknown role: 22023 naming it.
select throws_ok(
    format('select tenancy.add_member(%L, %L)', :'newbie', 'superuser'),
    '22023',
    'invalid member role ''superuser''',
    'add_member refuses an unknown role'
);
select throws_ok(
    format('select tenancy.set_member_role(%L, %L)', :'member_a', 'Owner'),
    '22023',
    'invalid member role ''Owner''',
    'set_member_role refuses an unknown role'
);

-- Adding someone twice: 23505 naming the user, the tenant and the present role.
select throws_ok(
    format('select tenancy.add_member(%L, %L)', :'member_a', 'viewer'),
    '23505',
    format('user %L is already a member of tenant %s (role member)', :'member_a', :'tenant_a'),
    'adding an existing member is 23505'
);

-- Someone who is not a member: P0002 for set_member_role and remove_member.
select throws_ok(
    format('select tenancy.set_member_role(%L, %L)', :'stranger', 'member'),
    'P0002',
    format('user %L is not a member of tenant %s', :'stranger', :'tenant_a'),
    'changing the role of a non-member is P0002'
);
select throws_ok(
    format('select tenancy.remove_member(%L)', :'stranger'),
    'P0002',
    format('user %L is not a member of tenant %s', :'stranger', :'tenant_a'),
    'removing a non-member is P0002'
);

-- Nobody changes their own role, not even an owner: 42501.
select throws_ok(
    format('select tenancy.set_member_role(%L, %L)', :'owner_a', 'admin'),
    '42501',
    format('user %L cannot change their own role', :'owner_a'),
    'an owner cannot change their own role'
);

-- The last owner can neither leave nor be demoted: TN005.
select throws_ok(
    format('select tenancy.remove_member(%L)', :'owner_a'),
    'TN005',
    format('user %L is the last owner of tenant %s', :'owner_a', :'tenant_a'),
    'the last owner cannot remove themselves'
);
select pg_temp.act_as(:'tenant_a');
select throws_ok(
    format('select tenancy.set_member_role(%L, %L)', :'owner_a', 'admin'),
    'TN005',
    format('user %L is the last owner of tenant %s', :'owner_a', :'tenant_a'),
    'a service context cannot demote the last owner'
);
select throws_ok(
    format('select tenancy.remove_member(%L)', :'owner_a'),
    'TN005',
    format('user %L is the last owner of tenant %s', :'owner_a', :'tenant_a'),
    'a service context cannot remove the last owner'
);

-- The admin of A ----------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'admin_a');

-- An admin adds members and changes their roles.
select lives_ok(
    format('select tenancy.add_member(%L, %L)', :'newbie', 'member'), 'an admin adds a member'
);
select lives_ok(
    format('select tenancy.set_member_role(%L, %L)', :'newbie', 'viewer'), 'an admin demotes a member to viewer'
);

-- ... but never touches owners: 42501.
select throws_ok(
    format('select tenancy.add_member(%L, %L)', :'stranger', 'owner'),
    '42501',
    format('an admin cannot make user %L an owner of tenant %s', :'stranger', :'tenant_a'),
    'an admin cannot add an owner'
);
select throws_ok(
    format('select tenancy.set_member_role(%L, %L)', :'member_a', 'owner'),
    '42501',
    format(
        'an admin cannot change the role of user %L from member to owner: owners are managed by owners', :'member_a'
    ),
    'an admin cannot promote a member to owner'
);
select throws_ok(
    format('select tenancy.set_member_role(%L, %L)', :'owner_a', 'admin'),
    '42501',
    format(
        'an admin cannot change the role of user %L from owner to admin: owners are managed by owners', :'owner_a'
    ),
    'an admin cannot demote an owner'
);
select throws_ok(
    format('select tenancy.remove_member(%L)', :'owner_a'),
    '42501',
    format('an admin cannot remove owner %L of tenant %s', :'owner_a', :'tenant_a'),
    'an admin cannot remove an owner'
);
select throws_ok(
    format('select tenancy.set_member_role(%L, %L)', :'admin_a', 'member'),
    '42501',
    format('user %L cannot change their own role', :'admin_a'),
    'an admin cannot change their own role'
);

-- Members and viewers manage nobody ---------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    format('select tenancy.add_member(%L, %L)', :'stranger', 'viewer'),
    '42501',
    format('role member of tenant %s cannot manage members', :'tenant_a'),
    'a member cannot add members'
);
select throws_ok(
    format('select tenancy.remove_member(%L)', :'newbie'),
    '42501',
    format('role member of tenant %s cannot manage members', :'tenant_a'),
    'a member cannot remove members'
);

select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok(
    format('select tenancy.add_member(%L, %L)', :'stranger', 'viewer'),
    '42501',
    format('role viewer of tenant %s cannot manage members', :'tenant_a'),
    'a viewer cannot add members'
);
select throws_ok(
    format('select tenancy.set_member_role(%L, %L)', :'viewer_a', 'owner'),
    '42501',
    format('role viewer of tenant %s cannot manage members', :'tenant_a'),
    'a viewer cannot promote themselves'
);
select throws_ok(
    format('select tenancy.remove_member(%L)', :'newbie'),
    '42501',
    format('role viewer of tenant %s cannot manage members', :'tenant_a'),
    'a viewer cannot remove members'
);

-- A manager whose membership changed after the context was set ------------------------------------

-- The caller's role is read again, from the memberships table, once the tenant row is locked:
-- a context keeps saying admin after the membership is gone or lowered (here by direct writes,
-- which bump no epoch, the state a concurrent removal leaves while its remover holds the lock).
select pg_temp.act_as(:'tenant_a', :'owner_a');
select lives_ok(
    format('select tenancy.add_member(%L, %L)', :'ghost', 'admin'), 'an owner adds another admin'
);
select pg_temp.act_as(:'tenant_a', :'ghost');
reset role;
delete from tenancy.memberships
where tenant_id = :'tenant_a' and user_id = :'ghost';
set local role tenancy_app;
select throws_ok(
    format('select tenancy.add_member(%L, %L)', :'ghost', 'admin'),
    '42501',
    format('user %L is no longer a member of tenant %s', :'ghost', :'tenant_a'),
    'a removed admin cannot add herself back on her old context'
);
select throws_ok(
    format('select tenancy.remove_member(%L)', :'viewer_a'),
    '42501',
    format('user %L is no longer a member of tenant %s', :'ghost', :'tenant_a'),
    'a removed admin cannot remove members on her old context'
);
reset role;
insert into tenancy.memberships (tenant_id, user_id, role) values (:'tenant_a', :'ghost', 'viewer');
set local role tenancy_app;
select throws_ok(
    format('select tenancy.set_member_role(%L, %L)', :'viewer_a', 'admin'),
    '42501',
    format('role viewer of tenant %s cannot manage members', :'tenant_a'),
    'an admin demoted to viewer cannot change roles on her old context'
);

-- A service context has no membership to read again: it still manages members.
select pg_temp.act_as(:'tenant_a');
select lives_ok(
    format('select tenancy.remove_member(%L)', :'ghost'), 'a service context removes a member'
);

-- A second owner, then the first may go -------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select lives_ok(
    format('select tenancy.set_member_role(%L, %L)', :'admin_a', 'owner'), 'an owner promotes the admin to owner'
);
select lives_ok(
    format('select tenancy.set_member_role(%L, %L)', :'member_a', 'admin'), 'an owner promotes a member to admin'
);

-- Now owner_a is not the last owner: the new owner demotes them to admin, then back.
select pg_temp.act_as(:'tenant_a', :'admin_a');
select lives_ok(
    format('select tenancy.set_member_role(%L, %L)', :'owner_a', 'admin'), 'an owner demotes another owner'
);
select lives_ok(
    format('select tenancy.set_member_role(%L, %L)', :'owner_a', 'owner'), 'an owner promotes an admin to owner'
);

-- With two owners, one may leave on their own.
select pg_temp.act_as(:'tenant_a', :'owner_a');
select lives_ok(
    format('select tenancy.remove_member(%L)', :'owner_a'), 'an owner who is not the last one leaves'
);

-- The admin removes the new viewer.
select pg_temp.act_as(:'tenant_a', :'member_a');
select lives_ok(format('select tenancy.remove_member(%L)', :'newbie'), 'an admin removes a viewer');

-- Changes stay in the current tenant ------------------------------------------------------------------

-- A user only B has is unknown in A: P0002, nothing happens to B.
select throws_ok(
    format('select tenancy.remove_member(%L)', :'only_b'),
    'P0002',
    format('user %L is not a member of tenant %s', :'only_b', :'tenant_a'),
    'removing, from A, a user that only B has is P0002'
);
select throws_ok(
    format('select tenancy.set_member_role(%L, %L)', :'only_b', 'admin'),
    'P0002',
    format('user %L is not a member of tenant %s', :'only_b', :'tenant_a'),
    'changing, from A, the role of a user that only B has is P0002'
);

-- The shared user leaves A; their membership in B is untouched.
select lives_ok(format('select tenancy.remove_member(%L)', :'shared'), 'A removes the shared user from A');

-- Without a context ---------------------------------------------------------------------------------

select tenancy.clear_context();
select throws_ok(
    format('select tenancy.add_member(%L, %L)', :'stranger', 'viewer'),
    'TN001',
    'no tenant context: call tenancy.authenticate() or tenancy.set_context() first',
    'add_member without a context is TN001'
);
select throws_ok(
    format('select tenancy.set_member_role(%L, %L)', :'viewer_a', 'member'),
    'TN001',
    'no tenant context: call tenancy.authenticate() or tenancy.set_context() first',
    'set_member_role without a context is TN001'
);
select throws_ok(
    format('select tenancy.remove_member(%L)', :'viewer_a'),
    'TN001',
    'no tenant context: call tenancy.authenticate() or tenancy.set_context() first',
    'remove_member without a context is TN001'
);

-- Final state, read back by the superuser ---------------------------------------------------------

reset role;
select results_eq(
    format('select * from pg_temp.members_of(%L)', :'tenant_a'),
    format(
        'values (%L::text, %L::text), (%L, %L), (%L, %L)',
        :'member_a', 'admin', :'admin_a', 'owner', :'viewer_a', 'viewer'
    ),
    'tenant A: the new owner, the promoted admin and the viewer; the rest left'
);
select results_eq(
    format('select * from pg_temp.members_of(%L)', :'tenant_b'),
    format(
        'select * from (values (%L::text, %L::text), (%L, %L), (%L, %L)) as v (u, r) order by r, u',
        :'shared', 'member', :'owner_b', 'owner', :'only_b', 'viewer'
    ),
    'tenant B is untouched by everything done in A'
);

select * from finish();
rollback;
