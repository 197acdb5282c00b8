-- tenancy.authenticate: HS256 tokens, every rejection with its SQLSTATE and the offending value.
-- Fixtures: the superuser signs test tokens with pgtenancy's own base64url and HMAC functions
-- (internal, not executable by any pgtenancy role) before the test switches to tenancy_app, and
-- removes any JWT configuration at the start; everything else runs as the real roles.

begin;
select plan(44);

-- The JWT configuration is absent until tenancy_admin sets it (removed here by the superuser).
delete from tenancy.jwt_config;

\set secret 'pgtap-jwt-secret-0123456789abcdefghijklmnopqrstuvwxyz'
\set issuer 'https://auth.example.test'
\set audience 'pgtenancy-tests'

\ir setup/helpers.psql

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || left(md5(random()::text), 24) as member_a,
    'user_2' || md5(random()::text) as owner_b,
    left(md5(random()::text), 28) as stranger,
    gen_random_uuid() as unknown_tenant,
    extract(epoch from now())::bigint - 60 as past,
    extract(epoch from now())::bigint + 300 as soon,
    extract(epoch from now())::bigint + 3600 as later
\gset

set local role tenancy_admin;
select tenancy.create_tenant('auth-a', 'Auth A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant('auth-b', 'Auth B', :'owner_b') as tenant_b \gset
set local role tenancy_service;
select tenant_id as ignored from tenancy.set_context(:'tenant_a') \gset
select tenancy.add_member(:'member_a', 'member') \gset
select tenancy.clear_context() \gset
reset role;

-- The standard claims of a token for (user, tenant); tests change one thing each.
create temporary table claims as
select
    e.name,
    jsonb_build_object(
        'sub', e.sub,
        'tenant_id', e.tenant_id,
        'iss', :'issuer',
        'aud', :'audience',
        'iat', :past + 60,
        'exp', :soon
    ) as claims
from (
    values
    ('member_a', :'member_a', :'tenant_a'),
    ('owner_a', :'owner_a', :'tenant_a'),
    ('stranger', :'stranger', :'tenant_a'),
    ('owner_b', :'owner_b', :'tenant_b'),
    ('unknown_tenant', :'member_a', :'unknown_tenant')
) as e (name, sub, tenant_id);

-- Every token the tests use, signed by the superuser now.
select
    pg_temp.jwt(m.claims, :'secret') as t_member,
    pg_temp.jwt(o.claims, :'secret') as t_owner,
    pg_temp.jwt(s.claims, :'secret') as t_stranger,
    pg_temp.jwt(b.claims, :'secret') as t_owner_b,
    pg_temp.jwt(u.claims, :'secret') as t_unknown_tenant,
    pg_temp.jwt(m.claims || jsonb_build_object('exp', :past), :'secret') as t_expired,
    pg_temp.jwt(m.claims || jsonb_build_object('nbf', :later), :'secret') as t_not_yet,
    pg_temp.jwt(m.claims || jsonb_build_object('nbf', :past), :'secret') as t_nbf_past,
    pg_temp.jwt(m.claims, :'secret' || '-other') as t_other_secret,
    pg_temp.jwt(m.claims || '{"iss": "https://evil.example"}', :'secret') as t_wrong_iss,
    pg_temp.jwt(m.claims - 'iss', :'secret') as t_no_iss,
    pg_temp.jwt(m.claims || '{"aud": "other-app"}', :'secret') as t_wrong_aud,
    pg_temp.jwt(m.claims || '{"aud": ["other-app", "billing"]}', :'secret') as t_aud_array_without,
    pg_temp.jwt(
        m.claims || jsonb_build_object('aud', jsonb_build_array('other-app', :'audience')), :'secret'
    ) as t_aud_array_with,
    pg_temp.jwt(m.claims - 'aud', :'secret') as t_no_aud,
    pg_temp.jwt(m.claims - 'exp', :'secret') as t_no_exp,
    pg_temp.jwt(m.claims || '{"exp": "9999999999"}', :'secret') as t_exp_text,
    pg_temp.jwt(m.claims || '{"sub": 12345}', :'secret') as t_sub_number,
    pg_temp.jwt(m.claims || '{"sub": "bell\u0007"}', :'secret') as t_sub_control,
    pg_temp.jwt(m.claims || jsonb_build_object('sub', repeat('x', 256)), :'secret') as t_sub_long,
    pg_temp.jwt(m.claims || '{"tenant_id": "acme"}', :'secret') as t_tenant_text,
    pg_temp.jwt(m.claims - 'tenant_id', :'secret') as t_no_tenant,
    pg_temp.jwt(m.claims, :'secret', '{"alg": "HS512", "typ": "JWT"}') as t_hs512,
    pg_temp.b64('{"alg": "none", "typ": "JWT"}') || '.' || pg_temp.b64(m.claims::text) || '.' as t_alg_none,
    -- A member of A rewrites tenant_id to B and keeps A's signature.
    split_part(pg_temp.jwt(m.claims, :'secret'), '.', 1)
    || '.'
    || pg_temp.b64((m.claims || jsonb_build_object('tenant_id', :'tenant_b'))::text)
    || '.'
    || split_part(pg_temp.jwt(m.claims, :'secret'), '.', 3) as t_tampered,
    pg_temp.b64('not json') || '.' || pg_temp.b64(m.claims::text) || '.AAAA' as t_not_json,
    pg_temp.b64('[]') || '.' || pg_temp.b64(m.claims::text) || '.AAAA' as t_header_array
from claims as m, claims as o, claims as s, claims as b, claims as u
where
    m.name = 'member_a' and o.name = 'owner_a' and s.name = 'stranger'
    and b.name = 'owner_b' and u.name = 'unknown_tenant'
\gset

-- Not configured --------------------------------------------------------------------------------

set local role tenancy_app;

-- Before configure_jwt: 55000, even for a well-formed token.
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_member'),
    '55000',
    'JWT verification is not configured',
    'authenticate before configure_jwt is 55000'
);

