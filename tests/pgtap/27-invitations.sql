-- Invitations: tenancy.invite, tenancy.accept_invitation, tenancy.revoke_invitation and the list
-- (tenancy.invitations under row level security). Single use, expiry, revocation, role limits,
-- tenants kept apart, bad tokens refused and counted while the invitation stays usable, the
-- email claim, existing members, suspended tenants. Each refusal is paired with the legitimate
-- request succeeding. Runs as the real roles; the superuser signs tokens, moves an expiry into
-- the past (as time would) and reads what no role may (token hashes, security events).

begin;
select plan(77);

delete from tenancy.jwt_config;

\set secret 'pgtap-invitations-secret-0123456789abcdefghijklmnopqrstuvwxyz'

\ir setup/helpers.psql

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as admin_a,
    'auth0|' || gen_random_uuid() as member_a,
    'auth0|' || gen_random_uuid() as owner_b,
    'auth0|' || gen_random_uuid() as invitee,
    'auth0|' || gen_random_uuid() as invitee2,
    'auth0|' || gen_random_uuid() as stranger,
    'auth0|' || gen_random_uuid() as lock_user,
    'auth0|' || gen_random_uuid() as new_owner,
    'auth0|' || gen_random_uuid() as new_admin,
    'auth0|' || gen_random_uuid() as new_member,
    'inv-a-' || left(md5(random()::text), 8) as slug_a,
    'inv-b-' || left(md5(random()::text), 8) as slug_b,
    extract(epoch from now())::bigint + 300 as soon,
    extract(epoch from now())::bigint - 60 as past
\gset

