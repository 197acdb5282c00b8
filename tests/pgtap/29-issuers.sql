-- Trusted issuers: RS256 and ES256 tokens verified in the database against each issuer's JWKS,
-- key rotation and revocation, a tenant's own identity provider, the verified-token cache, and
-- hostile tokens (each refused with TN004 naming the check, each paired with the rightful token
-- accepted). Tokens and keys are fixed vectors (tests/vectors/issuer_tokens.py); the superuser
-- reads the cache and the counters, everything else runs as the real roles.

begin;
select plan(68);

\ir setup/helpers.psql
\ir setup/issuer_tokens.psql

set local role tenancy_admin;
select tenancy.configure_domains(array['issuers.test']);
select tenancy.create_tenant('issuer-a', 'Issuer A', :'owner_a', :'tenant_a');
select tenancy.create_tenant('issuer-b', 'Issuer B', :'user_b', :'tenant_b');

-- Configuring issuers --------------------------------------------------------------------------

select throws_ok(
    format('select tenancy.configure_issuer(%L, array[]::text[])', :'issuer'),
    '22023', null, 'an issuer without an audience is refused (22023)'
);
select throws_like(
    format('select tenancy.configure_issuer(%L, array[%L], p_algorithms => array[''HS256''])', :'issuer', :'audience'),
    '%algorithm ''HS256'' of issuer%is not accepted: RS256 and ES256 are%',
    'HS256 is not an issuer algorithm: the shared secret alone verifies HS256'
);
select throws_like(
    format('select tenancy.configure_issuer(%L, array[%L], p_leeway => ''10 minutes'')', :'issuer', :'audience'),
    '%leeway 00:10:00 of issuer%is out of range: 0 to 5 minutes%',
    'a leeway over 5 minutes is refused'
);
select throws_like(
    format('select tenancy.configure_issuer(%L, array[%L], p_jwks_url => ''file:///etc/passwd'')', :'issuer', :'audience'),
    '%JWKS URL%must be an http(s) URL%',
    'a JWKS URL must be http(s)'
);
select ok(
    tenancy.configure_issuer(:'issuer', array[:'audience'], 'https://idp.pgtap.test/.well-known/jwks.json') is not null,
    'tenancy_admin trusts a platform-wide issuer'
);
select ok(
    tenancy.configure_issuer(:'issuer_b', array[:'audience_b'], p_tenant_id => :'tenant_b') is not null,
    'tenancy_admin trusts tenant B''s own identity provider'
);
select throws_ok(
    format('select tenancy.configure_issuer(%L, array[%L], p_tenant_id => %L)', :'issuer', :'audience', :'tenant_a'),
    '23505', format('issuer %L is already trusted platform-wide', :'issuer'),
    'an issuer name is platform-wide or tenants'' own, never both'
);
select results_eq(
    format('select * from tenancy.set_jwks(%L, %L)', :'issuer', :'jwks'),
    $$values (2, 0, 0, 1)$$,
    'set_jwks stores the RSA and EC signing keys and skips the encryption key'
);
select results_eq(
    format('select * from tenancy.set_jwks(%L, %L)', :'issuer', :'jwks'),
    $$values (0, 0, 2, 1)$$,
    'the same JWKS again changes nothing'
);
select throws_like(
    format(
        'select * from tenancy.set_jwks(%L, %L)', :'issuer',
        jsonb_set(:'jwks'::jsonb, '{keys,0,d}', '"c2VjcmV0"')
    ),
    '%private%',
    'a JWKS publishing a private key member is refused (22023), nothing stored'
);
select throws_ok(
    format('select * from tenancy.set_jwks(%L, ''[]'')', :'issuer'),
    '22023', null, 'a JWKS that is not an object with keys is refused'
);
select throws_ok(
    $$select * from tenancy.set_jwks('https://nobody.pgtap.test/', '{"keys": []}')$$,
    'P0002', 'issuer ''https://nobody.pgtap.test/'' is not trusted',
    'set_jwks of an issuer not trusted: P0002'
);
reset role;
select is(
    (
        select count(*)::integer from tenancy.jwt_keys as k inner join tenancy.jwt_issuers as i on k.issuer_id = i.id
        where i.issuer = :'issuer'
    ),
    2, 'the refused JWKS left both stored keys'
);

