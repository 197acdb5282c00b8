-- API keys: create (owners and admins; admins make no owner keys), authenticate into the key's
-- tenant with the key's role and no user, list without secrets, revoke, expiry, suspended
-- tenants, and what a key context may not do. Each refusal is paired with the legitimate request
-- succeeding. Runs as the real roles; the superuser only moves an expiry into the past, as time
-- would, and suspends a tenant as tenancy_admin.

begin;
select plan(54);

\ir setup/helpers.psql

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as admin_a,
    'auth0|' || gen_random_uuid() as member_a,
    'auth0|' || gen_random_uuid() as owner_b,
    'ak-a-' || left(md5(random()::text), 8) as slug_a,
    'ak-b-' || left(md5(random()::text), 8) as slug_b
\gset

set local role tenancy_admin;
select tenancy.create_tenant(:'slug_a', 'Keys A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant(:'slug_b', 'Keys B', :'owner_b') as tenant_b \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.add_member(:'admin_a', 'admin');
select tenancy.add_member(:'member_a', 'member');
reset role;
select
    tenancy.base64url_encode(uuid_send(:'tenant_a')) as tenant_a_b64,
    tenancy.base64url_encode(uuid_send(:'tenant_b')) as tenant_b_b64
\gset

-- Creating keys --------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select
    id as member_key_id,
    key as member_key
from tenancy.create_api_key('  ci deploys ', 'member') \gset
select
    id as owner_key_id,
    key as owner_key
from tenancy.create_api_key('billing sync', 'owner') \gset
select ok(
    :'member_key' ~ '^pgtk_[A-Za-z0-9_-]{65}$',
    'create_api_key returns the key once: pgtk_ and 65 base64url characters'
);
select is(
    substr(:'member_key', 6, 22),
    :'tenant_a_b64',
    'the key carries its tenant, so its lookup leads with tenant_id'
);
select isnt(
    substr(:'member_key', 28), substr(:'owner_key', 28), 'two keys share nothing of their random part'
);
select results_eq(
    format($$select name, role::text, prefix, created_by from tenancy.api_keys where id = %L$$, :'member_key_id'),
    format($$values ('ci deploys', 'member', %L, %L)$$, substr(:'member_key', 28, 8), :'owner_a'),
    'the owner lists the key: trimmed name, role, the 8 characters after the tenant part, creator'
);
select is(
    (
        select count(*)::integer from tenancy.api_keys as k
        where k.prefix = substr(:'member_key', 28)
    ),
    0,
    'the listed prefix is not the key''s random part'
);
select throws_ok(
    $$select * from tenancy.api_key_secrets$$,
    '42501',
    'permission denied for table api_key_secrets',
    'tenancy_app cannot read the key hashes'
);
select is(
    (
        select count(*)::integer from information_schema.columns as c
        where c.table_schema = 'tenancy' and c.table_name = 'api_keys' and c.column_name ~ 'hash|secret|key$'
    ),
    0,
    'tenancy.api_keys, which tenancy_app reads, has no hash or secret column'
);
select throws_ok(
    $$select tenancy.create_api_key('bad role', 'superuser')$$,
    '22023',
    'invalid member role ''superuser''',
    'create_api_key refuses an unknown role, naming it'
);
select throws_ok(
    $$select tenancy.create_api_key('   ', 'member')$$,
    '22023',
    'invalid API key name ''   '': 1 to 200 characters once trimmed',
    'create_api_key refuses an empty name'
);
select throws_like(
    $$select tenancy.create_api_key('old', 'member', now() - interval '1 day')$$,
    '%is not in the future',
    'create_api_key refuses an expiry in the past'
);
reset role;

select pg_temp.act_as(:'tenant_a', :'admin_a');
select throws_ok(
    $$select tenancy.create_api_key('admin makes owner', 'owner')$$,
    '42501',
    format('an admin cannot create an owner API key in tenant %s', :'tenant_a'),
    'an admin cannot create an owner key'
);
select
    id as admin_key_id,
    key as admin_key
from tenancy.create_api_key('admin tools', 'admin', now() + interval '1 day') \gset
select is(
    (
        select role::text from tenancy.api_keys
        where id = :'admin_key_id'
    ), 'admin',
    'an admin creates an admin key with an expiry'
);
reset role;

select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.create_api_key('member key', 'viewer')$$,
    '42501',
    format('role member of tenant %s cannot manage API keys', :'tenant_a'),
    'a member cannot create a key'
);
select is(
    (select count(*)::integer from tenancy.api_keys), 0, 'a member does not see the tenant''s keys'
);
reset role;

select pg_temp.act_as(:'tenant_b', :'owner_b');
select
    id as b_key_id,
    key as b_key
from tenancy.create_api_key('b key', 'owner') \gset
select is(
    (select count(*)::integer from tenancy.api_keys), 1, 'the owner of B sees B''s key and none of A''s'
);
reset role;

select results_eq(
    format(
        $$select kind, tenant_id, user_id, api_key_id from tenancy.security_events
        where api_key_id = %L$$,
        :'member_key_id'
    ),
    format($$values ('api_key.created', %L::uuid, %L, %L)$$, :'tenant_a', :'owner_a', :'member_key_id'),
    'api_key.created is recorded with tenant, creator and key id'
);