set local role tenancy_admin;
select tenancy.configure_jwt(:'secret', null, null) \gset
select tenancy.create_tenant(:'slug_a', 'Invitations A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant(:'slug_b', 'Invitations B', :'owner_b') as tenant_b \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.add_member(:'admin_a', 'admin') \gset
select tenancy.add_member(:'member_a', 'member') \gset
reset role;

select
    pg_temp.jwt(jsonb_build_object('sub', :'invitee', 'exp', :soon), :'secret') as t_invitee,
    pg_temp.jwt(jsonb_build_object('sub', :'invitee', 'exp', :past), :'secret') as t_invitee_expired,
    pg_temp.jwt(jsonb_build_object('sub', :'invitee', 'exp', :soon), :'secret' || '-other') as t_invitee_forged,
    pg_temp.jwt(
        jsonb_build_object('sub', :'invitee', 'tenant_id', :'tenant_a', 'exp', :soon), :'secret'
    ) as t_invitee_in_a,
    pg_temp.jwt(
        jsonb_build_object('sub', :'invitee2', 'tenant_id', :'tenant_b', 'exp', :soon), :'secret'
    ) as t_invitee2_claims_b,
    pg_temp.jwt(jsonb_build_object('sub', :'stranger', 'exp', :soon), :'secret') as t_stranger,
    pg_temp.jwt(jsonb_build_object('sub', :'owner_a', 'exp', :soon), :'secret') as t_owner_a,
    pg_temp.jwt(jsonb_build_object('sub', :'new_owner', 'exp', :soon), :'secret') as t_new_owner,
    pg_temp.jwt(jsonb_build_object('sub', :'new_admin', 'exp', :soon), :'secret') as t_new_admin,
    pg_temp.jwt(jsonb_build_object('sub', :'new_member', 'exp', :soon), :'secret') as t_new_member,
    pg_temp.jwt(
        jsonb_build_object('sub', :'stranger', 'email', 'Bob.Smith@Example.COM', 'exp', :soon), :'secret'
    ) as t_bob,
    pg_temp.jwt(
        jsonb_build_object('sub', :'stranger', 'email', 'eve@example.com', 'exp', :soon), :'secret'
    ) as t_eve
\gset

-- Who may invite, and what ---------------------------------------------------------------------

set local role tenancy_app;
select tenancy.clear_context();
select throws_ok(
    $$select tenancy.invite('x@example.com', 'member')$$,
    'TN001',
    'no tenant context: call tenancy.authenticate() or tenancy.set_context() first',
    'without a context nobody invites (TN001)'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.invite('x@example.com', 'viewer')$$,
    '42501',
    format('role member of tenant %s cannot manage invitations', :'tenant_a'),
    'a member cannot invite (42501)'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'admin_a');
select throws_ok(
    $$select tenancy.invite('boss@example.com', 'owner')$$,
    '42501',
    format('an admin cannot invite %L as an owner of tenant %s', 'boss@example.com', :'tenant_a'),
    'an admin cannot invite an owner (42501)'
);
select
    id as inv_admin_id,
    token as inv_admin
from tenancy.invite('helper@example.com', 'admin') \gset
select ok(:'inv_admin' ~ '^pgti_[A-Za-z0-9_-]{43}$', 'an admin invites an admin: the token is pgti_ and 43 base64url characters');
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select throws_ok(
    $$select tenancy.invite('not an address', 'member')$$,
    '22023',
    'invalid e-mail address ''not an address''',
    'an address that is not one is 22023, naming it'
);
select throws_ok(
    $$select tenancy.invite('bob@bücher.example', 'member')$$,
    '22023',
    'invalid e-mail address ''bob@bücher.example''',
    'a non-ASCII domain is 22023 (send it punycoded)'
);
select throws_ok(
    $$select tenancy.invite('bob@localhost', 'member')$$,
    '22023',
    'invalid e-mail address ''bob@localhost''',
    'a single-label domain is 22023'
);
select throws_ok(
    $$select tenancy.invite(null, 'member')$$, '22023', 'e-mail address is NULL', 'a NULL address is 22023'
);
select throws_ok(
    $$select tenancy.invite('bob@example.com', 'superuser')$$,
    '22023',
    'invalid member role ''superuser''',
    'an unknown role is 22023'
);
select throws_ok(
    $$select tenancy.invite('bob@example.com', 'member', interval '1 minute')$$,
    '22023',
    'invitation lifetime 00:01:00 is out of range: 5 minutes to 30 days',
    'a lifetime under 5 minutes is 22023'
);
select throws_ok(
    $$select tenancy.invite('bob@example.com', 'member', interval '31 days')$$,
    '22023',
    'invitation lifetime 31 days is out of range: 5 minutes to 30 days',
    'a lifetime over 30 days is 22023'
);
select throws_ok(
    $$select tenancy.invite('bob@example.com', 'member', null)$$,
    '22023',
    'invitation lifetime NULL is out of range: 5 minutes to 30 days',
    'a NULL lifetime is 22023'
);
select
    id as inv1_id,
    token as inv1
from tenancy.invite('Invitee@Example.COM', 'member') \gset
select
    id as inv2_id,
    token as inv2
from tenancy.invite('second@example.com', 'viewer', interval '1 hour') \gset
select
    id as inv_owner_id,
    token as inv_owner
from tenancy.invite('co-owner@example.com', 'owner') \gset
select
    id as inv_bob_id,
    token as inv_bob
from tenancy.invite('bob.smith@example.com', 'member') \gset
select
    id as inv_exp_id,
    token as inv_exp
from tenancy.invite('late@example.com', 'member') \gset
select
    id as inv_rev_id,
    token as inv_rev
from tenancy.invite('revoked@example.com', 'member') \gset
select
    id as inv_self_id,
    token as inv_self
from tenancy.invite('owner@example.com', 'viewer') \gset
select results_eq(
    format('select email::text, role::text, invited_by::text from tenancy.invitations where id = %L', :'inv1_id'),
    format('values (%L, %L, %L)', 'Invitee@example.com', 'member', :'owner_a'),
    'the owner invites: the domain is stored in lower case, the local part as given; invited_by is the owner'
);
select ok(
    (
        select expires_at = now() + interval '7 days' from tenancy.invitations
        where id = :'inv1_id'
    ),
    'an invitation lasts 7 days by default'
);
select ok(
    (
        select expires_at = now() + interval '1 hour' from tenancy.invitations
        where id = :'inv2_id'
    ),
    'or the lifetime given'
);
select isnt(:'inv1'::text, :'inv2'::text, 'each invitation has its own token');
reset role;

-- The token is stored only as its hash, where no role can read it -------------------------------

select is(
    (
        select token_hash from tenancy.invitation_tokens
        where invitation_id = :'inv1_id'
    ),
    sha256(convert_to(:'inv1', 'UTF8')),
    'tenancy.invitation_tokens holds the SHA-256 of the token'
);
select is_empty(
    format(
        $$select 1 from tenancy.invitations as i where strpos(i::text, %1$L) > 0
          union all select 1 from tenancy.invitation_tokens as t where strpos(t::text, %1$L) > 0
          union all select 1 from tenancy.security_events as e where strpos(e::text, %1$L) > 0$$,
        :'inv1'
    ),
    'the token itself is stored nowhere: not in the invitations, the hashes or the security events'
);
select hasnt_column('tenancy', 'invitations', 'token_hash', 'the tenant table has no token hash column');
select
    table_privs_are(
        'tenancy', 'invitation_tokens', r.role, array[]::text[],
        format('%s has no privilege on tenancy.invitation_tokens', r.role)
    )
from (values ('tenancy_app'), ('tenancy_service'), ('tenancy_admin'), ('tenancy_auditor')) as r (role)
order by r.role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select throws_ok(
    'select token_hash from tenancy.invitation_tokens',
    '42501',
    'permission denied for table invitation_tokens',
    'an owner (tenancy_app) cannot read the token hashes'
);
reset role;
select is(
    (
        select count(*)::int from tenancy.security_events
        where
            kind = 'invitation.created' and tenant_id = :'tenant_a' and details ->> 'invitation_id' = :'inv1_id'
            and user_id = :'owner_a' and details ->> 'email' = 'Invitee@example.com'
    ),
    1,
    'invite records an invitation.created event naming the invitation, the inviter and the address'
);

-- The list: owners and admins of the tenant --------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select is((select count(*)::int from tenancy.invitations), 8, 'the owner of A lists A''s 8 invitations');
reset role;
select pg_temp.act_as(:'tenant_a', :'admin_a');
select is((select count(*)::int from tenancy.invitations), 8, 'an admin of A lists them too');
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select is((select count(*)::int from tenancy.invitations), 0, 'a member of A lists none');
reset role;
select pg_temp.act_as(:'tenant_b', :'owner_b');
select is((select count(*)::int from tenancy.invitations), 0, 'the owner of B lists none of A''s');
select throws_ok(
    format('select tenancy.revoke_invitation(%L)', :'inv1_id'),
    'P0002',
    format('invitation %s is not an invitation of tenant %s', :'inv1_id', :'tenant_b'),
    'the owner of B cannot revoke A''s invitation (P0002, as for an unknown id)'
);
select
    id as inv_b_id,
    token as inv_b
from tenancy.invite('b-user@example.com', 'member') \gset
reset role;

-- Accepting: bad tokens are refused, counted, and leave the invitation usable ---------------------

select case when is_called then last_value else 0 end as failures_before from tenancy.auth_failures_total \gset
set local role tenancy_app;
select tenancy.clear_context();
select throws_ok(
    format('select tenancy.accept_invitation(%L, %L)', :'t_invitee_forged', :'inv1'),
    'TN004',
    null,
    'a JWT signed with another secret is TN004'
);
select throws_ok(
    format('select tenancy.accept_invitation(%L, %L)', :'t_invitee_expired', :'inv1'),
    'TN004',
    null,
    'an expired JWT is TN004'
);
select throws_ok(
    format('select tenancy.accept_invitation(%L, %L)', 'not-a-jwt', :'inv1'),
    'TN004',
    null,
    'a malformed JWT is TN004'
);
select throws_ok(
    format('select tenancy.accept_invitation(%L, %L)', :'t_invitee', 'pgti_' || repeat('A', 43)),
    'TN014',
    format('invitation %L is not valid: no such invitation', 'pgti_AAAAAAA...'),
    'an unknown invitation token is TN014, naming 12 characters of it'
);
select throws_ok(
    format('select tenancy.accept_invitation(%L, %L)', :'t_invitee', :'inv1' || 'x'),
    'TN014',
    format(
        'invitation %L is not valid: an invitation token is pgti_ and 43 base64url characters',
        left(:'inv1', 12) || '...'
    ),
    'a malformed invitation token is TN014'
);
select throws_ok(
    format('select tenancy.accept_invitation(%L, null)', :'t_invitee'),
    'TN014',
    'invitation NULL is not valid: an invitation token is pgti_ and 43 base64url characters',
    'a NULL invitation token is TN014'
);
reset role;
select is(
    (select last_value from tenancy.auth_failures_total), :failures_before::bigint + 6,
    'each of the 6 refusals was counted, though their statements rolled back'
);
select is(
    (
        select accepted_at from tenancy.invitations
        where id = :'inv1_id'
    ),
    null,
    'the invitation is still pending'
);
select is(
    (
        select count(*)::int from tenancy.memberships
        where user_id = :'invitee'
    ),
    0,
    'the invitee is nobody''s member yet'
);

set local role tenancy_app;
select results_eq(
    format('select tenant_id, user_id, role from tenancy.accept_invitation(%L, %L)', :'t_invitee', :'inv1'),
    format('values (%L::uuid, %L::text, %L::text)', :'tenant_a', :'invitee', 'member'),
    'the invitee with a valid JWT accepts: member of A'
);
select is(tenancy.current_tenant_id(), null, 'accept_invitation sets no context');
select results_eq(
    format('select tenant_id, role from tenancy.authenticate(%L)', :'t_invitee_in_a'),
    format('values (%L::uuid, %L::text)', :'tenant_a', 'member'),
    'in the same transaction the new member authenticates into A'
);
select tenancy.clear_context();
reset role;
select results_eq(
    format('select accepted_by::text from tenancy.invitations where id = %L and accepted_at is not null', :'inv1_id'),
    format('values (%L)', :'invitee'),
    'the invitation records who accepted it'
);
select is(
    (
        select count(*)::int from tenancy.security_events
        where
            kind = 'invitation.accepted' and tenant_id = :'tenant_a' and user_id = :'invitee'
            and details ->> 'invitation_id' = :'inv1_id'
    ),
    1,
    'the acceptance is an invitation.accepted event'
);

-- Single use -------------------------------------------------------------------------------------

set local role tenancy_app;
select throws_like(
    format('select tenancy.accept_invitation(%L, %L)', :'t_invitee', :'inv1'),
    format('invitation %s is not valid: it was accepted at %%', :'inv1_id'),
    'accepting it again is refused: it was accepted'
);
select throws_ok(
    format('select tenancy.accept_invitation(%L, %L)', :'t_stranger', :'inv1'),
    'TN014',
    null,
    'a stranger holding the used token is TN014'
);
select is(
    (
        select count(*)::int from tenancy.memberships
        where user_id = :'stranger'
    ),
    0,
    'and is nobody''s member'
);

-- Tenant A's invitation makes members of A only --------------------------------------------------

select results_eq(
    format('select tenant_id, role from tenancy.accept_invitation(%L, %L)', :'t_invitee2_claims_b', :'inv2'),
    format('values (%L::uuid, %L::text)', :'tenant_a', 'viewer'),
    'a token whose tenant_id claim names B accepts A''s invitation into A (the invitation names the tenant)'
);
reset role;
select is(
    (
        select count(*)::int from tenancy.memberships
        where user_id = :'invitee2' and tenant_id = :'tenant_b'
    ),
    0,
    'and makes nobody a member of B'
);
set local role tenancy_app;
select results_eq(
    format('select tenant_id, role from tenancy.accept_invitation(%L, %L)', :'t_invitee', :'inv_b'),
    format('values (%L::uuid, %L::text)', :'tenant_b', 'member'),
    'B''s invitation makes the invitee a member of B'
);

-- Expiry -------------------------------------------------------------------------------------------

reset role;
update tenancy.invitations
set created_at = created_at - interval '8 days', expires_at = now() - interval '1 second'
where id = :'inv_exp_id';
set local role tenancy_app;
select throws_like(
    format('select tenancy.accept_invitation(%L, %L)', :'t_stranger', :'inv_exp'),
    format('invitation %s is not valid: it expired at %%', :'inv_exp_id'),
    'an expired invitation is refused'
);

-- Revocation -------------------------------------------------------------------------------------

reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    format('select tenancy.revoke_invitation(%L)', :'inv_rev_id'),
    '42501',
    format('role member of tenant %s cannot manage invitations', :'tenant_a'),
    'a member cannot revoke'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'admin_a');
