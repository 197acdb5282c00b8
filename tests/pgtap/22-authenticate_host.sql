-- tenancy.authenticate(p_token, p_host): the tenant from the Host header, a tenant_id claim that
-- must agree with it, membership; hosts of every shape; custom domains through their lifecycle; a
-- suspended tenant. Each refusal is paired with the legitimate request succeeding. The superuser
-- signs the tokens (as in 06-authenticate) and reads the TXT token to publish; the rest runs as
-- the real roles.

begin;
select plan(32);

delete from tenancy.jwt_config;

\set secret 'pgtap-host-secret-0123456789abcdefghijklmnopqrstuvwxyz'

\ir setup/helpers.psql

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as member_a,
    'auth0|' || gen_random_uuid() as owner_b,
    'auth0|' || gen_random_uuid() as stranger,
    'ha-a-' || left(md5(random()::text), 8) as slug_a,
    'ha-b-' || left(md5(random()::text), 8) as slug_b,
    'ha-c-' || left(md5(random()::text), 8) as slug_c,
    'login-' || left(md5(random()::text), 8) || '.customer.example' as custom,
    extract(epoch from now())::bigint + 300 as soon
\gset

set local role tenancy_admin;
select tenancy.configure_jwt(:'secret', null, null) \gset
select tenancy.configure_domains(array['hosts.test']) \gset
select tenancy.create_tenant(:'slug_a', 'Host A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant(:'slug_b', 'Host B', :'owner_b') as tenant_b \gset
select tenancy.create_tenant(:'slug_c', 'Host C', :'owner_a') as tenant_c \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.add_member(:'member_a', 'member') \gset
reset role;

select
    :'slug_a' || '.hosts.test' as host_a,
    :'slug_b' || '.hosts.test' as host_b,
    :'slug_c' || '.hosts.test' as host_c,
    pg_temp.jwt(jsonb_build_object('sub', :'member_a', 'tenant_id', :'tenant_a', 'exp', :soon), :'secret') as t_member_a,
    pg_temp.jwt(jsonb_build_object('sub', :'member_a', 'exp', :soon), :'secret') as t_member_any,
    pg_temp.jwt(jsonb_build_object('sub', :'owner_b', 'tenant_id', :'tenant_b', 'exp', :soon), :'secret') as t_owner_b,
    pg_temp.jwt(jsonb_build_object('sub', :'owner_a', 'exp', :soon), :'secret') as t_owner_any,
    pg_temp.jwt(jsonb_build_object('sub', :'stranger', 'exp', :soon), :'secret') as t_stranger,
    pg_temp.jwt(jsonb_build_object('tenant_id', :'tenant_a', 'exp', :soon), :'secret') as t_no_sub,
    pg_temp.jwt(jsonb_build_object('sub', :'member_a', 'tenant_id', 'acme', 'exp', :soon), :'secret') as t_tenant_text,
    pg_temp.jwt(jsonb_build_object('sub', :'member_a', 'exp', :soon), :'secret' || '-other') as t_forged,
    pg_temp.jwt(jsonb_build_object('sub', :'owner_a', 'tenant_id', :'tenant_c', 'exp', :soon), :'secret') as t_owner_c
\gset

set local role tenancy_app;

-- The tenant from the host; a tenant_id claim must agree -----------------------------------------

select results_eq(
    format('select tenant_id, user_id, role from tenancy.authenticate(%L, %L)', :'t_member_a', :'host_a'),
    format('values (%L::uuid, %L::text, %L::text)', :'tenant_a', :'member_a', 'member'),
    'a token for tenant A on A''s host authenticates'
);
select is(tenancy.current_tenant_id(), :'tenant_a'::uuid, 'the context is A''s');
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_member_a', :'host_b'),
    'TN004',
    format('token claim tenant_id %s does not name tenant %s of host %L', :'tenant_a', :'tenant_b', :'host_b'),
    'a token for tenant A on B''s host is TN004, naming both tenants and the host'
);
select results_eq(
    format('select tenant_id, role from tenancy.authenticate(%L, %L)', :'t_owner_b', :'host_b'),
    format('values (%L::uuid, %L::text)', :'tenant_b', 'owner'),
    'B''s owner with a token for B on B''s host authenticates'
);
select results_eq(
    format('select tenant_id, user_id, role from tenancy.authenticate(%L, %L)', :'t_member_any', :'host_a'),
    format('values (%L::uuid, %L::text, %L::text)', :'tenant_a', :'member_a', 'member'),
    'a token without a tenant_id claim authenticates a member on the tenant''s host'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_member_any', :'host_b'),
    'TN003',
    format('user %L is not a member of tenant %s', :'member_a', :'tenant_b'),
    'the same token on B''s host is TN003: the user is not B''s member'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_stranger', :'host_a'),
    'TN003',
    format('user %L is not a member of tenant %s', :'stranger', :'tenant_a'),
    'a non-member is TN003'
);
select results_eq(
    format('select role from tenancy.authenticate(%L, %L)', :'t_owner_any', :'host_c'),
    $$values ('owner'::text)$$,
    'one user, two tenants: the host chooses which (C)'
);
select is(tenancy.current_tenant_id(), :'tenant_c'::uuid, 'the context is C''s');

