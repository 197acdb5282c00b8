-- Domains: tenancy.resolve_tenant over hosts of every shape, reserved slugs, custom domains
-- (claim, verification, primary, removal), slug renames with their grace period, and who may
-- read what. Each refusal is paired with the legitimate request succeeding. Runs as the real
-- roles; the superuser only moves a grace period's end into the past, as time would.

begin;
select plan(46);

\ir setup/helpers.psql

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as owner_b,
    'auth0|' || gen_random_uuid() as member_a,
    'dom-a-' || left(md5(random()::text), 8) as slug_a,
    'dom-b-' || left(md5(random()::text), 8) as slug_b,
    'dom-c-' || left(md5(random()::text), 8) as slug_c,
    'shop-' || left(md5(random()::text), 8) || '.customer.example' as custom
\gset

-- Configuration, tenants ---------------------------------------------------------------------

set local role tenancy_admin;
select lives_ok(
    $$select tenancy.configure_domains(array['SaaS.test', 'tenants.example.'], p_slug_grace => '1 day')$$,
    'tenancy_admin configures two base domains (normalised) and the default reserved labels'
);
select is(
    (select base_domains from tenancy.domain_config),
    array['saas.test', 'tenants.example'],
    'base domains are stored normalised'
);
select ok(
    (select array['www', 'api', 'app', 'admin', 'mail'] <@ reserved_labels from tenancy.domain_config),
    'the default reserved labels include www, api, app, admin, mail'
);
select throws_ok(
    $$select tenancy.create_tenant('admin', 'Admin', null)$$,
    '22023',
    'tenant slug ''admin'' is reserved',
    'create_tenant refuses a reserved slug, naming it'
);
select tenancy.create_tenant(:'slug_a', 'Domains A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant(:'slug_b', 'Domains B', :'owner_b') as tenant_b \gset
select isnt(:'tenant_a'::uuid, null, 'create_tenant still creates a tenant with an ordinary slug');
reset role;

select pg_temp.act_as(:'tenant_a', :'owner_a');
select lives_ok(format('select tenancy.add_member(%L, %L)', :'member_a', 'member'), 'A gets a member');
reset role;

-- Resolution: every spelling of a subdomain; what never resolves --------------------------------

set local role tenancy_app;
select is(
    tenancy.resolve_tenant(format('%s.saas.test', :'slug_a')), :'tenant_a'::uuid,
    'tenancy_app resolves <slug>.<base> without a context'
);
select is(
    tenancy.resolve_tenant(format('  %s.SAAS.Test.:8443 ', upper(:'slug_a'))), :'tenant_a'::uuid,
    'case, a trailing dot, :port and surrounding whitespace are normalised'
);
select is(
    tenancy.resolve_tenant(format('%s.tenants.example', :'slug_b')), :'tenant_b'::uuid,
    'every base domain gives every tenant a subdomain'
);
select is(
    tenancy.resolve_tenant(format('x.%s.saas.test', :'slug_a')), null,
    'a multi-level name under a base does not resolve'
);
select is(tenancy.resolve_tenant('www.saas.test'), null, 'a reserved label does not resolve');
select is(tenancy.resolve_tenant('saas.test'), null, 'the base domain itself does not resolve');
select is(
    tenancy.resolve_tenant(format('%s.saas.test.evil.example', :'slug_a')), null,
    'a base domain inside another name does not resolve'
);
select is(tenancy.resolve_tenant('127.0.0.1:80'), null, 'an IPv4 literal does not resolve');
select is(tenancy.resolve_tenant('[::1]:8080'), null, 'a bracketed IPv6 literal does not resolve');
select is(tenancy.resolve_tenant('2001:db8::1'), null, 'a bare IPv6 literal does not resolve');
select is(tenancy.resolve_tenant(null), null, 'NULL resolves to NULL');
select throws_ok(
    $$select tenancy.resolve_tenant('a..saas.test')$$, 'TN010',
    'malformed host ''a..saas.test'': it has an empty label', 'an empty label is refused, naming the host'
);
select throws_ok(
    format('select tenancy.resolve_tenant(%L)', repeat('a', 64) || '.saas.test'), 'TN010', null,
    'a label over 63 characters is refused'
);
select throws_ok(
    format('select tenancy.resolve_tenant(%L)', repeat('abcd.', 51)), 'TN010', null,
    'a host over 253 characters is refused'
);
select throws_ok(
    $$select tenancy.resolve_tenant('bücher.saas.test')$$, 'TN010', null,
    'a non-ASCII host is refused (it must arrive punycoded)'
);
select throws_ok(
    $$select tenancy.resolve_tenant('evil.test/x?@saas.test')$$, 'TN010', null,
    'characters outside a DNS name are refused'
);
select throws_ok(
    $$select tenancy.resolve_tenant('saas.test:99999')$$, 'TN010', null,
    'a port over 65535 is refused'
);
select throws_ok(
    'select * from tenancy.domain_claims', '42501', 'permission denied for table domain_claims',
    'tenancy_app cannot read the global hostname map'
);
reset role;

-- The lookup resolve_tenant makes (its query, as the owner runs it): one index-only probe of
-- domain_claims' primary key, and no other node (the tenant's status rides in the index).
select matches(
    pg_temp.plan_of(
        $$select c.tenant_id from tenancy.domain_claims as c
        where c.hostname = 'x.saas.test' and c.resolves and c.tenant_active
            and (c.expires_at is null or c.expires_at > now())$$
    ),
    '^Index Only Scan using domain_claims_pkey on domain_claims c\n(  [^\n]*\n)*$',
    'a host is one index-only probe of domain_claims_pkey, and nothing else'
);