select throws_ok(
    format('select tenancy.revoke_invitation(%L)', :'inv_owner_id'),
    '42501',
    format('an admin cannot revoke invitation %s: it invites an owner', :'inv_owner_id'),
    'an admin cannot revoke an owner''s invitation'
);
select lives_ok(format('select tenancy.revoke_invitation(%L)', :'inv_rev_id'), 'an admin revokes a member''s invitation');
select lives_ok(format('select tenancy.revoke_invitation(%L)', :'inv_rev_id'), 'revoking it again changes nothing');
select throws_like(
    format('select tenancy.revoke_invitation(%L)', :'inv1_id'),
    format('invitation %s was accepted at %% and cannot be revoked', :'inv1_id'),
    'an accepted invitation cannot be revoked'
);
select throws_ok(
    format('select tenancy.revoke_invitation(%L)', gen_random_uuid()),
    'P0002',
    null,
    'an unknown id is P0002'
);
reset role;
select is(
    (
        select count(*)::int from tenancy.security_events
        where kind = 'invitation.revoked' and details ->> 'invitation_id' = :'inv_rev_id' and user_id = :'admin_a'
    ),
    1,
    'one invitation.revoked event, naming the admin'
);
set local role tenancy_app;
select throws_like(
    format('select tenancy.accept_invitation(%L, %L)', :'t_stranger', :'inv_rev'),
    format('invitation %s is not valid: it was revoked at %%', :'inv_rev_id'),
    'a revoked invitation is refused'
);

