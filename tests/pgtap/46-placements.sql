-- Placements and the write fence: who may call what, every refusal its comment promises, data residency both ways, the epoch, fences, the context's fence value, the transactions a fence waits for, release of a moved tenant's rows and the move's checksums.
-- Tenants: A (regions and placements), F (fenced), B (never fenced, the bystander), R (released
-- after a fence). Everything runs as the real roles; the superuser reads rows behind the policies
-- and compares values captured with \gset (the application roles have no TEMP privilege in a
-- seeded database). One transaction, rolled back.

begin;
select plan(199);

\ir setup/helpers.psql

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as owner_f,
    'auth0|' || gen_random_uuid() as owner_b,
    'auth0|' || gen_random_uuid() as owner_r,
    'pl-a-' || left(md5(random()::text), 8) as slug_a,
    'pl-f-' || left(md5(random()::text), 8) as slug_f,
    'pl-b-' || left(md5(random()::text), 8) as slug_b,
    'pl-r-' || left(md5(random()::text), 8) as slug_r,
    'pl-d-' || left(md5(random()::text), 8) as slug_d,
    (600000000 + floor(random() * 100000000))::bigint::text as key_f,
    (500000000 + floor(random() * 100000000))::bigint::text as key_r,
    (400000000 + floor(random() * 100000000))::bigint::text as key_b,
    gen_random_uuid() as unknown_tenant
\gset

