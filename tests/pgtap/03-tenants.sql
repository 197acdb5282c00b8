-- Tenant lifecycle: create_tenant (slug rules, duplicates, owner), suspend, reactivate.
-- Tenants are created as tenancy_admin or tenancy_service; the superuser only reads memberships
-- back (no pgtenancy role may read them outside a context) and marks a tenant deleted, which no
-- API does yet.

begin;
select plan(35);

select
    'auth0|' || gen_random_uuid() as owner_a,
    'user_2' || md5(random()::text) as owner_b,
    gen_random_uuid() as unknown_tenant
\gset

-- Creating tenants -----------------------------------------------------------------------------

set local role tenancy_admin;

-- A valid slug: the new tenant's id comes back.
select lives_ok(
    format('select tenancy.create_tenant(%L, %L, %L)', 'acme', 'Acme Ltd', :'owner_a'),
    'tenancy_admin creates tenant acme'
);
select tenancy.create_tenant('bravo', '  Bravo  ', :'owner_b') as tenant_b \gset

select results_eq(
    'select slug::text, name::text, status from tenancy.tenants where slug in (''acme'', ''bravo'') order by slug',
    $$values ('acme'::text, 'Acme Ltd'::text, 'active'::text), ('bravo', 'Bravo', 'active')$$,
    'new tenants are active, with trimmed names'
);
select is(
    (
        select t.id from tenancy.tenants as t
        where t.slug = 'bravo'
    ),
    :'tenant_b'::uuid,
    'create_tenant returns the id of the new tenant'
);

-- tenancy_service may create tenants too.
set local role tenancy_service;
select lives_ok(
    format('select tenancy.create_tenant(%L, %L, %L)', 'from-service', 'Service-made', :'owner_b'),
    'tenancy_service creates a tenant'
);

-- Slug rules: 3 and 63 characters are accepted.
select lives_ok(
    format('select tenancy.create_tenant(%L, %L, %L)', 'a1b', 'Three', :'owner_a'),
    'a 3-character slug is accepted'
);
select lives_ok(
    format('select tenancy.create_tenant(%L, %L, %L)', repeat('a', 63), 'Sixty-three', :'owner_a'),
    'a 63-character slug is accepted'
);

-- Anything else is 22023 naming the slug.
select
    throws_ok(
        format('select tenancy.create_tenant(%L, %L, %L)', e.slug, 'Bad', :'owner_a'),
        '22023',
        format('invalid tenant slug %L', e.slug),
        format('slug %s is refused: %s', e.slug, e.why)
    )
from (
    values
    ('ab', 'too short'),
    (repeat('b', 64), 'too long'),
    ('Acme', 'upper case'),
    ('-acme', 'leading hyphen'),
    ('acme-', 'trailing hyphen'),
    ('ac_me', 'underscore'),
    ('ac me', 'space'),
    ('acmé', 'non-ASCII letter')
) as e (slug, why);

-- A NULL slug: 22023.
select throws_ok(
    format('select tenancy.create_tenant(NULL, %L, %L)', 'Null slug', :'owner_a'),
    '22023',
    'invalid tenant slug NULL',
    'a NULL slug is refused'
);

-- An empty name: 22023.
select throws_ok(
    format('select tenancy.create_tenant(%L, %L, %L)', 'no-name', '   ', :'owner_a'),
    '22023',
    'invalid tenant name ''   '': 1 to 200 characters required',
    'a blank tenant name is refused'
);

-- A taken slug: 23505 naming it.
select throws_ok(
    format('select tenancy.create_tenant(%L, %L, %L)', 'acme', 'Acme again', :'owner_b'),
    '23505',
    'tenant slug ''acme'' is already taken',
    'a duplicate slug is refused'
);

-- No owner: the tenant is created without members (they come later: an import, invitations).
select tenancy.create_tenant('ownerless', 'Ownerless', null) as ownerless \gset
reset role;
select is(
    (
        select count(*) from tenancy.memberships as m
        where m.tenant_id = :'ownerless'
    ),
    0::bigint,
    'a tenant without an owner is created with no member'
);
set local role tenancy_service;