-- tenancy_admin configures verification.
set local role tenancy_admin;
select lives_ok(
    format('select tenancy.configure_jwt(%L, %L, %L)', :'secret', :'issuer', :'audience'),
    'tenancy_admin configures the secret, issuer and audience'
);

-- A valid token ------------------------------------------------------------------------------------

set local role tenancy_app;

-- No context yet.
select is(tenancy.current_tenant_id(), null, 'no tenant before authenticate');

-- The member's token: tenant, user and role come back and become the context.
select results_eq(
    format('select tenant_id, user_id, role from tenancy.authenticate(%L)', :'t_member'),
    format('values (%L::uuid, %L::text, %L::text)', :'tenant_a', :'member_a', 'member'),
    'authenticate returns tenant, user and role of a valid token'
);
select is(tenancy.current_tenant_id(), :'tenant_a'::uuid, 'current_tenant_id() is the token''s tenant');
select is(tenancy.current_user_id(), :'member_a'::text, 'current_user_id() is the token''s subject, verbatim');
select is(tenancy.current_member_role(), 'member', 'current_member_role() is the membership role');

-- A later authenticate replaces the context.
select results_eq(
    format('select role from tenancy.authenticate(%L)', :'t_owner'),
    $$values ('owner'::text)$$,
    'the owner''s token authenticates as owner'
);
select is(tenancy.current_user_id(), :'owner_a'::text, 'the latest authenticate wins');

-- nbf in the past is fine; an aud array that contains the audience is fine.
select lives_ok(format('select tenancy.authenticate(%L)', :'t_nbf_past'), 'a token with a past nbf is accepted');
select lives_ok(
    format('select tenancy.authenticate(%L)', :'t_aud_array_with'),
    'an aud array that contains the configured audience is accepted'
);

-- tenancy_service inherits authenticate; tenancy_admin does not have it: 42501.
set local role tenancy_service;
select lives_ok(format('select tenancy.authenticate(%L)', :'t_member'), 'tenancy_service may authenticate');
set local role tenancy_admin;
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_member'),
    '42501',
    'permission denied for function authenticate',
    'tenancy_admin cannot authenticate'
);

-- Rejected tokens: TN004 naming the failed check ----------------------------------------------------

set local role tenancy_app;
select tenancy.clear_context() \gset

