-- Usage isolation: as tenancy_app in tenant B's context, B reads none of A's usage rows and counts nothing against A's meters, customers, tiers or holds; A's API keys track usage by role.
-- Tenants A and B each have meters, tiers, customers (one external id, shared-cust, in both),
-- subscriptions, events, counters, idempotency keys, distinct values, holds and alerts. Every
-- attack from B is paired with the same operation succeeding for A, and A's counters are checked
-- unchanged afterwards. Runs under the generated row level security of the usage tables
-- (sql/policies/); the superuser only creates the two tenants.

begin;
select plan(58);

\ir setup/helpers.psql

-- visible(table, own tenant): the rows of a usage table the current role reads, of other tenants
-- and of its own.
create function pg_temp.visible(p_table text, p_own uuid)
returns table (others bigint, own bigint)
language plpgsql
as $$
begin
    return query execute format(
        'select count(*) filter (where t.tenant_id <> $1), count(*) filter (where t.tenant_id = $1) from tenancy.%I as t',
        p_table
    ) using p_own;
end
$$;

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as owner_b,
    'ui-a-' || left(md5(random()::text), 8) as slug_a,
    'ui-b-' || left(md5(random()::text), 8) as slug_b
\gset

-- The log's partition of this month, as the daily job makes it.
select tenancy.ensure_usage_partitions(0) >= 0 as partitions_made \gset
set local role tenancy_admin;
select tenancy.create_tenant(:'slug_a', 'Usage isolation A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant(:'slug_b', 'Usage isolation B', :'owner_b') as tenant_b \gset
reset role;

-- Tenant A: a capped customer shared-cust at its cap, with a key, distinct values, alerts and a hold.
select pg_temp.act_as(:'tenant_a', :'owner_a');
select
    tenancy.create_meter('api_calls') as a_api_calls,
    tenancy.create_meter('seats', p_aggregation => 'unique_count', p_property => 'user') as a_seats
\gset
select tenancy.create_tier('pro', 10, '{"api_calls": 5, "seats": 3}', '{sso}') as a_pro \gset
select tenancy.subscribe('shared-cust', 'pro') as a_sub \gset
select
    outcome as a_track_outcome,
    used as a_track_used
from tenancy.track_usage('api_calls', 'shared-cust', 5, p_idempotency_key => 'ka', p_enforce => true) \gset
select outcome as a_seat_outcome from tenancy.track_usage('seats', 'shared-cust', p_properties => '{"user": "u1"}') \gset
select reservation_id as a_hold from tenancy.reserve_usage('a-only', 'api_calls', 2) \gset
select reservation_id as a_hold_2 from tenancy.reserve_usage('a-only', 'api_calls', 1) \gset
select
    id as a_member_key_id,
    key as a_member_key
from tenancy.create_api_key('usage member', 'member') \gset
select
    id as a_admin_key_id,
    key as a_admin_key
from tenancy.create_api_key('usage admin', 'admin') \gset
select
    id as a_viewer_key_id,
    key as a_viewer_key
from tenancy.create_api_key('usage viewer', 'viewer') \gset
reset role;

-- Tenant B: its own api_calls meter (same key as A's), no seats meter, its own shared-cust later.
select pg_temp.act_as(:'tenant_b', :'owner_b');
select
    tenancy.create_meter('api_calls') as b_api_calls,
    tenancy.create_meter('b_seats', p_aggregation => 'unique_count', p_property => 'user') as b_seats
\gset
select tenancy.create_tier('basic', 1, '{"api_calls": 1}') as b_basic \gset
select tenancy.subscribe('b-cust', 'basic') as b_sub \gset
select outcome as b_track_outcome
from tenancy.track_usage('api_calls', 'b-cust', 1, p_idempotency_key => 'kb', p_enforce => true) \gset
select outcome as b_seat_outcome from tenancy.track_usage('b_seats', 'b-cust', p_properties => '{"user": "u1"}') \gset
select reservation_id as b_hold from tenancy.reserve_usage('b-cust2', 'api_calls', 2) \gset
select
    id as b_member_key_id,
    key as b_member_key
from tenancy.create_api_key('b usage member', 'member') \gset
reset role;

select results_eq(
    format(
        $$select %L, %L::numeric, %L, %L, %L, %L::uuid is not null, %L::uuid is not null$$,
        :'a_track_outcome', :'a_track_used', :'a_seat_outcome', :'b_track_outcome', :'b_seat_outcome', :'a_hold', :'b_hold'
    ),
    $$values ('recorded', 5::numeric, 'recorded', 'recorded', 'recorded', true, true)$$,
    'fixtures: A and B each track usage and hold quota'
);

-- B reads none of A's rows, and its own -------------------------------------------------------

select pg_temp.act_as(:'tenant_b', :'owner_b');
select results_eq(
    format($$select others, own > 0 from pg_temp.visible('meters', %L)$$, :'tenant_b'),
    $$values (0::bigint, true)$$,
    'B reads none of A''s meters, and its own'
);
select results_eq(
    format($$select others, own > 0 from pg_temp.visible('tiers', %L)$$, :'tenant_b'),
    $$values (0::bigint, true)$$,
    'B reads none of A''s tiers, and its own'
);
select results_eq(
    format($$select others, own > 0 from pg_temp.visible('customers', %L)$$, :'tenant_b'),
    $$values (0::bigint, true)$$,
    'B reads none of A''s customers, and its own'
);
select results_eq(
    format($$select others, own > 0 from pg_temp.visible('subscriptions', %L)$$, :'tenant_b'),
    $$values (0::bigint, true)$$,
    'B reads none of A''s subscriptions, and its own'
);
select results_eq(
    format($$select others, own > 0 from pg_temp.visible('usage_counters', %L)$$, :'tenant_b'),
    $$values (0::bigint, true)$$,
    'B reads none of A''s counters, and its own'
);
select results_eq(
    format($$select others, own > 0 from pg_temp.visible('usage_events', %L)$$, :'tenant_b'),
    $$values (0::bigint, true)$$,
    'B reads none of A''s events, and its own'
);
select results_eq(
    format($$select others, own > 0 from pg_temp.visible('usage_alerts', %L)$$, :'tenant_b'),
    $$values (0::bigint, true)$$,
    'B reads none of A''s alerts, and its own'
);
select results_eq(
    format($$select others, own > 0 from pg_temp.visible('usage_reservations', %L)$$, :'tenant_b'),
    $$values (0::bigint, true)$$,
    'B reads none of A''s holds, and its own'
);
select results_eq(
    format($$select others, own > 0 from pg_temp.visible('usage_idempotency_keys', %L)$$, :'tenant_b'),
    $$values (0::bigint, true)$$,
    'B reads none of A''s idempotency keys, and its own'
);
select results_eq(
    format($$select others, own > 0 from pg_temp.visible('usage_unique_values', %L)$$, :'tenant_b'),
    $$values (0::bigint, true)$$,
    'B reads none of A''s distinct values, and its own'
);
select is(
    (
        select count(*)::integer from tenancy.meters
        where id in (:'a_api_calls', :'a_seats')
    ),
    0,
    'B does not find A''s meters by id'
);
select throws_ok(
    format('select count(*) from tenancy.usage_events_%s', to_char(now() at time zone 'UTC', 'YYYY_MM')),
    '42501', null,
    'B cannot read a partition of the usage log directly'
);
select throws_ok(
    $$select count(*) from tenancy.usage_events_default$$,
    '42501', null,
    'B cannot read the default partition of the usage log directly'
);
select throws_ok(
    format(
        $$insert into tenancy.usage_counters (tenant_id, customer_id, meter_id, period_start, period_end)
        values (%L, gen_random_uuid(), %L, now(), now() + interval '1 day')$$,
        :'tenant_a', :'a_api_calls'
    ),
    '42501', null,
    'B cannot write a counter of A directly'
);
select throws_ok(
    format($$update tenancy.usage_counters set used = 0 where tenant_id = %L$$, :'tenant_a'),
    '42501', null,
    'B cannot reset A''s counters directly'
);

-- B counts nothing against A ------------------------------------------------------------------

select throws_ok(
    $$select * from tenancy.track_usage('seats', 'shared-cust', p_properties => '{"user": "u2"}')$$,
    'P0002',
    format('meter ''seats'' does not exist in tenant %s', :'tenant_b'),
    'track_usage with A''s meter key: P0002 in B'
);
select results_eq(
    $$select outcome, used, cap from tenancy.track_usage('api_calls', 'shared-cust', 1, p_enforce => true)$$,
    $$values ('recorded', 1::numeric, null::numeric)$$,
    'track_usage with A''s customer id counts for B''s own customer and meter: not refused at A''s cap'
);
select results_eq(
    $$select outcome, used, first_outcome from tenancy.track_usage('api_calls', 'shared-cust', 5, p_idempotency_key => 'ka')$$,
    $$values ('recorded', 6::numeric, null::text)$$,
    'A''s idempotency key is a new key in B'
);
select results_eq(
    $$select allowed, used, cap from tenancy.check_usage_enforcement('shared-cust', 'api_calls', 100)$$,
    $$values (true, 6::numeric, null::numeric)$$,
    'check_usage_enforcement in B reads B''s counter, not A''s cap'
);
select throws_ok(
    $$select * from tenancy.check_usage_enforcement('shared-cust', 'seats')$$,
    'P0002', null,
    'check_usage_enforcement of A''s meter key: P0002 in B'
);
select results_eq(
    $$select meter, used, cap from tenancy.customer_usage('shared-cust')$$,
    $$values ('api_calls', 6::numeric, null::numeric), ('b_seats', 0, null)$$,
    'customer_usage in B lists B''s meters only'
);
select is(tenancy.has_entitlement('shared-cust', 'sso'), false, 'A''s customer''s entitlement is not B''s');
select throws_ok(
    $$select tenancy.subscribe('b-new', 'pro')$$,
    'P0002',
    format('tier ''pro'' does not exist in tenant %s', :'tenant_b'),
    'subscribe to A''s tier: P0002 in B'
);
select throws_ok(
    $$select * from tenancy.update_tier('pro', 0)$$,
    'P0002', null,
    'update_tier of A''s tier: P0002 in B'
);
select throws_ok(
    $$select tenancy.change_tier('a-only', 'basic')$$,
    'P0002',
    format('customer ''a-only'' of tenant %s has no subscription', :'tenant_b'),
    'change_tier of A''s customer: P0002 in B'
);
select throws_ok(
    $$select tenancy.set_subscription_overrides('a-only', '{"api_calls": 1000}')$$,
    'P0002', null,
    'set_subscription_overrides of A''s customer: P0002 in B'
);
select throws_ok(
    $$select tenancy.create_tier('seated', 1, '{"seats": 1}')$$,
    '22023',
    format('tier ''seated'' caps meter ''seats'', which tenant %s does not have', :'tenant_b'),
    'a tier of B cannot cap A''s meter'
);
select throws_ok(
    $$select * from tenancy.reserve_usage('a-only', 'seats', 1)$$,
    'P0002', null,
    'reserve_usage of A''s meter key: P0002 in B'
);
select throws_ok(
    format($$select * from tenancy.commit_reservation(%L)$$, :'a_hold'),
    'P0002',
    format('reservation %s does not exist in tenant %s', :'a_hold', :'tenant_b'),
    'commit_reservation of A''s hold: P0002 in B'
);
select throws_ok(
    format($$select tenancy.release_reservation(%L)$$, :'a_hold'),
    'P0002',
    format('reservation %s does not exist in tenant %s', :'a_hold', :'tenant_b'),
    'release_reservation of A''s hold: P0002 in B'
);
select results_eq(
    $$select event_index, outcome, error_code from tenancy.track_usage_batch(
        '[{"meter": "seats", "customer": "shared-cust", "properties": {"user": "u3"}},
          {"meter": "api_calls", "customer": "a-only", "value": 1, "idempotency_key": "ka"}]'
    )$$,
    $$values (0, 'invalid', 'P0002'), (1, 'recorded', null)$$,
    'track_usage_batch in B: A''s meter key is unknown, A''s customer id and key are B''s own'
);
select results_eq(
    $$select distinct customer from tenancy.usage_summary('-infinity', 'infinity') order by 1$$,
    $$values ('a-only'), ('b-cust'), ('shared-cust')$$,
    'usage_summary in B: B''s customers only (a-only is B''s own now)'
);
select results_eq(
    $$select sum(value) from tenancy.usage_summary('-infinity', 'infinity') where customer = 'shared-cust' and meter = 'api_calls'$$,
    $$values (6::numeric)$$,
    'usage_summary in B sums B''s events of shared-cust, none of A''s'
);
reset role;

-- The same operations succeed for A, whose usage B did not touch --------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select results_eq(
    format($$select others, own from pg_temp.visible('usage_counters', %L)$$, :'tenant_a'),
    $$values (0::bigint, 3::bigint)$$,
    'A reads its own counters (shared-cust''s two, a-only''s hold), none of B''s'
);
select results_eq(
    format($$select others, own from pg_temp.visible('customers', %L)$$, :'tenant_a'),
    $$values (0::bigint, 2::bigint)$$,
    'A reads its own two customers, not B''s namesakes'
);
select results_eq(
    $$select allowed, used, cap, reserved from tenancy.check_usage_enforcement('shared-cust', 'api_calls', 1)$$,
    $$values (false, 5::numeric, 5::numeric, 0::numeric)$$,
    'A''s counter of shared-cust is still 5 of its cap of 5'
);
select results_eq(
    $$select outcome, used from tenancy.track_usage('api_calls', 'shared-cust', 1, p_enforce => true)$$,
    $$values ('refused', 5::numeric)$$,
    'A''s cap still refuses'
);
select results_eq(
    $$select outcome, first_outcome from tenancy.track_usage('api_calls', 'shared-cust', 5, p_idempotency_key => 'ka')$$,
    $$values ('duplicate', 'recorded')$$,
    'A''s key ka is still A''s duplicate'
);
select results_eq(
    $$select outcome, used from tenancy.track_usage('seats', 'shared-cust', p_properties => '{"user": "u2"}')$$,
    $$values ('recorded', 2::numeric)$$,
    'A tracks its seats meter'
);
select is(tenancy.has_entitlement('shared-cust', 'sso'), true, 'A''s customer has A''s entitlement');
select results_eq(
    format($$select outcome, used from tenancy.commit_reservation(%L, 1)$$, :'a_hold'),
    $$values ('recorded', 1::numeric)$$,
    'A commits its hold'
);
select lives_ok(format($$select tenancy.release_reservation(%L)$$, :'a_hold_2'), 'A releases its other hold');
select is(
    tenancy.change_tier('shared-cust', 'pro'), :'a_pro'::uuid, 'A changes its customer''s tier'
);
select is(tenancy.subscribe('a-only', 'pro'), :'a_pro'::uuid, 'A subscribes its customer a-only');
select lives_ok(
    $$select tenancy.set_subscription_overrides('a-only', '{"api_calls": 1000}')$$,
    'A sets the overrides of a-only'
);
reset role;

-- API keys ------------------------------------------------------------------------------------

select tenancy.clear_context();
set local role tenancy_app;
select tenancy.authenticate_api_key(:'a_member_key');
select results_eq(
    $$select outcome, used from tenancy.track_usage('seats', 'shared-cust', p_properties => '{"user": "u3"}', p_enforce => true)$$,
    $$values ('recorded', 3::numeric)$$,
    'track_usage works with a member API key'
);
select results_eq(
    $$select allowed from tenancy.reserve_usage('key-cust', 'api_calls', 1)$$,
    $$values (true)$$,
    'reserve_usage works with a member API key'
);
select throws_ok(
    $$select tenancy.create_tier('key tier', 1)$$,
    '42501',
    format('role member of tenant %s cannot manage tiers', :'tenant_a'),
    'a member API key cannot create a tier: 42501'
);
select tenancy.clear_context();
select tenancy.authenticate_api_key(:'a_admin_key');
select results_eq(
    $$select outcome from tenancy.track_usage('api_calls', 'key-cust', 1)$$,
    $$values ('recorded')$$,
    'track_usage works with an admin API key'
);
select isnt(tenancy.create_tier('key tier', 1, '{"api_calls": 10}'), null, 'create_tier works with an admin API key');
select ok(
    (select count(*) > 0 from tenancy.usage_summary('-infinity', 'infinity')),
    'usage_summary works with an admin API key'
);
select tenancy.clear_context();
select tenancy.authenticate_api_key(:'a_viewer_key');
select throws_ok(
    $$select * from tenancy.track_usage('api_calls', 'key-cust', 1)$$,
    '42501',
    format('role viewer of tenant %s cannot track usage', :'tenant_a'),
    'a viewer API key cannot track usage: 42501'
);
select throws_ok(
    $$select * from tenancy.track_usage_batch('[{"meter": "api_calls", "customer": "key-cust"}]')$$,
    '42501', null,
    'a viewer API key cannot track a batch: 42501'
);
select results_eq(
    $$select allowed, used from tenancy.check_usage_enforcement('key-cust', 'api_calls')$$,
    $$values (true, 1::numeric)$$,
    'a viewer API key checks enforcement'
);
select tenancy.clear_context();
select tenancy.authenticate_api_key(:'b_member_key');
select throws_ok(
    $$select * from tenancy.track_usage('seats', 'shared-cust', p_properties => '{"user": "u4"}')$$,
    'P0002', null,
    'a member API key of B cannot count against A''s meter'
);
select throws_ok(
    format($$select * from tenancy.commit_reservation(%L)$$, :'a_hold_2'),
    'P0002', null,
    'a member API key of B cannot settle A''s hold'
);
select tenancy.clear_context();
reset role;

select pg_temp.act_as(:'tenant_a', :'owner_a');
select results_eq(
    $$select used from tenancy.check_usage_enforcement('shared-cust', 'seats')
    union all select used from tenancy.check_usage_enforcement('shared-cust', 'api_calls')$$,
    $$values (3::numeric), (5)$$,
    'in the end A''s counters hold A''s events only'
);
reset role;

select * from finish();
rollback;