-- The email claim --------------------------------------------------------------------------------

select throws_ok(
    format('select tenancy.accept_invitation(%L, %L)', :'t_eve', :'inv_bob'),
    '42501',
    format('token claim email "eve@example.com" is not the address invitation %s was sent to', :'inv_bob_id'),
    'a token whose email claim is another address is refused (42501)'
);
select results_eq(
    format('select tenant_id, user_id, role from tenancy.accept_invitation(%L, %L)', :'t_bob', :'inv_bob'),
    format('values (%L::uuid, %L::text, %L::text)', :'tenant_a', :'stranger', 'member'),
    'the invited address in the email claim, in another case, accepts'
);
reset role;
select is(
    (
        select count(*)::int from tenancy.security_events
        where kind = 'invitation.accepted' and details ->> 'invitation_id' = :'inv_bob_id'
    ),
    1,
    'one acceptance of it'
);

-- Existing members; owners ------------------------------------------------------------------------

set local role tenancy_app;
select throws_ok(
    format('select tenancy.accept_invitation(%L, %L)', :'t_owner_a', :'inv_self'),
    '23505',
    format(
        'user %L is already a member of tenant %s (role owner): invitation %s stays pending',
        :'owner_a', :'tenant_a', :'inv_self_id'
    ),
    'a member already is refused (23505): an invitation never changes a role'
);
reset role;
select results_eq(
    format(
        $$select m.role::text, i.accepted_at is null
          from tenancy.memberships as m, tenancy.invitations as i
          where m.tenant_id = %L and m.user_id = %L and i.id = %L$$,
        :'tenant_a', :'owner_a', :'inv_self_id'
    ),
    $$values ('owner', true)$$,
    'the owner stays owner and the invitation stays pending'
);
set local role tenancy_app;
select results_eq(
    format('select role from tenancy.accept_invitation(%L, %L)', :'t_new_owner', :'inv_owner'),
    format('values (%L::text)', 'owner'),
    'an owner''s invitation makes an owner'
);
select results_eq(
    format('select role from tenancy.accept_invitation(%L, %L)', :'t_new_admin', :'inv_admin'),
    format('values (%L::text)', 'admin'),
    'the invitation the admin sent makes an admin'
);