-- The tenant's own issuer: its owner sets its keys, no one else --------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select throws_like(
    format('select * from tenancy.set_jwks(%L, %L)', :'issuer_b', :'jwks_b'),
    format('issuer %L is not an identity provider of tenant %s', :'issuer_b', :'tenant_a'),
    'the owner of A cannot set the keys of B''s identity provider (P0002)'
);
select throws_like(
    format('select * from tenancy.set_jwks(%L, %L)', :'issuer', :'jwks_b'),
    '%is not an identity provider of tenant%',
    'nor those of the platform issuer'
);
reset role;
select pg_temp.act_as(:'tenant_b', :'user_b');
select tenancy.add_member('okta|pgtap-admin-b', 'admin');
select results_eq(
    format('select * from tenancy.set_jwks(%L, %L)', :'issuer_b', :'jwks_b'),
    $$values (1, 0, 0, 0)$$,
    'the owner of B sets the keys of B''s own identity provider'
);
reset role;
select pg_temp.act_as(:'tenant_b', 'okta|pgtap-admin-b');
select throws_ok(
    format('select * from tenancy.set_jwks(%L, %L)', :'issuer_b', :'jwks_b'),
    '42501', format('role admin of tenant %s cannot manage identity providers', :'tenant_b'),
    'an admin of B cannot'
);
reset role;
set local role tenancy_app;
select throws_ok(
    format('select tenancy.configure_issuer(%L, array[%L])', :'issuer', :'audience'),
    '42501', null, 'tenancy_app cannot configure issuers'
);

-- RS256 and ES256 tokens --------------------------------------------------------------------------

select results_eq(
    format('select tenant_id, user_id, role from tenancy.authenticate(%L)', :'rs_good'),
    format('values (%L::uuid, %L, ''owner'')', :'tenant_a', :'owner_a'),
    'an RS256 token of the platform issuer authenticates into the tenant it names'
);
select is(tenancy.current_user_id(), :'owner_a', 'and sets the user');
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'es_good'),
    'TN004', format('token algorithm ''ES256'' is not accepted for issuer %L, which signs with RS256', :'issuer'),
    'ES256 is refused while the issuer is configured for RS256 only'
);
reset role;
set local role tenancy_admin;
select tenancy.configure_issuer(:'issuer', array[:'audience'], p_algorithms => array['RS256', 'ES256']);
reset role;
set local role tenancy_app;
select results_eq(
    format('select tenant_id, user_id, role from tenancy.authenticate(%L)', :'es_good'),
    format('values (%L::uuid, %L, ''owner'')', :'tenant_a', :'owner_a'),
    'an ES256 token authenticates once the issuer accepts ES256'
);
select results_eq(
    format('select tenant_id from tenancy.authenticate(%L)', :'rs_aud_list'),
    format('values (%L::uuid)', :'tenant_a'),
    'an aud array naming the audience among others is accepted'
);
select results_eq(
    format('select tenant_id from tenancy.authenticate(%L, ''issuer-a.issuers.test'')', :'rs_host'),
    format('values (%L::uuid)', :'tenant_a'),
    'a token without a tenant claim authenticates at its tenant''s host'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'rs_host'),
    'TN004', format('token claims sub %s and tenant_id "missing" are required', to_jsonb(:'owner_a'::text)),
    'but not without a host'
);

-- Hostile tokens: each refused, naming the check ------------------------------------------------

