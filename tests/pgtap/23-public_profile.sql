-- tenancy.tenant_public_profile: what a login page may show for a host, to tenancy_app without a
-- context, and nothing more; each host that must give nothing is paired with one that does.
-- Fixtures as the real roles; the superuser only reads the TXT token a tenant would publish.

begin;
select plan(15);

\ir setup/helpers.psql

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as owner_b,
    'prof-a-' || left(md5(random()::text), 8) as slug_a,
    'prof-b-' || left(md5(random()::text), 8) as slug_b,
    'login-' || left(md5(random()::text), 8) || '.customer.example' as custom
\gset

set local role tenancy_admin;
select tenancy.configure_domains(array['profiles.test']) \gset
select tenancy.create_tenant(:'slug_a', 'Acme Corp', :'owner_a') as tenant_a \gset
select tenancy.create_tenant(:'slug_b', 'Bravo Ltd', :'owner_b') as tenant_b \gset
select tenancy.set_tenant_branding(
    :'tenant_a', '{"display_name": "Acme", "primary_color": "#FF6600", "support_email": "help@acme.example"}'
) \gset
reset role;

-- A's owner claims a custom domain; it is not public until verified.
select pg_temp.act_as(:'tenant_a', :'owner_a');
select txt_name as ignored from tenancy.add_custom_domain(:'custom') \gset
select tenancy.clear_context() \gset
reset role;
select txt_token as token from tenancy.tenant_domains
where hostname = :'custom' \gset

-- As the application, with no context at all.
set local role tenancy_app;
select is(tenancy.current_tenant_id(), null, 'no tenant context');
select results_eq(
    format('select * from tenancy.tenant_public_profile(%L)', upper(:'slug_a') || '.Profiles.test:443'),
    format(
        $$values ('Acme'::text, '{"display_name": "Acme", "primary_color": "#ff6600", "support_email": "help@acme.example"}'::jsonb, %L::text, true)$$,
        :'slug_a' || '.profiles.test'
    ),
    'a platform subdomain (any case, with a port): display name, branding, primary domain, active'
);
select results_eq(
    format('select display_name, branding, active from tenancy.tenant_public_profile(%L)', :'slug_b' || '.profiles.test'),
    $$values ('Bravo Ltd'::text, '{}'::jsonb, true)$$,
    'a tenant without branding: its name and empty branding'
);
select is_empty(
    format('select * from tenancy.tenant_public_profile(%L)', 'nobody.profiles.test'),
    'an unknown subdomain: no profile'
);
select is_empty(
    $$select * from tenancy.tenant_public_profile('www.profiles.test')$$,
    'a reserved label: no profile'
);
select is_empty(
    $$select * from tenancy.tenant_public_profile('192.0.2.7:8080')$$,
    'an IP literal: no profile'
);
select is_empty(
    format('select * from tenancy.tenant_public_profile(%L)', 'x.' || :'slug_a' || '.profiles.test'),
    'a name two labels under a base: no profile'
);
select is_empty(
    format('select * from tenancy.tenant_public_profile(%L)', :'custom'),
    'a pending custom domain: no profile'
);
select throws_ok(
    $$select * from tenancy.tenant_public_profile('a..profiles.test')$$,
    'TN010',
    null,
    'a malformed host is TN010'
);
reset role;

set local role tenancy_service;
select is(
    tenancy.verify_custom_domain(:'custom', array['pgtenancy-verification=' || :'token']), 'verified',
    'the custom domain is verified'
);
set local role tenancy_app;
select results_eq(
    format('select display_name, active from tenancy.tenant_public_profile(%L)', :'custom'),
    $$values ('Acme'::text, true)$$,
    'a verified custom domain gives the same profile'
);

-- Suspended: the profile says so; deleted: nothing.
set local role tenancy_admin;
select tenancy.suspend_tenant(:'tenant_b') \gset
set local role tenancy_app;
select results_eq(
    format('select display_name, active from tenancy.tenant_public_profile(%L)', :'slug_b' || '.profiles.test'),
    $$values ('Bravo Ltd'::text, false)$$,
    'a suspended tenant''s page can say it is not active'
);
select is(
    tenancy.resolve_tenant(:'slug_b' || '.profiles.test'), null,
    '... while resolve_tenant gives no tenant for it'
);
reset role;
update tenancy.tenants set status = 'deleted'
where id = :'tenant_b';
set local role tenancy_app;
select is_empty(
    format('select * from tenancy.tenant_public_profile(%L)', :'slug_b' || '.profiles.test'),
    'a deleted tenant: no profile'
);
reset role;

-- The result holds these four columns and nothing else (no id, slug, key or members).
select is(
    pg_catalog.pg_get_function_result('tenancy.tenant_public_profile(text)'::regprocedure),
    'TABLE(display_name text, branding jsonb, primary_domain text, active boolean)',
    'the profile is display name, branding, primary domain and active, nothing more'
);

select * from finish();
rollback;