-- Suspension -----------------------------------------------------------------------------------

set local role tenancy_admin;
select tenancy.suspend_tenant(:'tenant_b');
set local role tenancy_app;
select is(
    tenancy.resolve_tenant(format('%s.saas.test', :'slug_b')), null, 'a suspended tenant does not resolve'
);
set local role tenancy_admin;
select tenancy.reactivate_tenant(:'tenant_b');
set local role tenancy_app;
select is(
    tenancy.resolve_tenant(format('%s.saas.test', :'slug_b')), :'tenant_b'::uuid,
    'reactivated, it resolves again'
);
reset role;

-- Custom domains ---------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    format('select tenancy.add_custom_domain(%L)', :'custom'), '42501', null,
    'a member cannot add a custom domain'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select throws_ok(
    format('select tenancy.add_custom_domain(%L)', 'shop.' || :'slug_b' || '.saas.test'), 'TN011', null,
    'a name under a base domain cannot be claimed'
);
select results_eq(
    format('select txt_name from tenancy.add_custom_domain(%L)', upper(:'custom')),
    format('values (%L)', '_pgtenancy-challenge.' || :'custom'),
    'the owner adds a custom domain and gets the TXT record name to publish'
);
select is(
    (
        select status from tenancy.tenant_domains
        where hostname = :'custom'
    ),
    'pending',
    'the new custom domain is pending'
);
reset role;

set local role tenancy_app;
select is(tenancy.resolve_tenant(:'custom'), null, 'a pending custom domain does not resolve');
reset role;

select pg_temp.act_as(:'tenant_b', :'owner_b');
select throws_ok(
    format('select tenancy.add_custom_domain(%L)', :'custom'), '23505',
    format('custom domain %L is already claimed', :'custom'),
    'another tenant''s claim is refused without naming the holder'
);
select is(
    (
        select count(*)::integer from tenancy.tenant_domains
        where hostname = :'custom'
    ),
    0,
    'tenant B does not see tenant A''s domain'
);
reset role;

select txt_token as token from tenancy.tenant_domains
where hostname = :'custom' \gset
set local role tenancy_service;
select is(
    tenancy.verify_custom_domain(:'custom', array['pgtenancy-verification=forged']), 'failed',
    'a TXT value other than the token fails verification'
);
set local role tenancy_app;
select is(tenancy.resolve_tenant(:'custom'), null, 'a failed custom domain does not resolve');
set local role tenancy_service;
select is(
    tenancy.verify_custom_domain(:'custom', array['v=spf1 -all', 'pgtenancy-verification=' || :'token']),
    'verified',
    'the published token verifies the domain'
);
set local role tenancy_app;
select is(tenancy.resolve_tenant(:'custom' || ':443'), :'tenant_a'::uuid, 'a verified custom domain resolves');
reset role;

select pg_temp.act_as(:'tenant_a', :'owner_a');
select lives_ok(format('select tenancy.set_primary_domain(%L)', :'custom'), 'the owner makes it primary');
select lives_ok(format('select tenancy.remove_custom_domain(%L)', :'custom'), 'the owner removes it');
select is(
    (
        select hostname from tenancy.tenant_domains
        where is_primary
    ),
    :'slug_a' || '.saas.test',
    'the primary falls back to the first platform subdomain'
);
reset role;
set local role tenancy_app;
select is(tenancy.resolve_tenant(:'custom'), null, 'a removed custom domain does not resolve');
reset role;

-- Slug renames -------------------------------------------------------------------------------

set local role tenancy_service;
select lives_ok(
    format('select tenancy.rename_tenant_slug(%L, %L)', :'tenant_a', :'slug_c'),
    'tenancy_service renames tenant A'
);
select throws_ok(
    format('select tenancy.create_tenant(%L, %L, null)', :'slug_a', 'Squatter'), '23505', null,
    'during the grace period the old slug is still tenant A''s'
);
set local role tenancy_app;
select results_eq(
    format(
        'select tenancy.resolve_tenant(%L), tenancy.resolve_tenant(%L)',
        :'slug_a' || '.saas.test', :'slug_c' || '.saas.test'
    ),
    format('values (%L::uuid, %L::uuid)', :'tenant_a', :'tenant_a'),
    'old and new subdomains both resolve during the grace period'
);
reset role;
update tenancy.domain_claims set expires_at = now() - interval '1 second'
where tenant_id = :'tenant_a' and expires_at is not null;
set local role tenancy_app;
select results_eq(
    format(
        'select tenancy.resolve_tenant(%L), tenancy.resolve_tenant(%L)',
        :'slug_a' || '.saas.test', :'slug_c' || '.saas.test'
    ),
    format('values (null::uuid, %L::uuid)', :'tenant_a'),
    'once the grace period is over only the new subdomain resolves'
);

select * from finish();
rollback;