select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'alg_none'),
    'TN004', 'token algorithm ''none'' is not accepted: HS256, RS256 and ES256 are',
    'alg none is refused'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'hs_confusion'),
    'TN004', format('token algorithm HS256 is not accepted for issuer %L, which signs with ES256, RS256', :'issuer'),
    'algorithm confusion (HS256 signed with the issuer''s RSA public key as the secret) is refused'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'rs_unknown_kid'),
    'TN004', format('token key ''rsa-9'' is not a key of issuer %L', :'issuer'),
    'an unknown kid is refused'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'rs_kid_of_b'),
    'TN004', format('token key ''b-1'' is not a key of issuer %L', :'issuer'),
    'the kid of another tenant''s issuer, with the platform issuer''s name, is refused'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'rs_no_kid'),
    'TN004', 'token names no key: the header''s kid is "missing"',
    'a token without a kid is refused'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'rs_tampered'),
    'TN004', format('token signature is invalid (subject ''auth0|someone-else'', key ''rsa-1'' of issuer %L)', :'issuer'),
    'changed claims under the original signature are refused'
);
select throws_like(
    format('select * from tenancy.authenticate(%L)', :'rs_dup_sub'),
    '%the claims repeats a member name',
    'a repeated claim (two sub) is refused before anything is verified'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'rs_exp_string'),
    'TN004', 'token has no numeric exp claim (exp 4102444800)',
    'an exp that is a string is refused'
);
select throws_like(
    format('select * from tenancy.authenticate(%L)', :'rs_expired'),
    'token expired at %',
    'an expired token is refused'
);
select throws_like(
    format('select * from tenancy.authenticate(%L)', :'rs_nbf_future'),
    'token is not valid before %',
    'a token not valid yet is refused'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'rs_wrong_aud'),
    'TN004', format('token audience "https://other.api.test" does not include %L', :'audience'),
    'a token for another audience is refused'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'rs_untrusted_iss'),
    'TN004', 'token issuer "https://evil.pgtap.test/" is not trusted',
    'a token of an issuer not trusted is refused'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'ps256'),
    'TN004', 'token algorithm ''PS256'' is not accepted: HS256, RS256 and ES256 are',
    'PS256 is refused'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'rs_signed_by_ec_key_kid'),
    'TN004', format('token algorithm ''RS256'' does not match key ''ec-1'' of issuer %L, which is ES256', :'issuer'),
    'an RS256 header naming the EC key is refused'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', repeat('a', 20000)),
    'TN004', 'token of 20000 bytes is larger than the 16384 bytes accepted',
    'an oversized token is refused before anything else'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L, ''issuer-a.issuers.test'')', :'rs_other_tenant'),
    'TN004', format('token claim tenant_id %s does not name tenant %s of host ''issuer-a.issuers.test''', :'tenant_b', :'tenant_a'),
    'a token naming B presented at A''s host is refused'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'rs_other_tenant'),
    'TN003', format('user %L is not a member of tenant %s', :'owner_a', :'tenant_b'),
    'and a valid token naming a tenant its user is not a member of is TN003'
);

-- A tenant's own identity provider speaks for that tenant only ---------------------------------

select results_eq(
    format('select tenant_id, user_id, role from tenancy.authenticate(%L)', :'byo_b'),
    format('values (%L::uuid, %L, ''owner'')', :'tenant_b', :'user_b'),
    'a token of B''s own identity provider authenticates into B (no tenant claim needed)'
);
select results_eq(
    format('select tenant_id from tenancy.authenticate(%L, ''issuer-b.issuers.test'')', :'byo_b'),
    format('values (%L::uuid)', :'tenant_b'),
    'also at B''s host'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L, ''issuer-a.issuers.test'')', :'byo_b'),
    'TN004', format('token issuer %s is not trusted for tenant %s', to_jsonb(:'issuer_b'::text), :'tenant_a'),
    'but not at A''s host'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'byo_b_claims_a'),
    'TN004', format('token claim tenant_id %s does not name tenant %s, whose identity provider issued it', :'tenant_a', :'tenant_b'),
    'nor by naming A in its claims'
);

-- The verified-token cache ----------------------------------------------------------------------

-- (configure_issuer above forgot the issuer's cached tokens: its settings changed.)
select results_eq(
    format('select tenant_id from tenancy.authenticate(%L)', :'rs_good'),
    format('values (%L::uuid)', :'tenant_a'),
    'the RS256 token again, verified under the issuer''s new settings'
);
reset role;
select is(
    (
        select count(*)::integer from tenancy.verified_tokens
        where token_hash = tenancy.secret_hash(:'rs_good')
    ),
    1, 'a verified RS256 token is cached under the SHA-256 of the token'
);
select is_empty(
    format('select 1 from tenancy.verified_tokens where subject is not null and position(%L in subject) > 0 and false', :'rs_good'),
    'the cache holds no token'
);
select is(
    (
        select count(*)::integer from tenancy.verified_tokens
        where token_hash = tenancy.secret_hash(:'hs_confusion')
    ),
    0, 'a refused token is not cached'
);
-- The cached entry is used: a slot holding the token's hash answers without verifying (shown by
-- giving the entry another subject as the superuser; the next authentication takes it from there).
update tenancy.verified_tokens set subject = 'auth0|from-the-cache'
where token_hash = tenancy.secret_hash(:'rs_good');
set local role tenancy_app;
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'rs_good'),
    'TN003', format('user ''auth0|from-the-cache'' is not a member of tenant %s', :'tenant_a'),
    'a cached token costs one lookup: its verified claims come from the cache'
);
reset role;
update tenancy.verified_tokens set subject = :'owner_a'
where token_hash = tenancy.secret_hash(:'rs_good');
set local role tenancy_app;
select results_eq(
    format('select user_id from tenancy.authenticate(%L)', :'rs_good'),
    format('values (%L)', :'owner_a'),
    'membership is checked on every call, cached or not'
);

-- Rotation and revocation: no restart, the cache follows ---------------------------------------