-- The token is checked as by the one-argument form ------------------------------------------------

select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_forged', :'host_a'),
    'TN004',
    null,
    'a token signed with another secret is TN004 on a valid host'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_no_sub', :'host_a'),
    'TN004',
    'token claim sub "missing" is required',
    'a token without sub is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_tenant_text', :'host_a'),
    'TN004',
    'token claim tenant_id "acme" must be a UUID',
    'a tenant_id claim that is not a uuid is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', 'not-a-token', :'host_a'),
    'TN004', null,
    'a malformed token is TN004'
);

-- The one-argument form is unchanged --------------------------------------------------------------

select results_eq(
    format('select tenant_id from tenancy.authenticate(%L)', :'t_member_a'),
    format('values (%L::uuid)', :'tenant_a'),
    'authenticate(p_token) still takes the tenant from the claim'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_member_any'),
    'TN004',
    format('token claims sub %s and tenant_id "missing" are required', to_jsonb(:'member_a'::text)),
    'authenticate(p_token) still requires the tenant_id claim'
);

-- Hosts of every shape -----------------------------------------------------------------------------

select results_eq(
    format('select tenant_id from tenancy.authenticate(%L, %L)', :'t_member_a', ' ' || upper(:'host_a') || '.:8443 '),
    format('values (%L::uuid)', :'tenant_a'),
    'the host is normalised (case, trailing dot, :port, whitespace)'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_member_a', 'nobody-' || :'slug_a' || '.hosts.test'),
    'TN012',
    format('no tenant at host %L', 'nobody-' || :'slug_a' || '.hosts.test'),
    'an unknown host is TN012 naming it'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_member_a', 'www.hosts.test'),
    'TN012', null,
    'a reserved label is TN012'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_member_a', 'x.' || :'host_a'),
    'TN012', null,
    'a multi-level name under the tenant''s subdomain is TN012'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_member_a', '127.0.0.1:80'),
    'TN012', null,
    'an IP literal is TN012'
);
select throws_ok(
    format('select tenancy.authenticate(%L, null)', :'t_member_a'),
    'TN012', 'no tenant at host NULL',
    'a NULL host is TN012, never the claim''s tenant'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_member_a', 'a..hosts.test'),
    'TN010',
    'malformed host ''a..hosts.test'': it has an empty label',
    'a malformed host is TN010 naming it'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', 'not-a-token', 'bad host'),
    'TN010', null,
    'the host is checked before the token: a malformed host with a bad token is TN010'
);

-- Custom domains: pending and removed refused, verified accepted -----------------------------------

reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select txt_name from tenancy.add_custom_domain(:'custom') \gset
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_member_a', :'custom'),
    'TN012', null,
    'a pending custom domain is TN012'
);
reset role;
select txt_token as token from tenancy.tenant_domains
where hostname = :'custom' \gset
set local role tenancy_service;
select tenancy.verify_custom_domain(:'custom', array['pgtenancy-verification=' || :'token']) as verified \gset
set local role tenancy_app;
select results_eq(
    format('select tenant_id, role from tenancy.authenticate(%L, %L)', :'t_member_any', :'custom'),
    format('values (%L::uuid, %L::text)', :'tenant_a', 'member'),
    'a verified custom domain authenticates its tenant''s member'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_owner_b', :'custom'),
    'TN004', null,
    'a token for B on A''s custom domain is TN004'
);
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.remove_custom_domain(:'custom') \gset
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_member_a', :'custom'),
    'TN012', null,
    'a removed custom domain is TN012'
);

-- A suspended tenant's host ------------------------------------------------------------------------

reset role;
set local role tenancy_service;
select tenancy.suspend_tenant(:'tenant_c') \gset
set local role tenancy_app;
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_owner_any', :'host_c'),
    'TN012', null,
    'a suspended tenant''s host is TN012'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_owner_c'),
    'TN002', null,
    'as with the one-argument form (TN002) for its tenant_id'
);
set local role tenancy_service;
select tenancy.reactivate_tenant(:'tenant_c') \gset
set local role tenancy_app;
select results_eq(
    format('select tenant_id from tenancy.authenticate(%L, %L)', :'t_owner_any', :'host_c'),
    format('values (%L::uuid)', :'tenant_c'),
    'reactivated, its host authenticates again'
);

-- Who may call it ----------------------------------------------------------------------------------

set local role tenancy_admin;
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_member_a', :'host_a'),
    '42501', null,
    'tenancy_admin cannot call authenticate(p_token, p_host)'
);
set local role tenancy_service;
select lives_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_member_a', :'host_a'),
    'tenancy_service inherits it from tenancy_app'
);
reset role;

select * from finish();
rollback;
