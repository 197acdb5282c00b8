-- Tenants with a chosen id and an application key (tenancy.create_tenant p_id, p_key), and
-- tenancy.tenant_id_for_key: what is accepted, what is refused (with its SQLSTATE and value),
-- and who may call it. Fixtures by tenancy_service; the superuser reads the stored rows.

begin;
select plan(14);

select
    gen_random_uuid() as owner_a,
    '6f1c0000-0000-4000-8000-000000000042' as chosen_id
\gset

set local role tenancy_service;

-- A chosen id and a key: both stored.
select is(
    tenancy.create_tenant('company-42', 'Company 42', :'owner_a', :'chosen_id', '42'),
    :'chosen_id'::uuid,
    'create_tenant returns the chosen id'
);
select is(
    tenancy.tenant_id_for_key('42'), :'chosen_id'::uuid,
    'tenant_id_for_key finds the tenant by its application key'
);
select is(
    tenancy.tenant_id_for_key('43'), null::uuid,
    'tenant_id_for_key is NULL for a key no tenant has'
);
select is(
    tenancy.tenant_id_for_key(''), null::uuid,
    'tenant_id_for_key is NULL for a key no tenant can have'
);

-- The same id or key again: 23505 naming it; an invalid key: 22023 naming it.
select throws_ok(
    format('select tenancy.create_tenant(%L, %L, null, %L)', 'other-a', 'Other', :'chosen_id'),
    '23505',
    format('tenant id %s is already taken', :'chosen_id'),
    'a tenant id already taken is refused'
);
select throws_ok(
    $$select tenancy.create_tenant('other-b', 'Other', null, null, '42')$$,
    '23505',
    'tenant key ''42'' is already taken',
    'a tenant key already taken is refused'
);
select throws_ok(
    $$select tenancy.create_tenant('other-c', 'Other', null, null, '')$$,
    '22023',
    'invalid tenant key '''': 1 to 255 characters, no control characters',
    'an empty tenant key is refused'
);
select throws_ok(
    format('select tenancy.create_tenant(%L, %L, null, null, %L)', 'other-d', 'Other', E'4\n2'),
    '22023',
    format('invalid tenant key %L: 1 to 255 characters, no control characters', E'4\n2'),
    'a tenant key with a control character is refused'
);
select throws_ok(
    format('select tenancy.create_tenant(%L, %L, null, null, %L)', 'other-e', 'Other', repeat('k', 256)),
    '22023',
    null,
    'a tenant key longer than 255 characters is refused'
);

-- Without an id or a key: a generated id, no key.
select isnt(
    tenancy.create_tenant('plain-tenant', 'Plain', :'owner_a'), null::uuid,
    'create_tenant without p_id and p_key still creates a tenant'
);

reset role;
select results_eq(
    $$select slug::text, key::text, (id = '6f1c0000-0000-4000-8000-000000000042') from tenancy.tenants
      where slug in ('company-42', 'plain-tenant') order by slug$$,
    $$values ('company-42', '42', true), ('plain-tenant', null, false)$$,
    'the tenants hold their chosen id and key, or a generated id and none'
);
select is_empty(
    $$select 1 from tenancy.tenants where slug like 'other-%'$$,
    'refused create_tenant calls leave no tenant behind'
);

-- Who may look a key up: tenancy_service and tenancy_admin, not the application.
set local role tenancy_app;
select throws_ok(
    $$select tenancy.tenant_id_for_key('42')$$,
    '42501',
    'permission denied for function tenant_id_for_key',
    'tenancy_app cannot look tenants up by key'
);
set local role tenancy_admin;
select is(
    tenancy.tenant_id_for_key('42'), :'chosen_id'::uuid,
    'tenancy_admin looks a tenant up by key'
);

select * from finish();
rollback;