-- Failed attempts wrote nothing: 0 rows.
select is_empty(
    $$select 1 from tenancy.tenants where slug in ('ab', 'no-name') or name = 'Acme again'$$,
    'refused create_tenant calls leave no tenant behind'
);

-- The application role cannot create tenants: 42501; tenancy_auditor neither.
set local role tenancy_app;
select throws_ok(
    format('select tenancy.create_tenant(%L, %L, %L)', 'by-app', 'By app', :'owner_a'),
    '42501',
    'permission denied for function create_tenant',
    'tenancy_app cannot create tenants'
);
set local role tenancy_auditor;
select throws_ok(
    format('select tenancy.create_tenant(%L, %L, %L)', 'by-auditor', 'By auditor', :'owner_a'),
    '42501',
    'permission denied for function create_tenant',
    'tenancy_auditor cannot create tenants'
);

-- The first owner (read back by the superuser): exactly one membership, role owner.
reset role;
select results_eq(
    format('select user_id::text, role::text from tenancy.memberships where tenant_id = %L', :'tenant_b'),
    format('values (%L::text, %L::text)', :'owner_b', 'owner'),
    'create_tenant makes p_owner_user_id the only member, as owner'
);

-- Suspend and reactivate ------------------------------------------------------------------------

set local role tenancy_admin;

-- active -> suspended.
select lives_ok(format('select tenancy.suspend_tenant(%L)', :'tenant_b'), 'tenancy_admin suspends bravo');
select is(
    (
        select t.status from tenancy.tenants as t
        where t.id = :'tenant_b'
    ),
    'suspended',
    'bravo is suspended'
);
-- Suspending again changes nothing.
select lives_ok(format('select tenancy.suspend_tenant(%L)', :'tenant_b'), 'suspending twice is a no-op');

-- suspended -> active, by tenancy_service this time.
set local role tenancy_service;
select lives_ok(
    format('select tenancy.reactivate_tenant(%L)', :'tenant_b'), 'tenancy_service reactivates bravo'
);
select is(
    (
        select t.status from tenancy.tenants as t
        where t.id = :'tenant_b'
    ),
    'active',
    'bravo is active again'
);
select lives_ok(
    format('select tenancy.reactivate_tenant(%L)', :'tenant_b'), 'reactivating an active tenant is a no-op'
);

-- The application cannot suspend tenants: 42501.
set local role tenancy_app;
select throws_ok(
    format('select tenancy.suspend_tenant(%L)', :'tenant_b'),
    '42501',
    'permission denied for function suspend_tenant',
    'tenancy_app cannot suspend a tenant'
);

-- A deleted tenant (marked by the superuser) can be neither reactivated nor suspended: 55000.
reset role;
update tenancy.tenants set status = 'deleted'
where id = :'tenant_b';
set local role tenancy_admin;
select throws_ok(
    format('select tenancy.reactivate_tenant(%L)', :'tenant_b'),
    '55000',
    format('tenant %s is deleted and cannot become active', :'tenant_b'),
    'a deleted tenant cannot be reactivated'
);
select throws_ok(
    format('select tenancy.suspend_tenant(%L)', :'tenant_b'),
    '55000',
    format('tenant %s is deleted and cannot become suspended', :'tenant_b'),
    'a deleted tenant cannot be suspended'
);
select is(
    (
        select t.status from tenancy.tenants as t
        where t.id = :'tenant_b'
    ),
    'deleted',
    'the deleted tenant stays deleted'
);

-- An unknown tenant: P0002.
select throws_ok(
    format('select tenancy.suspend_tenant(%L)', :'unknown_tenant'),
    'P0002',
    format('tenant %s does not exist', :'unknown_tenant'),
    'suspending an unknown tenant is P0002'
);
select throws_ok(
    format('select tenancy.reactivate_tenant(%L)', :'unknown_tenant'),
    'P0002',
    format('tenant %s does not exist', :'unknown_tenant'),
    'reactivating an unknown tenant is P0002'
);
select throws_ok(
    'select tenancy.suspend_tenant(NULL)',
    'P0002',
    'tenant NULL does not exist',
    'suspending a NULL tenant is P0002'
);
reset role;

select * from finish();
rollback;