set local role tenancy_admin;
select tenancy.configure_regions(
    array(
        select r.region::text from tenancy.regions as r
        union
        select unnest(array['eu', 'us'])
    )
) \gset
select tenancy.configure_domains(array['placement.test']) \gset
select tenancy.create_tenant(:'slug_a', 'Placed A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant(:'slug_f', 'Fenced F', :'owner_f', p_key => :'key_f') as tenant_f \gset
select tenancy.create_tenant(:'slug_b', 'Bystander B', :'owner_b', p_key => :'key_b') as tenant_b \gset
select tenancy.create_tenant(:'slug_r', 'Released R', :'owner_r', p_key => :'key_r') as tenant_r \gset
select tenancy.create_tenant(:'slug_d', 'Deleted D', null) as tenant_d \gset
reset role;
-- A deleted tenant (what offboarding leaves), made so by the superuser.
update tenancy.tenants set status = 'deleted'
where id = :'tenant_d';

-- seed(tenant, n): rows of the tenant in app tables and pgtenancy's own, as applications write them.
create function pg_temp.seed(p_tenant uuid, p_n integer)
returns void
language plpgsql
as $$
begin
    perform pg_temp.act_as(p_tenant);
    perform tenancy.add_member('auth0|member-' || p_tenant, 'member');
    perform tenancy.create_api_key('key', 'member');
    perform tenancy.invite('someone@example.com', 'member');
    perform tenancy.add_custom_domain('shop-' || left(p_tenant::text, 8) || '.example.com');
    perform tenancy.set_branding('{"display_name": "Placement test"}');
    perform tenancy.configure_webhook('hook', 'https://hooks.example.com/' || p_tenant);
    perform tenancy.log_connector_event('crm', 'synced', '{}');
    perform tenancy.track_event('signed_up', 'user-1');
    perform tenancy.create_meter('api_calls');
    perform tenancy.create_tier('pro', 10, '{"api_calls": 1000}');
    perform tenancy.subscribe('customer-1', 'pro');
    perform tenancy.track_usage('api_calls', 'customer-1', 5);
    perform tenancy.log_audit('note.added', 'note', '1', null, '{"text": "hello"}');
    insert into app.projects (name) select 'project ' || g from generate_series(1, p_n) as g;
    insert into app.documents (project_id, title) select p.id, 'document' from app.projects as p;
    insert into app.customers (email) select 'c' || g || '@example.com' from generate_series(1, p_n) as g;
    insert into app.ledger (amount) select g from generate_series(1, p_n) as g;
    perform tenancy.clear_context();
    reset role;
end
$$;

select pg_temp.seed(:'tenant_f', 3);
select pg_temp.seed(:'tenant_b', 2);
select pg_temp.seed(:'tenant_r', 6);

-- Who may call what -------------------------------------------------------------------------------

select
    function_privs_are(
        'tenancy', f.name, f.args, r.role,
        case when r.role = any(f.allowed) then array['EXECUTE'] else array[]::text[] end,
        format('%s %s execute tenancy.%s', r.role, case when r.role = any(f.allowed) then 'may' else 'may not' end, f.name)
    )
from (
    values
    ('configure_placement', array['text', 'text', 'text', 'text', 'boolean'], array['tenancy_admin']),
    ('set_tenant_placement', array['uuid', 'text'], array['tenancy_admin']),
    ('tenant_placement', array['uuid'], array['tenancy_admin', 'tenancy_service']),
    ('fence_tenant', array['uuid', 'text'], array['tenancy_admin']),
    ('fence_transactions', array[]::text[], array['tenancy_admin']),
    ('fence_pending', array['text[]'], array['tenancy_admin']),
    ('unfence_tenant', array['uuid'], array['tenancy_admin']),
    ('release_moved_tenant', array['uuid', 'integer', 'boolean'], array['tenancy_admin']),
    ('log_move', array['uuid', 'text', 'jsonb'], array['tenancy_admin']),
    (
        'raise_fenced', array['text', 'text', 'text'],
        array['tenancy_admin', 'tenancy_app', 'tenancy_auditor', 'tenancy_service']
    ),
    ('require_placement_region', array['uuid', 'text', 'text'], array[]::text[]),
    ('move_tables', array['uuid'], array[]::text[]),
    ('move_checksums', array['uuid'], array[]::text[])
) as f (name, args, allowed)
cross join (values ('tenancy_app'), ('tenancy_service'), ('tenancy_admin'), ('tenancy_auditor')) as r (role)
order by f.name, r.role;

-- ... and calling without the grant: 42501.
set local role tenancy_service;
select throws_ok(
    format('select tenancy.fence_tenant(%L, %L)', :'tenant_b', 'by a service'),
    '42501', 'permission denied for function fence_tenant', 'tenancy_service cannot fence a tenant'
);
select throws_ok(
    format('select tenancy.release_moved_tenant(%L)', :'tenant_b'),
    '42501', 'permission denied for function release_moved_tenant', 'tenancy_service cannot release a tenant''s rows'
);
select throws_ok(
    format('select tenancy.move_checksums(%L)', :'tenant_b'),
    '42501', 'permission denied for function move_checksums', 'tenancy_service cannot compute a move''s checksums'
);
set local role tenancy_app;
select throws_ok(
    format('select * from tenancy.tenant_placement(%L)', :'tenant_b'),
    '42501', 'permission denied for function tenant_placement', 'tenancy_app cannot read the placement directory'
);
select throws_ok(
    format('select tenancy.unfence_tenant(%L)', :'tenant_b'),
    '42501', 'permission denied for function unfence_tenant', 'tenancy_app cannot unfence a tenant'
);
select throws_ok(
    format('select tenancy.set_tenant_placement(%L, %L)', :'tenant_b', 'home'),
    '42501', 'permission denied for function set_tenant_placement', 'tenancy_app cannot place a tenant'
);
set local role tenancy_auditor;
select throws_ok(
    $$select tenancy.configure_placement('rogue', 'rogue')$$,
    '42501', 'permission denied for function configure_placement', 'tenancy_auditor cannot configure a placement'
);
select throws_ok(
    format('select tenancy.log_move(%L, %L, %L)', :'tenant_b', 'tenant.moved', '{}'),
    '42501', 'permission denied for function log_move', 'tenancy_auditor cannot write a move report'
);

-- The tables: the placements are read by the platform roles, never by the application.
select
    table_privs_are(
        'tenancy', t.name, r.role,
        case when r.role = any(t.readers) then array['SELECT'] else array[]::text[] end,
        format('%s %s read tenancy.%s', r.role, case when r.role = any(t.readers) then 'may' else 'may not' end, t.name)
    )
from (
    values
    ('placements', array['tenancy_admin', 'tenancy_auditor', 'tenancy_service']),
    ('tenant_moves', array['tenancy_admin', 'tenancy_auditor']),
    ('move_markers', array[]::text[])
) as t (name, readers)
cross join (values ('tenancy_app'), ('tenancy_service'), ('tenancy_admin'), ('tenancy_auditor')) as r (role)
order by t.name, r.role;
set local role tenancy_app;
select throws_ok(
    'select count(*) from tenancy.placements', '42501', 'permission denied for table placements',
    'tenancy_app cannot read tenancy.placements'
);
select throws_ok(
    'select count(*) from tenancy.tenant_moves', '42501', 'permission denied for table tenant_moves',
    'tenancy_app cannot read tenancy.tenant_moves'
);
set local role tenancy_admin;
select throws_ok(
    $$update tenancy.placements set region = null$$, '42501', 'permission denied for table placements',
    'tenancy_admin cannot write tenancy.placements directly'
);
select throws_ok(
    'select count(*) from tenancy.move_markers', '42501', 'permission denied for table move_markers',
    'tenancy_admin cannot read tenancy.move_markers'
);
select throws_ok(
    $$select setval('tenancy.context_fence', 0, true)$$, '42501', 'permission denied for sequence context_fence',
    'tenancy_admin cannot set the context''s fence flag'
);
set local role tenancy_service;
select lives_ok('select count(*) from tenancy.placements', 'tenancy_service reads tenancy.placements');
reset role;

-- configure_placement -----------------------------------------------------------------------------

set local role tenancy_admin;
select throws_ok(
    $$select tenancy.configure_placement('Bad_Name', 'x')$$,
    '22023', 'invalid placement name ''Bad_Name''', 'a placement name with capitals and _ is 22023 naming it'
);
select throws_ok(
    $$select tenancy.configure_placement(null, 'x')$$,
    '22023', 'invalid placement name NULL', 'a NULL placement name is 22023'
);
select throws_ok(
    $$select tenancy.configure_placement('dedicated-1', 'postgres://u:secret@db/x')$$,
    '22023', 'invalid placement alias ''postgres://u:secret@db/x''',
    'a connection string as alias is 22023 (an alias names one, never holds one)'
);
select throws_ok(
    $$select tenancy.configure_placement('dedicated-1', 'dedicated-1', null, 'gone')$$,
    '22023', 'invalid placement state ''gone'': active, draining or retired', 'an unknown state is 22023 naming it'
);
select throws_ok(
    $$select tenancy.configure_placement('dedicated-1', 'dedicated-1', 'mars')$$,
    '22023', 'unknown region ''mars''', 'a region that is not configured is 22023 naming it'
);
select throws_ok(
    $$select tenancy.configure_placement('dedicated-1', 'dedicated-1', 'Mars')$$,
    '22023', 'invalid region ''Mars''', 'an invalid region tag is 22023 naming it'
);
select lives_ok(
    $$select tenancy.configure_placement('dedicated-eu', 'pg-eu', 'eu')$$, 'tenancy_admin adds a placement in eu'
);
select lives_ok(
    $$select tenancy.configure_placement('dedicated-us', 'pg-us', 'us', 'draining')$$,
    'tenancy_admin adds a draining placement in us'
);
select lives_ok($$select tenancy.configure_placement('spare', 'spare')$$, 'tenancy_admin adds a placement without region');
reset role;
select is(
    (
        select array_agg(format('%s %s %s %s %s', p.name, p.alias, coalesce(p.region, '-'), p.state, p.here) order by p.name)
        from tenancy.placements as p
        where p.name in ('dedicated-eu', 'dedicated-us', 'spare', 'home')
    ),
    array['dedicated-eu pg-eu eu active f', 'dedicated-us pg-us us draining f', 'home home - active t', 'spare spare - active f'],
    'the placements are stored as configured, home is this database'
);

-- p_here moves "this database" (one at most), and new tenants are placed there.
set local role tenancy_admin;
select tenancy.configure_placement('spare', 'spare', p_here => true) \gset
select tenancy.create_tenant('pl-here-' || left(md5(random()::text), 8), 'Here', null) as tenant_here \gset
reset role;
select is(
    (
        select array_agg(p.name order by p.name) from tenancy.placements as p
        where p.here
    ),
    array['spare'], 'p_here makes the placement this database, and the only one'
);
select is(
    (
        select t.placement from tenancy.tenants as t
        where t.id = :'tenant_here'
    ),
    'spare', 'a new tenant is placed in this database''s placement'
);
set local role tenancy_admin;
select tenancy.configure_placement('home', 'home', p_here => true) \gset
reset role;
select is(
    (
        select array_agg(p.name order by p.name) from tenancy.placements as p
        where p.here
    ),
    array['home'], 'p_here moves back'
);

-- Data residency, both ways -----------------------------------------------------------------------

set local role tenancy_admin;
select tenancy.set_tenant_region(:'tenant_a', 'eu') \gset
select throws_ok(
    format('select tenancy.set_tenant_placement(%L, %L)', :'tenant_a', 'dedicated-us'),
    'TN022',
    format(
        'tenant %s is in region eu but placement dedicated-us is in region us: its rows may not live there',
        :'tenant_a'
    ),
    'a tenant of eu cannot be placed in a placement of us (TN022)'
);
select throws_ok(
    format('select tenancy.set_tenant_placement(%L, %L)', :'tenant_a', 'nowhere'),
    'P0002', 'placement ''nowhere'' does not exist', 'an unknown placement is P0002 naming it'
);
select throws_ok(
    format('select tenancy.set_tenant_placement(%L, %L)', :'unknown_tenant', 'dedicated-eu'),
    'P0002', format('tenant %s does not exist', :'unknown_tenant'), 'placing an unknown tenant is P0002 naming it'
);
select throws_ok(
    format('select tenancy.set_tenant_placement(%L, %L)', :'tenant_d', 'dedicated-eu'),
    '55000', format('tenant %s is deleted: nothing more is stored for it', :'tenant_d'),
    'placing a deleted tenant is 55000 naming it'
);
select is(
    tenancy.set_tenant_placement(:'tenant_a', 'dedicated-eu'), 1::bigint,
    'a tenant of eu is placed in a placement of eu: epoch 1'
);
select is(
    tenancy.set_tenant_placement(:'tenant_a', 'dedicated-eu'), 1::bigint,
    'placing it where it is already bumps nothing'
);
select is(
    tenancy.set_tenant_placement(:'tenant_a', 'spare'), 2::bigint,
    'a placement without region takes any tenant: epoch 2'
);
select is(
    tenancy.set_tenant_placement(:'tenant_a', 'dedicated-eu'), 3::bigint,
    'every change bumps the epoch'
);
select throws_ok(
    format('select tenancy.set_tenant_region(%L, %L)', :'tenant_a', 'us'),
    'TN022',
    format(
        'tenant %s is in region us but placement dedicated-eu is in region eu: its rows may not live there',
        :'tenant_a'
    ),
    'a placed tenant''s region cannot change to another than its placement''s (TN022)'
);
select throws_ok(
    format('select tenancy.configure_placement(%L, %L, %L)', 'dedicated-eu', 'pg-eu', 'us'),
    'TN022',
    format('placement dedicated-eu cannot be in region us: tenant %s placed there is in region eu', :'tenant_a'),
    'a placement''s region cannot contradict a tenant placed there (TN022)'
);
select lives_ok(
    $$select tenancy.configure_placement('dedicated-eu', 'pg-eu-2', 'eu')$$,
    'the placement''s alias changes while its region stays'
);
select lives_ok(
    format('select tenancy.set_tenant_region(%L, null)', :'tenant_a'),
    'a placed tenant may drop its region'
);
select lives_ok(
    format('select tenancy.configure_placement(%L, %L, %L)', 'dedicated-eu', 'pg-eu-2', 'us'),
    'with no tenant of another region there, the placement may change region'
);
select lives_ok(
    format('select tenancy.set_tenant_region(%L, %L)', :'tenant_a', 'us'),
    'the tenant may then take the placement''s region'
);
select tenancy.set_tenant_region(:'tenant_a', null) \gset
select tenancy.configure_placement('dedicated-eu', 'pg-eu-2', 'eu') \gset
select tenancy.set_tenant_region(:'tenant_a', 'eu') \gset
reset role;

-- tenant_placement: the directory for routers -----------------------------------------------------

set local role tenancy_service;
select format('%s', p) as placement_a from tenancy.tenant_placement(:'tenant_a') as p \gset
select count(*) as unknown_rows from tenancy.tenant_placement(:'unknown_tenant') \gset
set local role tenancy_admin;
select format('%s', p) as placement_b from tenancy.tenant_placement(:'tenant_b') as p \gset
reset role;
select is(
    :'placement_a', format('(%s,dedicated-eu,pg-eu-2,eu,active,3,f,active)', :'tenant_a'),
    'tenant_placement gives the tenant''s placement, alias, region, state, epoch, fence and status'
);
select is(
    :'placement_b', format('(%s,home,home,,active,0,f,active)', :'tenant_b'),
    'an unmoved tenant is in this database''s placement, epoch 0'
);
select is(:'unknown_rows'::integer, 0, 'an unknown tenant has no row');

-- fence_tenant and unfence_tenant -----------------------------------------------------------------

set local role tenancy_admin;
select throws_ok(
    format('select tenancy.fence_tenant(%L, %L)', :'tenant_f', '  '),
    '22023', 'invalid fence reason ''  '': 1 to 500 characters required', 'a blank fence reason is 22023 naming it'
);
select throws_ok(
    format('select tenancy.fence_tenant(%L, %L)', :'tenant_f', repeat('r', 501)),
    '22023', format('invalid fence reason %L: 1 to 500 characters required', repeat('r', 100)),
    'a fence reason of 501 characters is 22023'
);
select throws_ok(
    format('select tenancy.fence_tenant(%L, %L)', :'unknown_tenant', 'move'),
    'P0002', format('tenant %s does not exist', :'unknown_tenant'), 'fencing an unknown tenant is P0002 naming it'
);
select throws_ok(
    format('select tenancy.fence_tenant(%L, %L)', :'tenant_d', 'move'),
    '55000', format('tenant %s is deleted: nothing more is stored for it', :'tenant_d'),
    'fencing a deleted tenant is 55000 naming it'
);
select throws_ok(
    format('select tenancy.unfence_tenant(%L)', :'unknown_tenant'),
    'P0002', format('tenant %s does not exist', :'unknown_tenant'), 'unfencing an unknown tenant is P0002 naming it'
);
select throws_ok(
    format('select tenancy.unfence_tenant(%L)', :'tenant_d'),
    '55000', format('tenant %s is deleted: nothing more is stored for it', :'tenant_d'),
    'unfencing a deleted tenant is 55000 naming it'
);
select is(tenancy.unfence_tenant(:'tenant_f'), false, 'unfencing a tenant that is not fenced lifts nothing');
select tenancy.fence_tenant(:'tenant_f', 'move to dedicated-eu') as fenced_at \gset
select is(
    tenancy.fence_tenant(:'tenant_f', 'another reason'), :'fenced_at'::timestamptz,
    'fencing a fenced tenant returns the time of its fence'
);
select format('%s', p) as placement_f from tenancy.tenant_placement(:'tenant_f') as p \gset
reset role;
select is(
    (
        select format('%s|%s', t.fenced_at = :'fenced_at'::timestamptz, t.fence_reason) from tenancy.tenants as t
        where t.id = :'tenant_f'
    ),
    't|move to dedicated-eu', 'the fence keeps its first time and reason'
);
select is(
    :'placement_f', format('(%s,home,home,,active,0,t,active)', :'tenant_f'),
    'tenant_placement shows the fence'
);
select
    (
        select count(*) from app.projects
        where tenant_id = :'tenant_f'
    ) as f_projects,
    (
        select count(*) from tenancy.memberships
        where tenant_id = :'tenant_f'
    ) as f_members
\gset

-- A fenced tenant's context reads and writes nothing ---------------------------------------------

select pg_temp.act_as(:'tenant_f');
select is(
    (select count(*) from app.projects), :'f_projects'::bigint, 'a fenced tenant''s context reads its rows'
);
select is(
    (select count(*) from tenancy.memberships), :'f_members'::bigint, 'and its members'
);
select throws_ok(
    $$insert into app.projects (name) values ('late')$$,
    'TN021',
    format('tenant %s is fenced on this placement (move to dedicated-eu): INSERT on app.projects is refused', :'tenant_f'),
    'an INSERT in a fenced tenant''s context is TN021, naming the tenant, the fence and the table'
);
select throws_ok(
    $$update app.projects set name = name || '!'$$,
    'TN021',
    format('tenant %s is fenced on this placement (move to dedicated-eu): UPDATE on app.projects is refused', :'tenant_f'),
    'an UPDATE is TN021'
);
select throws_ok(
    $$delete from app.documents$$,
    'TN021',
    format('tenant %s is fenced on this placement (move to dedicated-eu): DELETE on app.documents is refused', :'tenant_f'),
    'a DELETE is TN021'
);
select throws_ok(
    $$insert into app.ledger (amount) values (1)$$,
    'TN021',
    format('tenant %s is fenced on this placement (move to dedicated-eu): INSERT on app.ledger is refused', :'tenant_f'),
    'a write to a table keyed by the tenant key is TN021'
);
-- pgtenancy's own tenant tables, written through its functions.
select throws_ok(
    $$select tenancy.track_usage('api_calls', 'customer-1', 1)$$, 'TN021', null,
    'usage tracking in a fenced tenant''s context is TN021'
);
select throws_ok(
    $$select tenancy.track_event('clicked', 'user-1')$$, 'TN021', null,
    'analytics events are TN021'
);
select throws_ok(
    $$select tenancy.log_connector_event('crm', 'synced', '{}')$$, 'TN021', null,
    'outbox enqueue (a connector event) is TN021'
);
select throws_ok(
    $$select tenancy.add_member('auth0|late-member', 'member')$$, 'TN021', null,
    'adding a member is TN021'
);
select throws_ok(
    format('select tenancy.set_member_role(%L, %L)', 'auth0|member-' || :'tenant_f', 'admin'), 'TN021', null,
    'changing a member''s role is TN021'
);
select throws_ok(
    format('select tenancy.remove_member(%L)', 'auth0|member-' || :'tenant_f'), 'TN021', null,
    'removing a member is TN021'
);
select throws_ok(
    $$select tenancy.invite('late@example.com', 'member')$$, 'TN021', null, 'an invitation is TN021'
);
select throws_ok(
    $$select tenancy.set_branding('{"display_name": "Late"}')$$, 'TN021', null, 'a settings change is TN021'
);
select tenancy.clear_context() \gset
reset role;

-- The superuser (it bypasses row level security) is held too while it writes in the context.
set local role tenancy_service;
select tenancy.set_context(:'tenant_f') \gset
reset role;
select throws_ok(
    format('insert into app.projects (tenant_id, name) values (%L, %L)', :'tenant_f', 'by the DBA'),
    'TN021', null, 'a superuser writing in a fenced tenant''s context is TN021'
);
select tenancy.clear_context() \gset
select lives_ok(
    format('update app.projects set name = name where tenant_id = %L', :'tenant_f'),
    'the superuser without a context (the DBA at work) still writes'
);

-- Other tenants are unaffected.
select pg_temp.act_as(:'tenant_b');
select lives_ok($$insert into app.projects (name) values ('while F is fenced')$$, 'another tenant writes while F is fenced');
select lives_ok($$select tenancy.add_member('auth0|b-late-member', 'member')$$, 'and manages its members');
select lives_ok($$select tenancy.track_usage('api_calls', 'customer-1', 1)$$, 'and tracks usage');
select tenancy.clear_context() \gset
reset role;

-- The context's fence value: bound to the context key ------------------------------------------

-- establish_context stores the key in tenancy.context_fence when the context may write and its
-- complement when the tenant is fenced; the write trigger wants the two equal.
select pg_temp.act_as(:'tenant_f');
select
    currval('tenancy.context_key') as f_key,
    currval('tenancy.context_fence') as f_fence
\gset
select tenancy.clear_context() \gset
select pg_temp.act_as(:'tenant_b');
select
    currval('tenancy.context_key') as b_key,
    currval('tenancy.context_fence') as b_fence
\gset
reset role;
select is(:'f_fence'::bigint, ~:'f_key'::bigint, 'a fenced tenant''s context stores the complement of its key');
select is(:'b_fence'::bigint, :'b_key'::bigint, 'an unfenced tenant''s context stores its key');
-- A pair of values from two different contexts (what an establish_context cancelled between its
-- setvals leaves): A's key over B's fence value, with A's context value, A never fenced. Only the
-- superuser may set the key by hand; the application then writes in it.
select setval('tenancy.context_key', tenancy.context_key_of(:'tenant_a', 'service'), true) \gset
select set_config('tenancy.context', tenancy.context_value(:'tenant_a', 'service', null, null), true) \gset
set local role tenancy_app;
select is(tenancy.current_tenant_id(), :'tenant_a'::uuid, 'A''s key with A''s value: a context of A');
select throws_ok(
    $$insert into app.projects (name) values ('mixed pair')$$, 'TN021', null,
    'with the fence value of another context (B''s), A''s context writes nothing though A is not fenced'
);
reset role;
select setval('tenancy.context_fence', ~currval('tenancy.context_key'), true) \gset
set local role tenancy_app;
select throws_ok(
    $$insert into app.projects (name) values ('complement')$$, 'TN021', null,
    'with the complement of its key (fenced), A''s context writes nothing'
);
select tenancy.clear_context() \gset
reset role;
select pg_temp.act_as(:'tenant_a');
select lives_ok(
    $$insert into app.projects (name) values ('A set its context itself')$$,
    'A''s context set by establish_context writes'
);
select tenancy.clear_context() \gset
reset role;

-- fence_transactions and fence_pending: what a fence waits for ------------------------------------

select function_returns(
    'tenancy', 'fence_transactions', array[]::name[], 'text[]', 'fence_transactions returns text[]'
);
select is(
    pg_get_function_result('tenancy.fence_pending(text[])'::regprocedure),
    'TABLE(pid integer, xact_start timestamp with time zone, application_name text)',
    'fence_pending returns the pid, start and application name of each watched transaction still running'
);
set local role tenancy_service;
select throws_ok(
    'select tenancy.fence_transactions()', '42501', 'permission denied for function fence_transactions',
    'tenancy_service cannot list the transactions a fence waits for'
);
set local role tenancy_app;
select throws_ok(
    $$select * from tenancy.fence_pending('{}')$$, '42501', 'permission denied for function fence_pending',
    'tenancy_app cannot watch transactions'
);
reset role;
select l.virtualxid as own_vxid
from pg_locks as l
where l.locktype = 'virtualxid' and l.pid = pg_backend_pid() and l.mode = 'ExclusiveLock'
\gset
set local role tenancy_admin;
select tenancy.fence_transactions() as watched \gset
select
    (select count(*) from tenancy.fence_pending(array['999999/999999', '0/0', 'not a vxid'])) as unknown_pending,
    (select count(*) from tenancy.fence_pending('{}')) as none_pending,
    (select count(*) from tenancy.fence_pending(null)) as null_pending,
    (
        select format('%s|%s', p.pid = pg_backend_pid(), p.application_name = current_setting('application_name'))
        from tenancy.fence_pending(array[:'own_vxid']) as p
    ) as own_pending_admin
\gset
reset role;
select isnt(:'watched'::text[], null, 'fence_transactions returns an array, never NULL');
select ok(
    not (:'own_vxid' = any(:'watched'::text[])),
    'fence_transactions leaves out the caller''s own transaction (it sets no context before the fence)'
);
select is(
    (
        select count(*) from unnest(:'watched'::text[]) as v
        where v !~ '^[0-9]+/[0-9]+$'
    ), 0::bigint,
    'fence_transactions lists virtual transaction ids'
);
select is(:'unknown_pending'::integer, 0, 'fence_pending: no row for transactions that do not run');
select is(:'none_pending'::integer, 0, 'fence_pending: none watched, none pending');
select is(:'null_pending'::integer, 0, 'fence_pending: NULL watches nothing');
select is(
    :'own_pending_admin'::text, 't|t',
    'fence_pending lists a watched transaction that still runs (this one) with its pid and application name'
);
-- The start of a transaction is shown to those who may read its statistics (the move runs as a
-- superuser).
select is(
    (
        select format('%s|%s', p.pid = pg_backend_pid(), p.xact_start = now())
        from tenancy.fence_pending(array[:'own_vxid']) as p
    ),
    't|t',
    'fence_pending gives the superuser the start of a watched transaction'
);

-- Unfenced, the tenant writes again (from its next context on).
set local role tenancy_admin;
select is(tenancy.unfence_tenant(:'tenant_f'), true, 'unfencing a fenced tenant lifts the fence');
select is(tenancy.unfence_tenant(:'tenant_f'), false, 'unfencing it again lifts nothing');
reset role;
select is(
    (
        select format('%s|%s', (t.fenced_at is null)::text, (t.fence_reason is null)::text) from tenancy.tenants as t
        where t.id = :'tenant_f'
    ),
    'true|true', 'no fence is left'
);
select pg_temp.act_as(:'tenant_f');
select lives_ok($$insert into app.projects (name) values ('after the fence')$$, 'the unfenced tenant writes');
select lives_ok($$select tenancy.add_member('auth0|after-fence', 'member')$$, 'and manages its members');
select tenancy.clear_context() \gset
reset role;

-- release_moved_tenant: the rows a move left behind go, in batches ------------------------------

-- rows_left(id): the tenant's rows in every tenant table (tenancy.offboarding_tables), as the
-- superuser reads them.
create temporary table ob_tables as select * from tenancy.offboarding_tables();
create function pg_temp.rows_left(p_tenant uuid)
returns bigint
language plpgsql
as $$
declare
    v record;
    v_n bigint;
    v_total bigint := 0;
begin
    for v in select o.table_name, o.predicate, o.value_kind from ob_tables as o loop
        execute format('select count(*) from %s as t where %s', v.table_name, v.predicate)
        into v_n
        using tenancy.offboarding_value(
            p_tenant, (select t.key from tenancy.tenants as t where t.id = p_tenant), v.value_kind
        );
        v_total := v_total + coalesce(v_n, 0);
    end loop;
    return v_total;
end
$$;

-- release_all(id, batch): calls release_moved_tenant until it returns 0; what each call returned.
create function pg_temp.release_all(p_tenant uuid, p_batch integer)
returns bigint[]
language plpgsql
as $$
declare
    v_steps bigint[] := '{}';
    v_n bigint;
begin
    loop
        v_n := tenancy.release_moved_tenant(p_tenant, p_batch);
        v_steps := v_steps || v_n;
        exit when v_n = 0 or cardinality(v_steps) > 100;
    end loop;
    return v_steps;
end
$$;

select
    pg_temp.rows_left(:'tenant_r') as r_rows,
    pg_temp.rows_left(:'tenant_b') as b_rows,
    (
        select count(*) from tenancy.audit_logs
        where tenant_id = :'tenant_r'
    ) as r_audit,
    (
        select max(id) from tenancy.audit_logs
        where tenant_id = :'tenant_r'
    ) as r_audit_max,
    (
        select count(*) from tenancy.domain_claims
        where tenant_id = :'tenant_r'
    ) as r_claims
\gset
select cmp_ok(:'r_rows'::bigint, '>', 30::bigint, 'R has rows in app tables and pgtenancy''s own');

set local role tenancy_admin;
select throws_ok(
    format('select tenancy.release_moved_tenant(%L)', :'tenant_r'),
    '55000', format('tenant %s is not fenced here: its rows are not released', :'tenant_r'),
    'the rows of a tenant that is not fenced are never released (55000)'
);
select throws_ok(
    format('select tenancy.release_moved_tenant(%L)', :'unknown_tenant'),
    'P0002', format('tenant %s does not exist', :'unknown_tenant'), 'releasing an unknown tenant is P0002 naming it'
);
select throws_ok(
    format('select tenancy.release_moved_tenant(%L, 0)', :'tenant_r'),
    '22023', 'invalid batch size 0: from 1 to 1000000 rows', 'a batch of 0 rows is 22023'
);
select throws_ok(
    format('select tenancy.release_moved_tenant(%L, 1000001)', :'tenant_r'),
    '22023', 'invalid batch size 1000001: from 1 to 1000000 rows', 'a batch of 1000001 rows is 22023'
);
reset role;
select is(pg_temp.rows_left(:'tenant_r'), :'r_rows'::bigint, 'the refused release deleted nothing');

set local role tenancy_admin;
select tenancy.fence_tenant(:'tenant_r', 'move to dedicated-eu (flipped)') \gset
select pg_temp.release_all(:'tenant_r', 4) as steps \gset
reset role;
select cmp_ok(
    cardinality(:'steps'::bigint[]), '>', 3, 'the release takes several calls'
);
select is(
    (select sum(s)::bigint from unnest(:'steps'::bigint[]) as s), :'r_rows'::bigint,
    'together they deleted every row of the tenant'
);
select is(
    (:'steps'::bigint[])[cardinality(:'steps'::bigint[])], 0::bigint, 'the last call deletes nothing: done'
);
select ok(
    (:'steps'::bigint[])[1] < :'r_rows'::bigint, 'the first call deleted only a batch'
);
select is(pg_temp.rows_left(:'tenant_r'), 0::bigint, 'no row of the tenant is left in any tenant table');
select is(
    (
        select array[
            (
                select count(*) from tenancy.api_key_secrets
                where tenant_id = :'tenant_r'
            ),
            (
                select count(*) from tenancy.invitation_tokens
                where tenant_id = :'tenant_r'
            ),
            (
                select count(*) from tenancy.move_markers
                where tenant_id = :'tenant_r'
            )
        ]
    ),
    array[0, 0, 0]::bigint[],
    'its API key and invitation token hashes and move markers went in the last step'
);
select is(
    (
        select count(*) from tenancy.domain_claims
        where tenant_id = :'tenant_r'
    ), :'r_claims'::bigint,
    'its hostnames are kept (p_keep_claims)'
);
select ok(:'r_claims'::bigint > 0, 'it had hostnames to keep');
select is(
    (
        select count(*) from tenancy.audit_logs
        where tenant_id = :'tenant_r' and id <= :'r_audit_max'::bigint
    ),
    :'r_audit'::bigint, 'its audit trail is kept'
);
select is(pg_temp.rows_left(:'tenant_b'), :'b_rows'::bigint, 'another tenant keeps every row');
select is(
    (
        select format('%s|%s', t.status, t.fenced_at is not null) from tenancy.tenants as t
        where t.id = :'tenant_r'
    ),
    'active|t', 'the released tenant stays fenced here'
);
set local role tenancy_admin;
select is(tenancy.release_moved_tenant(:'tenant_r', 10, false), 0::bigint, 'releasing without keeping hostnames');
reset role;
select is(
    (
        select count(*) from tenancy.domain_claims
        where tenant_id = :'tenant_r'
    ), 0::bigint,
    'drops its hostnames (p_keep_claims false)'
);
-- The release's own context wrote past the fence; no context after it does.
select pg_temp.act_as(:'tenant_r');
select throws_ok(
    $$insert into app.projects (name) values ('after the release')$$, 'TN021', null,
    'after a release the tenant''s contexts are still fenced'
);
select tenancy.clear_context() \gset
reset role;

-- log_move: the move's report in the audit trail -------------------------------------------------

set local role tenancy_admin;
select throws_ok(
    format('select tenancy.log_move(%L, %L, %L)', :'tenant_r', 'tenant.deleted', '{}'),
    '22023', 'invalid move action ''tenant.deleted''', 'another action is 22023 naming it'
);
select throws_ok(
    format('select tenancy.log_move(%L, %L, %L)', :'tenant_r', 'tenant.moved', '[1]'),
    '22023', 'a move report is a JSON object', 'a report that is not an object is 22023'
);
select throws_ok(
    format('select tenancy.log_move(%L, %L, %L)', :'unknown_tenant', 'tenant.moved', '{}'),
    'P0002', format('tenant %s does not exist', :'unknown_tenant'), 'an unknown tenant is P0002 naming it'
);
select tenancy.log_move(:'tenant_r', 'tenant.move_released', '{"rows": 42, "to": "dedicated-eu"}') as audit_id \gset
reset role;
select is(
    (
        select format('%s|%s|%s|%s', a.tenant_id, a.action, a.entity_type, a.new_data)
        from tenancy.audit_logs as a
        where a.id = :'audit_id'
    ),
    format('%s|tenant.move_released|tenant|{"to": "dedicated-eu", "rows": 42}', :'tenant_r'),
    'a fenced tenant''s move report is written to its audit trail'
);

-- move_tables and move_checksums ------------------------------------------------------------------

select is(
    (
        select format('%s|%s', m.replicated, m.filter) from tenancy.move_tables(:'tenant_r') as m
        where m.table_name = 'app.ledger'
    ),
    format('t|account_key = %L::pg_catalog.int8', :'key_r'),
    'move_tables: a table keyed by the tenant key is filtered on the key'
);
select is(
    (
        select format('%s|%s', m.replicated, m.filter) from tenancy.move_tables(:'tenant_r') as m
        where m.table_name = 'app.projects'
    ),
    format('t|tenant_id = %L::pg_catalog.uuid', :'tenant_r'),
    'move_tables: a table with the tenant id is filtered on it'
);
select is(
    (
        select format('%s|%s', m.replicated, coalesce(m.filter, '-')) from tenancy.move_tables(:'tenant_r') as m
        where m.table_name = 'tenancy.connector_secrets'
    ),
    'f|-', 'move_tables: connector secrets are copied, not replicated'
);
select is(
    (select count(*) from tenancy.move_tables(:'unknown_tenant')), 0::bigint, 'move_tables: none for an unknown tenant'
);

-- checksum(table, tenant): the (row count, checksum, method) of one table, as the superuser.
create function pg_temp.checksum(p_table text, p_tenant uuid)
returns text
language sql
as $$
    select format('%s|%s|%s', c.row_count, c.checksum, c.method)
    from tenancy.move_checksums(p_tenant) as c where c.table_name = p_table
$$;

select pg_temp.checksum('app.ledger', :'tenant_b') as ledger_b \gset
select is(
    split_part(:'ledger_b', '|', 1)::bigint,
    (
        select count(*) from app.ledger
        where account_key = :'key_b'::bigint
    ),
    'move_checksums counts the tenant''s rows'
);
select is(split_part(:'ledger_b', '|', 3), 'hash', 'with the types'' extended hash');
select is(pg_temp.checksum('app.ledger', :'tenant_b'), :'ledger_b', 'the same rows give the same checksum');
-- Equal rows in another order (deleted and written again, newest first): the same checksum.
create temporary table ledger_b on commit drop as select * from app.ledger
where account_key = :'key_b'::bigint;
delete from app.ledger
where account_key = :'key_b'::bigint;
select isnt(
    pg_temp.checksum('app.ledger', :'tenant_b'), :'ledger_b', 'without its rows the checksum differs'
);
insert into app.ledger overriding system value select * from ledger_b
order by id desc;
select is(
    pg_temp.checksum('app.ledger', :'tenant_b'), :'ledger_b', 'equal rows in another order: equal checksum'
);
update app.ledger set memo = 'changed'
where account_key = :'key_b'::bigint and id = (select min(id) from ledger_b);
select is(
    split_part(pg_temp.checksum('app.ledger', :'tenant_b'), '|', 1), split_part(:'ledger_b', '|', 1),
    'a changed row: the same count'
);
select isnt(
    pg_temp.checksum('app.ledger', :'tenant_b'), :'ledger_b', 'but another checksum'
);
update app.ledger set memo = ''
where account_key = :'key_b'::bigint and id = (select min(id) from ledger_b);
select is(
    pg_temp.checksum('app.ledger', :'tenant_b'), :'ledger_b', 'changed back: the checksum is back'
);
-- A tenant table with a column type that has no extended hash (point): MD5 of the row text.
create table app.shapes (tenant_id uuid not null, id integer not null, at point not null, primary key (tenant_id, id));
alter table app.shapes enable row level security, force row level security;
create policy tenant_rows on app.shapes using (tenant_id = (select tenancy.context_tenant_id(null)));
insert into app.shapes values (:'tenant_b', 1, point(1, 2)), (:'tenant_b', 2, point(3, 4)), (:'tenant_f', 1, point(1, 2));
select pg_temp.checksum('app.shapes', :'tenant_b') as shapes_b \gset
select is(
    split_part(:'shapes_b', '|', 1) || '|' || split_part(:'shapes_b', '|', 3), '2|md5',
    'a table with a point column is summed over the MD5 of its rows'' text'
);
update app.shapes set at = point(3, 5)
where tenant_id = :'tenant_b' and id = 2;
select isnt(pg_temp.checksum('app.shapes', :'tenant_b'), :'shapes_b', 'a changed point changes it');
update app.shapes set at = point(3, 4)
where tenant_id = :'tenant_b' and id = 2;
select is(pg_temp.checksum('app.shapes', :'tenant_b'), :'shapes_b', 'and back');

select * from finish();
rollback;