select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'rs_rotated'),
    'TN004', format('token key ''rsa-2'' is not a key of issuer %L', :'issuer'),
    'a token of a key not published yet is refused'
);
reset role;
set local role tenancy_admin;
select results_eq(
    format('select * from tenancy.set_jwks(%L, %L)', :'issuer', :'jwks_rotated'),
    $$values (1, 1, 1, 0)$$,
    'the rotated JWKS adds rsa-2, removes rsa-1, keeps ec-1'
);
reset role;
select is(
    (
        select count(*)::integer from tenancy.verified_tokens
        where token_hash = tenancy.secret_hash(:'rs_good')
    ),
    0, 'the revoked key''s cached tokens are forgotten at once'
);
set local role tenancy_app;
select results_eq(
    format('select tenant_id from tenancy.authenticate(%L)', :'rs_rotated'),
    format('values (%L::uuid)', :'tenant_a'),
    'a token of the new key is accepted'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'rs_good'),
    'TN004', format('token key ''rsa-1'' is not a key of issuer %L', :'issuer'),
    'a token of the revoked key is refused, though it was cached'
);
select results_eq(
    format('select tenant_id from tenancy.authenticate(%L)', :'es_good'),
    format('values (%L::uuid)', :'tenant_a'),
    'the kept key''s tokens still work'
);

-- Refusals are counted past a rollback; try_authenticate returns them -------------------------

reset role;
select nextval('tenancy.auth_failures_total') as failures_before \gset
set local role tenancy_app;
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'alg_none'), 'TN004', null,
    'a refused token raises'
);
reset role;
select cmp_ok(
    pg_sequence_last_value('tenancy.auth_failures_total'), '>', :failures_before::bigint,
    'and is numbered in tenancy.auth_failures_total, which its rollback did not take back'
);
set local role tenancy_app;
select results_eq(
    format('select tenant_id, user_id, role, sqlstate from tenancy.try_authenticate(%L)', :'rs_wrong_aud'),
    $$values (null::uuid, null::text, null::text, 'TN004'::text)$$,
    'try_authenticate returns a refusal instead of raising it'
);
select is(tenancy.current_tenant_id(), null, 'and sets no context');
reset role;
select results_eq(
    $$select kind, user_id, sqlstate, tenant_id from tenancy.security_events order by id desc limit 1$$,
    format('values (''authentication.failed'', %L, ''TN004'', %L::uuid)', :'owner_a', :'tenant_a'),
    'the refusal is recorded with its user and the tenant it claims'
);
select is_empty(
    format($$select 1 from tenancy.security_events where reason like '%%' || %L || '%%'$$, split_part(:'rs_wrong_aud', '.', 3)),
    'never with the token'
);
select results_eq(
    format('select tenant_id, user_id, role, sqlstate from tenancy.try_authenticate(%L)', :'rs_rotated'),
    format('values (%L::uuid, %L, ''owner'', null::text)', :'tenant_a', :'owner_a'),
    'try_authenticate with a good token sets the context'
);
select is(tenancy.current_tenant_id(), :'tenant_a'::uuid, 'as authenticate does');

-- HS256 stays as it was, for tokens of no trusted issuer -----------------------------------------

reset role;
select tenancy.configure_jwt('pgtap-issuers-secret-0123456789abcdefghijklmnopqrstuvwxyz');
select
    pg_temp.jwt(
        jsonb_build_object('sub', :'owner_a', 'tenant_id', :'tenant_a', 'exp', extract(epoch from now())::bigint + 60),
        'pgtap-issuers-secret-0123456789abcdefghijklmnopqrstuvwxyz'
    ) as hs_good,
    pg_temp.jwt(
        jsonb_build_object(
            'sub', :'owner_a', 'tenant_id', :'tenant_a', 'iss', :'issuer', 'exp', extract(epoch from now())::bigint + 60
        ),
        'pgtap-issuers-secret-0123456789abcdefghijklmnopqrstuvwxyz'
    ) as hs_claiming_issuer
\gset
set local role tenancy_app;
select results_eq(
    format('select tenant_id from tenancy.authenticate(%L)', :'hs_good'),
    format('values (%L::uuid)', :'tenant_a'),
    'an HS256 token signed with the configured secret still authenticates'
);
select throws_ok(
    format('select * from tenancy.authenticate(%L)', :'hs_claiming_issuer'),
    'TN004', format('token algorithm HS256 is not accepted for issuer %L, which signs with ES256, RS256', :'issuer'),
    'but an HS256 token claiming a trusted issuer is refused even with the right secret'
);

select * from finish();
rollback;
