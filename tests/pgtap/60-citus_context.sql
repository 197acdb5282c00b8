-- The Citus flavour's signed context: grants, the key's privacy, signing only while on, and its verification.

begin;
select plan(29);

-- Grants: exactly these roles execute each function (besides the owner); the key table grants
-- nothing to anyone.
select
    is(
        (
            select array_agg(a.grantee::regrole::text order by a.grantee::regrole::text)
            from
                pg_catalog.aclexplode((
                    select p.proacl from pg_catalog.pg_proc as p
                    where p.oid = e.fn::regprocedure
                )) as a
            where a.privilege_type = 'EXECUTE' and a.grantee <> 'tenancy_owner'::regrole
        ),
        e.grantees,
        format('%s is granted to exactly %s', e.fn, coalesce(array_to_string(e.grantees, ', '), 'no role'))
    )
from (
    values
    ('tenancy.configure_context_mac(boolean,integer,boolean)', array['tenancy_admin']),
    ('tenancy.sign_context_mac(uuid,text,text,text)', null::text[]),
    (
        'tenancy.context_tenant_id_mac(text[])',
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    (
        'tenancy.context_tenant_key_mac(text[])',
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    ('tenancy.citus_distribution_plan()', array['tenancy_admin'])
) as e (fn, grantees)
order by e.fn;

select is(
    (
        select c.relacl::text from pg_catalog.pg_class as c
        where c.oid = 'tenancy.context_mac_keys'::regclass
    ),
    '{tenancy_owner=arwdDxt/tenancy_owner}',
    'tenancy.context_mac_keys: only its owner holds privileges'
);
select is_definer(
    'tenancy', 'context_tenant_id_mac', array['text[]'], 'context_tenant_id_mac runs as the owner (it reads the key)'
);
select isnt_definer(
    'tenancy', 'context_tenant_key_mac', array['text[]'], 'context_tenant_key_mac runs as the caller'
);
select is(
    (
        select p.provolatile::text || p.proparallel::text from pg_catalog.pg_proc as p
        where p.oid = 'tenancy.context_tenant_id_mac(text[])'::regprocedure
    ),
    'ss',
    'context_tenant_id_mac is STABLE and PARALLEL SAFE'
);

-- Off (no key row): a context is not signed, and the Citus flavour's check admits nothing.
delete from tenancy.context_mac_keys;
select tenancy.create_tenant('citus-pgtap-a', 'A', 'user-a', p_key => '4242') as tenant_a \gset
select tenancy.create_tenant('citus-pgtap-b', 'B', 'user-b') as tenant_b \gset

set local role tenancy_service;
select tenancy.set_context(:'tenant_a', 'user-a');
select is(
    coalesce(current_setting('tenancy.context_mac', true), ''), '', 'off: establishing a context signs nothing'
);
select is(tenancy.context_tenant_id_mac(null), null::uuid, 'off: context_tenant_id_mac admits nothing');
select is(tenancy.context_tenant_id(null), :'tenant_a'::uuid, 'off: the single-node context holds');
reset role;

-- On: the context is signed (expiry, nonce, 64 hex digits) and admitted for its tenant and role.
set local role tenancy_admin;
select is(tenancy.configure_context_mac(true), 'on', 'tenancy_admin switches the form on');
reset role;
set local role tenancy_service;
select tenancy.set_context(:'tenant_a', 'user-a');
select matches(
    current_setting('tenancy.context_mac'), '^m1\|[0-9]{10}\|[0-9a-f]{32}\|[0-9a-f]{64}$',
    'on: establishing a context writes m1|expiry|nonce|hmac'
);
select
    current_setting('tenancy.context') as context_a,
    current_setting('tenancy.context_mac') as mac_a
\gset
select is(tenancy.context_tenant_id_mac(array['owner']), :'tenant_a'::uuid, 'on: the owner''s signed context admits tenant A');
select is(tenancy.context_tenant_id_mac(array['viewer']), null::uuid, 'on: not for a role list without owner');
select is(tenancy.context_tenant_key_mac(array['owner']), '4242', 'on: context_tenant_key_mac gives the tenant key');
select is(
    tenancy.tenant_key_int8(tenancy.context_tenant_key_mac(null)), 4242::bigint,
    'on: as a bigint tenant column holds it'
);

-- Hand-written values: another tenant with A's signature, a forged signature, a later expiry.
select set_config('tenancy.context', replace(:'context_a', :'tenant_a', :'tenant_b'), true);
select is(tenancy.context_tenant_id_mac(null), null::uuid, 'a context naming tenant B with A''s signature is refused');
select set_config('tenancy.context', :'context_a', true);
select set_config('tenancy.context_mac', left(:'mac_a', -64) || repeat('0', 64), true);
select is(tenancy.context_tenant_id_mac(null), null::uuid, 'a forged signature is refused');
select set_config('tenancy.context_mac', replace(:'mac_a', 'm1|', 'm1|9'), true);
select is(tenancy.context_tenant_id_mac(null), null::uuid, 'a signature whose expiry was changed is refused');
select set_config('tenancy.context_mac', 'm1|x|y|z', true);
select is(tenancy.context_tenant_id_mac(null), null::uuid, 'a malformed signature is refused, without an error');
select set_config('tenancy.context_mac', :'mac_a', true);
select is(tenancy.context_tenant_id_mac(null), :'tenant_a'::uuid, 'the genuine pair is admitted again');

-- The application: no key, no signing, no configuring.
set local role tenancy_app;
select throws_ok('select * from tenancy.context_mac_keys', '42501', null, 'the application cannot read the key');
select throws_ok(
    format('select tenancy.sign_context_mac(%L, null, ''service'', null)', :'tenant_b'), '42501', null,
    'the application cannot sign a context'
);
select throws_ok(
    'select tenancy.configure_context_mac(true, 3600, true)', '42501', null,
    'the application cannot configure or rotate the key'
);

-- clear_context ends the signed context too (its value no longer matches the signature).
select tenancy.clear_context();
select is(tenancy.context_tenant_id_mac(null), null::uuid, 'after clear_context the signed context admits nothing');
reset role;

-- Rotation refuses what was signed before.
set local role tenancy_admin;
select is(tenancy.configure_context_mac(true, 30, true), 'on (new key)', 'tenancy_admin rotates the key');
reset role;
select set_config('tenancy.context', :'context_a', true);
select set_config('tenancy.context_mac', :'mac_a', true);
select is(tenancy.context_tenant_id_mac(null), null::uuid, 'a context signed under the old key is refused');

select * from finish();
rollback;