select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_expired'),
    'TN004',
    format('token expired at %s (exp %s)', to_timestamp(:past), :past),
    'an expired token is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_not_yet'),
    'TN004',
    format('token is not valid before %s (nbf %s)', to_timestamp(:later), :later),
    'a token used before its nbf is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_other_secret'),
    'TN004',
    format('token signature is invalid (subject %L)', :'member_a'),
    'a token signed with another secret is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_tampered'),
    'TN004',
    format('token signature is invalid (subject %L)', :'member_a'),
    'a token whose tenant_id was rewritten after signing is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_wrong_iss'),
    'TN004',
    format('token issuer "https://evil.example" does not match %L', :'issuer'),
    'a token from another issuer is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_no_iss'),
    'TN004',
    format('token issuer "missing" does not match %L', :'issuer'),
    'a token without iss is TN004 when an issuer is configured'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_wrong_aud'),
    'TN004',
    format('token audience "other-app" does not include %L', :'audience'),
    'a token for another audience is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_aud_array_without'),
    'TN004',
    format('token audience ["other-app", "billing"] does not include %L', :'audience'),
    'an aud array without the configured audience is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_no_aud'),
    'TN004',
    format('token audience "missing" does not include %L', :'audience'),
    'a token without aud is TN004 when an audience is configured'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_alg_none'),
    'TN004',
    'token algorithm ''none'' is not accepted: HS256, RS256 and ES256 are',
    'alg none is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_hs512'),
    'TN004',
    'token algorithm ''HS512'' is not accepted: HS256, RS256 and ES256 are',
    'alg HS512 is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_no_exp'),
    'TN004',
    'token has no numeric exp claim (exp missing)',
    'a token without exp is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_exp_text'),
    'TN004',
    'token has no numeric exp claim (exp 9999999999)',
    'a token whose exp is a string is TN004'
);
select throws_ok(
    $$select tenancy.authenticate('header.claims')$$,
    'TN004',
    'malformed token ''header.claims'': expected three dot-separated parts',
    'a token with two parts is TN004'
);
select throws_ok(
    'select tenancy.authenticate(NULL)',
    'TN004',
    'malformed token ''NULL'': expected three dot-separated parts',
    'a NULL token is TN004'
);
select throws_ok(
    $$select tenancy.authenticate('!!!.!!!.!!!')$$,
    'TN004',
    'malformed token ''!!!.!!!.!!!'': only unpadded base64url is accepted (no =, +, / or whitespace)',
    'a token that is not base64url is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_not_json'),
    'TN004',
    format('malformed token %L: invalid input syntax for type json', left(:'t_not_json', 24) || '...'),
    'a token whose header is not JSON is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_header_array'),
    'TN004',
    format(
        'malformed token %L: header and claims must be JSON objects', left(:'t_header_array', 24) || '...'
    ),
    'a token whose header is not a JSON object is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_sub_number'),
    'TN004',
    'token claim sub 12345 must be a string of 1 to 255 characters without control characters',
    'a subject that is not a string is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_sub_control'),
    'TN004',
    'token claim sub "bell\u0007" must be a string of 1 to 255 characters without control characters',
    'a subject with a control character is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_sub_long'),
    'TN004',
    format(
        'token claim sub %s must be a string of 1 to 255 characters without control characters',
        '"' || repeat('x', 256) || '"'
    ),
    'a subject of 256 characters is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_tenant_text'),
    'TN004',
    'token claim tenant_id "acme" must be a UUID',
    'a tenant_id that is not a UUID is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_no_tenant'),
    'TN004',
    format('token claims sub "%s" and tenant_id "missing" are required', :'member_a'),
    'a token without tenant_id is TN004'
);

-- Valid tokens that still give no access ----------------------------------------------------------

-- A correctly signed token for a user who is not a member: TN003.
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_stranger'),
    'TN003',
    format('user %L is not a member of tenant %s', :'stranger', :'tenant_a'),
    'a non-member''s token is TN003'
);

-- A tenant that does not exist: P0002.
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_unknown_tenant'),
    'P0002',
    format('tenant %s does not exist', :'unknown_tenant'),
    'a token for an unknown tenant is P0002'
);

-- B's owner authenticates while B is active, then B is suspended: TN002.
select lives_ok(format('select tenancy.authenticate(%L)', :'t_owner_b'), 'B''s owner authenticates');
select tenancy.clear_context() \gset
set local role tenancy_admin;
select tenancy.suspend_tenant(:'tenant_b') \gset
set local role tenancy_app;
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_owner_b'),
    'TN002',
    format('tenant %s is suspended', :'tenant_b'),
    'a token for a suspended tenant is TN002'
);

-- None of the failures left a context behind.
select is(tenancy.current_tenant_id(), null, 'failed authenticate calls set no tenant');

-- A changed secret invalidates tokens signed with the old one.
set local role tenancy_admin;
select tenancy.configure_jwt(:'secret' || '-rotated', :'issuer', :'audience') \gset
set local role tenancy_app;
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_member'),
    'TN004',
    format('token signature is invalid (subject %L)', :'member_a'),
    'after the secret is rotated, old tokens are TN004'
);

-- Without issuer and audience configured, tokens need neither.
set local role tenancy_admin;
select tenancy.configure_jwt(:'secret') \gset
set local role tenancy_app;
select results_eq(
    format('select tenant_id, role from tenancy.authenticate(%L)', :'t_no_aud'),
    format('values (%L::uuid, %L::text)', :'tenant_a', 'member'),
    'with no audience configured, a token without aud is accepted'
);
select results_eq(
    format('select tenant_id, role from tenancy.authenticate(%L)', :'t_no_iss'),
    format('values (%L::uuid, %L::text)', :'tenant_a', 'member'),
    'with no issuer configured, a token without iss is accepted'
);

select * from finish();
rollback;