select
    tenancy.context_value(:'tenant_a', 'owner', null, chr(30) || :'member_key_id') as forged_key,
    tenancy.context_value(:'tenant_a', 'owner', null, :'owner_a') as forged_user
\gset

-- Authenticating -------------------------------------------------------------------------------

select tenancy.clear_context();
set local role tenancy_app;
select results_eq(
    format($$select tenant_id, role, api_key_id from tenancy.authenticate_api_key(%L)$$, :'member_key'),
    format($$values (%L::uuid, 'member', %L::uuid)$$, :'tenant_a', :'member_key_id'),
    'authenticate_api_key returns the key''s tenant, role and id'
);
select results_eq(
    $$select tenancy.current_tenant_id(), tenancy.current_member_role(), tenancy.current_user_id(),
        tenancy.current_api_key_id()$$,
    format($$values (%L::uuid, 'member', null::text, %L::uuid)$$, :'tenant_a', :'member_key_id'),
    'the context has the key''s tenant and role, no user, and the key id'
);
select results_eq(
    $$select distinct tenant_id from tenancy.memberships$$,
    format($$values (%L::uuid)$$, :'tenant_a'),
    'the key reads its own tenant''s rows'
);
select is(
    (
        select count(*)::integer from tenancy.memberships
        where tenant_id = :'tenant_b'
    ),
    0,
    'a key of tenant A reads none of B''s rows'
);
select is(
    (select count(*)::integer from tenancy.api_keys), 0,
    'a member key does not list the tenant''s keys (owners and admins read tenancy.api_keys)'
);
-- A key context manages nothing, whatever its role.
select throws_ok(
    format($$select tenancy.add_member(%L, 'viewer')$$, 'auth0|' || gen_random_uuid()),
    '42501',
    format('role member of tenant %s cannot manage members', :'tenant_a'),
    'a member key cannot add members'
);
select tenancy.clear_context();
select tenancy.authenticate_api_key(:'owner_key');
select is(tenancy.current_member_role(), 'owner', 'an owner key authenticates with the owner role');
select is(tenancy.current_api_key_id(), :'owner_key_id'::uuid, 'current_api_key_id names the owner key');
select is(
    (select count(*)::integer from tenancy.api_keys), 3,
    'an owner key lists the tenant''s keys'
);
select isnt(
    (
        select last_used_at from tenancy.api_keys
        where id = :'member_key_id'
    ), null,
    'last_used_at is set by the authentication with the key'
);
select throws_ok(
    $$select tenancy.create_api_key('key made by a key', 'member')$$,
    '42501',
    format('API key %s of tenant %s cannot manage API keys', :'owner_key_id', :'tenant_a'),
    'an owner key cannot create keys'
);
select throws_ok(
    format($$select tenancy.revoke_api_key(%L)$$, :'member_key_id'),
    '42501',
    format('API key %s of tenant %s cannot manage API keys', :'owner_key_id', :'tenant_a'),
    'an owner key cannot revoke keys'
);
select throws_ok(
    format($$select tenancy.add_member(%L, 'viewer')$$, 'auth0|' || gen_random_uuid()),
    '42501',
    format('API key %s of tenant %s cannot manage members', :'owner_key_id', :'tenant_a'),
    'an owner key cannot add members'
);

-- Forged contexts: the fingerprint covers the key id.
select set_config('tenancy.context', :'forged_key', true);
select is(tenancy.current_api_key_id(), null, 'a hand-set context naming another key id gives no key');
select set_config('tenancy.context', :'forged_user', true);
select is(tenancy.current_user_id(), null, 'a hand-set context naming a user in a key''s context gives no user');
select tenancy.clear_context();
select tenancy.authenticate_api_key(:'b_key');
select is(tenancy.current_api_key_id(), :'b_key_id'::uuid, 'B''s key authenticates into B');
select is(
    (
        select count(*)::integer from tenancy.memberships
        where tenant_id = :'tenant_a'
    ),
    0,
    'a key of tenant B reads none of A''s rows'
);
select tenancy.clear_context();

-- Refusals name the check and at most the listed prefix; never the key ---------------------------