-- A suspended tenant -----------------------------------------------------------------------------

reset role;
select pg_temp.act_as(:'tenant_b', :'owner_b');
select
    id as inv_b2_id,
    token as inv_b2
from tenancy.invite('later@example.com', 'member') \gset
reset role;
set local role tenancy_admin;
select tenancy.suspend_tenant(:'tenant_b') \gset
set local role tenancy_app;
select throws_ok(
    format('select tenancy.accept_invitation(%L, %L)', :'t_stranger', :'inv_b2'),
    'TN002',
    format('tenant %s is suspended', :'tenant_b'),
    'an invitation to a suspended tenant is refused (TN002)'
);
set local role tenancy_admin;
select tenancy.reactivate_tenant(:'tenant_b') \gset
set local role tenancy_app;
select results_eq(
    format('select tenant_id from tenancy.accept_invitation(%L, %L)', :'t_stranger', :'inv_b2'),
    format('values (%L::uuid)', :'tenant_b'),
    'reactivated, the same invitation is accepted'
);

-- Lockout: refusals that are the user's doing count towards it -----------------------------------

reset role;
set local role tenancy_admin;
select tenancy.configure_auth(p_lockout_failures => 2, p_lockout_window => interval '1 day') \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select
    id as inv_lock_id,
    token as inv_lock
