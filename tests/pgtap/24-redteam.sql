-- Attacks by tenancy_app on the domain, settings and tenant-key surface: hand-written context
-- values, a forged key length, reading another tenant's overrides and domains, claiming a domain
-- another tenant holds under another spelling, a token naming one tenant on another's host.
-- Each refusal is paired with the legitimate operation succeeding. The superuser signs the
-- tokens; the rest runs as the real roles.

begin;
select plan(24);

delete from tenancy.jwt_config;

\set secret 'pgtap-redteam-secret-0123456789abcdefghijklmnopqrstuvwxyz'

\ir setup/helpers.psql

select
    'auth0|' || gen_random_uuid() || '|owner' as user_a,
    'auth0|' || gen_random_uuid() as user_b,
    'rt-a-' || left(md5(random()::text), 8) as slug_a,
    'rt-b-' || left(md5(random()::text), 8) as slug_b,
    'redteam.f' || left(md5(random()::text), 8) as flag,
    'login-' || left(md5(random()::text), 8) || '.victim.example' as custom_b,
    'login-' || left(md5(random()::text), 8) || '.attacker.example' as custom_a,
    (floor(random() * 1000000000) + 1)::bigint::text as key_a,
    left(md5(random()::text), 6) || '|7' as key_b,
    extract(epoch from now())::bigint + 300 as soon
\gset

set local role tenancy_admin;
select tenancy.configure_jwt(:'secret', null, null) \gset
select tenancy.configure_domains(array['redteam.test']) \gset
select tenancy.create_tenant(:'slug_a', 'Attacker A', :'user_a', p_key => :'key_a') as tenant_a \gset
select tenancy.create_tenant(:'slug_b', 'Victim B', :'user_b', p_key => :'key_b') as tenant_b \gset
select tenancy.set_feature_default(:'flag', 'false'::jsonb);
select tenancy.set_feature_flag(:'tenant_b', :'flag', '"b-secret"'::jsonb);
reset role;
select pg_temp.act_as(:'tenant_b', :'user_b');
select tenancy.add_custom_domain(:'custom_b') \gset
reset role;

select
    :'slug_a' || '.redteam.test' as host_a,
    :'slug_b' || '.redteam.test' as host_b,
    pg_temp.jwt(jsonb_build_object('sub', :'user_a', 'tenant_id', :'tenant_a', 'exp', :soon), :'secret') as t_a,
    pg_temp.jwt(jsonb_build_object('sub', :'user_a', 'exp', :soon), :'secret') as t_a_any,
    tenancy.context_value(:'tenant_a', 'owner', left(:'key_a', 1), :'user_a') as v_short_key,
    tenancy.context_value(:'tenant_b', 'owner', :'key_b', :'user_a') as v_tenant_b,
    tenancy.context_value(:'tenant_a', 'service', :'key_a', null) as v_service
\gset

set local role tenancy_app;

-- Hand-written context values ----------------------------------------------------------------------

select tenancy.authenticate(:'t_a');
select is(tenancy.context_tenant_key(null), :'key_a', 'A''s context gives A''s key');
select is(tenancy.current_user_id(), :'user_a', 'a user id holding | is read back whole');
select set_config(
    'tenancy.context', :'v_short_key', true
);
select is(tenancy.context_tenant_key(null), null, 'a shorter key length for the same tenant and role gives no key');
select is(tenancy.current_user_id(), null, 'nor a user');
select set_config(
    'tenancy.context', :'v_tenant_b', true
);
select is(tenancy.current_tenant_id(), null, 'a value naming tenant B is no context');
select is(tenancy.context_tenant_key(null), null, 'and gives no key');
select is(tenancy.feature_value(:'flag'), null, 'nor B''s feature override');
select set_config(
    'tenancy.context', :'v_service', true
);
select is(tenancy.current_tenant_id(), null, 'a value naming the service role is no context');

-- Settings of another tenant ------------------------------------------------------------------------

select tenancy.authenticate(:'t_a');
select is(tenancy.feature_value(:'flag'), 'false'::jsonb, 'in A''s context the flag is the platform default');
select is(tenancy.feature_enabled(:'flag'), false, 'and not enabled');
select is_empty(
    format('select * from tenancy.feature_flags where tenant_id = %L', :'tenant_b'),
    'A''s context reads none of B''s overrides'
);
select is_empty(
    format('select * from tenancy.tenant_domains where tenant_id = %L', :'tenant_b'),
    'nor any of B''s domains'
);
reset role;
select pg_temp.act_as(:'tenant_b', :'user_b');
select is(tenancy.feature_value(:'flag'), '"b-secret"'::jsonb, 'B''s context reads B''s override');
select isnt_empty(
    format('select * from tenancy.tenant_domains where hostname = %L', :'custom_b'),
    'and B''s pending domain'
);

-- Claims and hosts ----------------------------------------------------------------------------------

select tenancy.authenticate(:'t_a');
select throws_ok(
    format('select tenancy.add_custom_domain(%L)', ' ' || upper(:'custom_b') || '.:443'),
    '23505',
    format('custom domain %L is already claimed', :'custom_b'),
    'another spelling of B''s pending domain is refused without naming B'
);
select lives_ok(
    format('select tenancy.add_custom_domain(%L)', :'custom_a'),
    'A claims a domain nobody holds'
);
select is(tenancy.resolve_tenant(:'custom_b'), null, 'B''s pending domain resolves to no tenant');
select is_empty(
    format('select * from tenancy.tenant_public_profile(%L)', :'custom_b'),
    'and has no public profile'
);
select results_eq(
    format('select display_name, primary_domain from tenancy.tenant_public_profile(%L)', :'host_b'),
    format('values (%L, %L)', 'Victim B', :'host_b'),
    'B''s platform host shows its profile'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_a', :'host_b'),
    'TN004',
    format('token claim tenant_id %s does not name tenant %s of host %L', :'tenant_a', :'tenant_b', :'host_b'),
    'a token for A on B''s host is refused'
);
select throws_ok(
    format('select tenancy.authenticate(%L, %L)', :'t_a_any', :'host_b'),
    'TN003',
    format('user %L is not a member of tenant %s', :'user_a', :'tenant_b'),
    'a token without a tenant claim on B''s host is refused: A''s user is not B''s member'
);
select is(tenancy.current_tenant_id(), :'tenant_a'::uuid, 'the refusals left A''s context');
select results_eq(
    format('select tenant_id, role from tenancy.authenticate(%L, %L)', :'t_a_any', upper(:'host_a') || '.'),
    format('values (%L::uuid, %L::text)', :'tenant_a', 'owner'),
    'the same token on A''s host, in capitals with a trailing dot, authenticates'
);
select is(tenancy.context_tenant_key(null), :'key_a', 'with A''s key');
reset role;

select * from finish();
rollback;