select throws_ok(
    $$select tenancy.authenticate_api_key('pgtk_short')$$,
    'TN004',
    'malformed API key: 10 bytes long, an API key has 70 (pgtk_ and 65 base64url characters)',
    'a short key is malformed'
);
select throws_ok(
    format($$select tenancy.authenticate_api_key(%L)$$, 'sk_live' || substr(:'member_key', 8)),
    'TN004',
    'malformed API key: it does not start with pgtk_',
    'a key with another prefix is malformed'
);
select throws_ok(
    format($$select tenancy.authenticate_api_key(%L)$$, left(:'member_key', 69) || '='),
    'TN004',
    'malformed API key: it holds characters other than base64url (A-Z, a-z, 0-9, - and _)',
    'a key with a character outside base64url is malformed'
);
select throws_ok(
    format(
        $$select tenancy.authenticate_api_key(%L)$$,
        'pgtk_' || left(:'tenant_a_b64', 21) || 'B'
        || substr(:'member_key', 28)
    ),
    'TN004',
    'malformed API key: its tenant part is not canonical base64url',
    'a key whose tenant part has unused bits set is malformed'
);
select throws_ok(
    format($$select tenancy.authenticate_api_key(%L)$$, left(:'member_key', 27) || repeat('A', 43)),
    'TN004',
    format('unknown API key: no key of tenant %s has its hash', :'tenant_a'),
    'an unknown key with a valid shape is refused'
);
select throws_ok(
    format(
        $$select tenancy.authenticate_api_key(%L)$$,
        'pgtk_' || :'tenant_b_b64' || substr(:'member_key', 28)
    ),
    'TN004',
    format('unknown API key: no key of tenant %s has its hash', :'tenant_b'),
    'A''s secret presented with B''s tenant part is unknown'
);
select results_eq(
    format($$select sqlstate, tenant_id from tenancy.try_authenticate_api_key(%L)$$, left(:'member_key', 69)),
    $$values ('TN004', null::uuid)$$,
    'try_authenticate_api_key returns the refusal instead of raising it'
);
select is(tenancy.current_tenant_id(), null, 'a refused try sets no context');
select results_eq(
    format($$select sqlstate, tenant_id from tenancy.try_authenticate_api_key(%L)$$, :'member_key'),
    format($$values (null::text, %L::uuid)$$, :'tenant_a'),
    'try_authenticate_api_key with the right key sets the context'
);
select is(tenancy.current_api_key_id(), :'member_key_id'::uuid, 'the try set the key''s context');
select tenancy.try_authenticate_api_key('pgtk_short');
select is(tenancy.current_tenant_id(), null, 'a refused try drops a context set earlier in the transaction');
reset role;

-- Revoking, expiry, suspension ---------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'admin_a');
select throws_ok(
    format($$select tenancy.revoke_api_key(%L)$$, :'owner_key_id'),
    '42501',
    format('an admin cannot revoke owner API key %s of tenant %s', :'owner_key_id', :'tenant_a'),
    'an admin cannot revoke an owner key'
);
select throws_ok(
    format($$select tenancy.revoke_api_key(%L)$$, :'b_key_id'),
    'P0002',
    format('API key %s is not a key of tenant %s', :'b_key_id', :'tenant_a'),
    'an admin of A cannot revoke a key of B'
);
select tenancy.revoke_api_key(:'member_key_id') as revoked_at \gset
select is(
    (
        select revoked_by from tenancy.api_keys
        where id = :'member_key_id'
    ), :'admin_a',
    'an admin revokes a member key'
);
select is(
    tenancy.revoke_api_key(:'member_key_id'), :'revoked_at'::timestamptz,
    'revoking again changes nothing'
);
reset role;
select tenancy.clear_context();
set local role tenancy_app;
select throws_like(
    format($$select tenancy.authenticate_api_key(%L)$$, :'member_key'),
    format('API key %s (%s...) was revoked at %%', :'member_key_id', substr(:'member_key', 28, 8)),
    'a revoked key is refused, named by its id and listed prefix'
);
select tenancy.try_authenticate_api_key(:'member_key');
select lives_ok(
    format($$select tenancy.authenticate_api_key(%L)$$, :'owner_key'),
    'another key of the tenant still authenticates'
);
select tenancy.clear_context();
reset role;

update tenancy.api_keys set expires_at = now() - interval '1 second'
where id = :'admin_key_id';
set local role tenancy_app;
select throws_like(
    format($$select tenancy.authenticate_api_key(%L)$$, :'admin_key'),
    format('API key %s (%s...) expired at %%', :'admin_key_id', substr(:'admin_key', 28, 8)),
    'an expired key is refused'
);
reset role;

set local role tenancy_admin;
select tenancy.suspend_tenant(:'tenant_b');
reset role;
set local role tenancy_app;
select throws_ok(
    format($$select tenancy.authenticate_api_key(%L)$$, :'b_key'),
    'TN002',
    format('tenant %s of API key %s is suspended', :'tenant_b', :'b_key_id'),
    'a key of a suspended tenant is refused'
);
reset role;

select is(
    (
        select count(*)::integer from tenancy.security_events as e
        where
            strpos(e.reason || e.details::text || coalesce(e.api_key_id, ''), substr(:'member_key', 28)) > 0
            or strpos(e.reason || e.details::text, substr(:'owner_key', 28)) > 0
            or strpos(e.reason || e.details::text, substr(:'b_key', 28)) > 0
    ),
    0,
    'no security event holds a key''s random part'
);
select results_eq(
    format(
        $$select kind, sqlstate, tenant_id from tenancy.security_events
        where api_key_id = %L and kind <> 'api_key.created' order by id$$,
        :'member_key_id'
    ),
    format(
        $$values ('api_key.revoked', null::text, %1$L::uuid), ('authentication.failed', 'TN004', %1$L::uuid)$$,
        :'tenant_a'
    ),
    'the revocation and the refused revoked key are recorded with the key id and tenant'
);

select * from finish();
rollback;