from tenancy.invite('lock@example.com', 'member') \gset
reset role;
select
    pg_temp.jwt(
        jsonb_build_object('sub', :'lock_user', 'email', 'wrong@example.com', 'exp', :soon), :'secret'
    ) as t_lock_wrong,
    pg_temp.jwt(jsonb_build_object('sub', :'lock_user', 'exp', :soon), :'secret') as t_lock_right
\gset
set local role tenancy_app;
select throws_ok(
    format('select tenancy.accept_invitation(%L, %L)', :'t_lock_wrong', :'inv_lock'),
    '42501', null, 'a wrong email claim, once'
);
select throws_ok(
    format('select tenancy.accept_invitation(%L, %L)', :'t_lock_wrong', :'inv_lock'),
    '42501', null, 'twice: the limit is reached'
);
select throws_like(
    format('select tenancy.accept_invitation(%L, %L)', :'t_lock_right', :'inv_lock'),
    format('too many failed attempts for user:%s: locked out until %%', :'lock_user'),
    'the user is locked out (TN013), even with a token that would do'
);
select results_eq(
    format('select role from tenancy.accept_invitation(%L, %L)', :'t_new_member', :'inv_lock'),
    $$values ('member'::text)$$,
    'another user is not locked out'
);
reset role;
select is(
    tenancy.auth_failures('user:' || :'lock_user'),
    2,
    'the user''s two wrong claims are counted (the attempt while locked out is not counted again)'
);
select is(
    (
        select count(*)::int from tenancy.security_events
        where kind = 'authentication.failed' and details ->> 'function' = 'accept_invitation'
    ),
    0,
    'the refusals'' events rolled back with their statements (the counts did not)'
);

-- Grants -------------------------------------------------------------------------------------------

select function_privs_are(
    'tenancy', 'accept_invitation', array['text', 'text'], 'tenancy_auditor', array[]::text[],
    'tenancy_auditor may not accept invitations'
);
select function_privs_are(
    'tenancy', 'accept_invitation', array['text', 'text'], 'tenancy_app', array['EXECUTE'],
    'tenancy_app may accept invitations'
);
select function_privs_are(
    'tenancy', 'invite', array['text', 'text', 'interval'], 'tenancy_admin', array[]::text[],
    'tenancy_admin (a platform operator) does not invite into tenants'
);

select * from finish();
rollback;
