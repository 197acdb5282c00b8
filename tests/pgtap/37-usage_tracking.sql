-- Usage tracking: track_usage per aggregation, hard and soft caps, idempotency, backdating, batches, enforcement checks, reservations, alerts, usage_summary and partitions.
-- Every call runs as tenancy_app in a context set by tenancy_service (members track, owners and
-- admins read summaries), as applications do; each SQLSTATE a function documents is raised. The
-- superuser reads the rows behind the functions (counters, log, alerts, holds), moves a hold's
-- expiry into the past as the clock would (now() does not move inside the test's transaction),
-- and, last, plants a partition and a default-partition row to exercise ensure_usage_partitions'
-- skipped months.

begin;
select plan(178);

-- The log's partitions of this month and the next three, as the daily job makes them.
select tenancy.ensure_usage_partitions(3) >= 0 as partitions_made \gset

\ir setup/helpers.psql

-- counter(tenant, customer, meter, at): the counter of the period holding an instant (as the superuser).
create function pg_temp.counter(p_tenant uuid, p_customer text, p_meter text, p_at timestamptz default now())
returns table (used numeric, reserved numeric, events bigint)
language sql
as $$
    select u.used, u.reserved, u.events
    from tenancy.usage_counters as u
    inner join tenancy.customers as c on u.tenant_id = c.tenant_id and u.customer_id = c.id
    inner join tenancy.meters as m on u.tenant_id = m.tenant_id and u.meter_id = m.id
    where
        u.tenant_id = p_tenant and c.external_id = p_customer and m.key = p_meter
        and p_at >= u.period_start and p_at < u.period_end
$$;

-- alerts(tenant, customer, meter): the alerts written for a customer's meter (as the superuser).
create function pg_temp.alerts(p_tenant uuid, p_customer text, p_meter text)
returns table (period_start timestamptz, threshold numeric, used numeric, cap numeric)
language sql
as $$
    select a.period_start, a.threshold, a.used, a.cap
    from tenancy.usage_alerts as a
    inner join tenancy.customers as c on a.tenant_id = c.tenant_id and a.customer_id = c.id
    inner join tenancy.meters as m on a.tenant_id = m.tenant_id and a.meter_id = m.id
    where a.tenant_id = p_tenant and c.external_id = p_customer and m.key = p_meter
    order by a.period_start, a.threshold
$$;

-- expire(reservation): moves a hold's expiry, and its counter's earliest expiry, a second into
-- the past, as time passing would (as the superuser).
create function pg_temp.expire(p_reservation uuid)
returns void
language sql
as $$
    update tenancy.usage_counters as u
    set holds_expire_at = least(u.holds_expire_at, now() - interval '1 second')
    from tenancy.usage_reservations as r
    where
        r.id = p_reservation and u.tenant_id = r.tenant_id and u.customer_id = r.customer_id
        and u.meter_id = r.meter_id and u.period_start = r.period_start;
    update tenancy.usage_reservations as r
    set expires_at = now() - interval '1 second'
    where r.id = p_reservation;
$$;

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as admin_a,
    'auth0|' || gen_random_uuid() as member_a,
    'auth0|' || gen_random_uuid() as viewer_a,
    'ut-a-' || left(md5(random()::text), 8) as slug_a
\gset

set local role tenancy_admin;
select tenancy.create_tenant(:'slug_a', 'Usage tracking A', :'owner_a') as tenant_a \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.add_member(:'admin_a', 'admin');
select tenancy.add_member(:'member_a', 'member');
select tenancy.add_member(:'viewer_a', 'viewer');
select
    tenancy.create_meter('api_calls') as m1,
    tenancy.create_meter('requests', p_aggregation => 'count') as m2,
    tenancy.create_meter('peak_gb', p_aggregation => 'max') as m3,
    tenancy.create_meter('seats', p_aggregation => 'unique_count', p_property => 'user') as m4,
    tenancy.create_meter('projects', p_aggregation => 'latest', p_reset_period => 'never') as m5,
    tenancy.create_meter('daily', p_reset_period => 'day') as m6,
    tenancy.create_meter('hourly', p_backdate_grace => '1 hour') as m7,
    tenancy.create_meter('exports', p_backdate_grace => '0') as m8
\gset
select
    tenancy.create_tier(
        'capped', 10,
        '{"api_calls": 10, "requests": 3, "peak_gb": 8, "seats": 2, "projects": 5, "daily": 100, "hourly": 10}'
    ) as t1,
    tenancy.create_tier('soft', 10, '{"api_calls": 10}', p_soft_caps => '{api_calls}', p_overage_prices => '{"api_calls": 0.5}') as t2,
    tenancy.create_tier('half', 10, '{"api_calls": 10}', p_alert_thresholds => '{0.5}') as t3
\gset
select
    tenancy.subscribe('c-cap', 'capped') as s1,
    tenancy.subscribe('c-soft', 'soft') as s2,
    tenancy.subscribe('c-nocap', 'capped', p_cap_overrides => '{"api_calls": null}') as s3,
    tenancy.subscribe('c-back', 'capped', p_started_at => now() - interval '1 hour') as s4,
    tenancy.subscribe('c-res', 'capped') as s5,
    tenancy.subscribe('c-res2', 'capped') as s6,
    tenancy.subscribe('c-alert', 'capped') as s7,
    tenancy.subscribe('c-alert2', 'capped', p_started_at => now() - interval '1 hour') as s8,
    tenancy.subscribe('c-half', 'half') as s9,
    tenancy.subscribe('b-cap', 'capped') as s10,
    tenancy.subscribe('b-alert', 'capped') as s11
\gset
reset role;

-- Without a context, and as a viewer ----------------------------------------------------------

select tenancy.clear_context();
set local role tenancy_app;
select throws_ok(
    $$select * from tenancy.track_usage('api_calls', 'c-free')$$,
    'TN001',
    'no tenant context: track usage needs tenancy.authenticate() or tenancy.set_context() first',
    'track_usage without a context: TN001'
);
select throws_ok(
    $$select * from tenancy.track_usage_batch('[]')$$,
    'TN001',
    'no tenant context: track usage needs tenancy.authenticate() or tenancy.set_context() first',
    'track_usage_batch without a context: TN001'
);
select throws_ok(
    $$select * from tenancy.check_usage_enforcement('c-free', 'api_calls')$$,
    'TN001',
    'no tenant context: check usage needs tenancy.authenticate() or tenancy.set_context() first',
    'check_usage_enforcement without a context: TN001'
);
select throws_ok(
    $$select * from tenancy.reserve_usage('c-free', 'api_calls', 1)$$,
    'TN001',
    'no tenant context: reserve usage needs tenancy.authenticate() or tenancy.set_context() first',
    'reserve_usage without a context: TN001'
);
select throws_ok(
    format($$select * from tenancy.commit_reservation(%L)$$, gen_random_uuid()),
    'TN001',
    'no tenant context: commit reservations needs tenancy.authenticate() or tenancy.set_context() first',
    'commit_reservation without a context: TN001'
);
select throws_ok(
    format($$select tenancy.release_reservation(%L)$$, gen_random_uuid()),
    'TN001',
    'no tenant context: release reservations needs tenancy.authenticate() or tenancy.set_context() first',
    'release_reservation without a context: TN001'
);
select throws_ok(
    $$select * from tenancy.usage_summary(now() - interval '1 day', now())$$,
    'TN001',
    'no tenant context: read usage summaries needs tenancy.authenticate() or tenancy.set_context() first',
    'usage_summary without a context: TN001'
);
reset role;

select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok(
    $$select * from tenancy.track_usage('api_calls', 'c-free')$$,
    '42501',
    format('role viewer of tenant %s cannot track usage', :'tenant_a'),
    'a viewer cannot track usage: 42501'
);
select throws_ok(
    $$select * from tenancy.track_usage_batch('[{"meter": "api_calls", "customer": "c-free"}]')$$,
    '42501',
    format('role viewer of tenant %s cannot track usage', :'tenant_a'),
    'a viewer cannot track a batch: 42501'
);
select throws_ok(
    $$select * from tenancy.reserve_usage('c-free', 'api_calls', 1)$$,
    '42501',
    format('role viewer of tenant %s cannot reserve usage', :'tenant_a'),
    'a viewer cannot reserve usage: 42501'
);
select throws_ok(
    format($$select * from tenancy.commit_reservation(%L)$$, gen_random_uuid()),
    '42501',
    format('role viewer of tenant %s cannot commit reservations', :'tenant_a'),
    'a viewer cannot commit a reservation: 42501'
);
select throws_ok(
    format($$select tenancy.release_reservation(%L)$$, gen_random_uuid()),
    '42501',
    format('role viewer of tenant %s cannot release reservations', :'tenant_a'),
    'a viewer cannot release a reservation: 42501'
);
select results_eq(
    $$select allowed, used, cap from tenancy.check_usage_enforcement('c-free', 'api_calls')$$,
    $$values (true, 0::numeric, null::numeric)$$,
    'a viewer checks enforcement (read only)'
);
reset role;
select is(
    (
        select count(*)::integer from tenancy.customers
        where tenant_id = :'tenant_a' and external_id = 'c-free'
    ),
    0,
    'refused calls and the read-only check created no customer'
);

-- Aggregations (a customer without a subscription: no caps, calendar periods) -------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select results_eq(
    $$select outcome, event_id is not null, used, cap, remaining, period_start, period_end, first_outcome
    from tenancy.track_usage('api_calls', 'c-free', 2)$$,
    $$values ('recorded', true, 2::numeric, null::numeric, null::numeric,
        date_trunc('month', now() at time zone 'UTC') at time zone 'UTC',
        (date_trunc('month', now() at time zone 'UTC') + interval '1 month') at time zone 'UTC', null::text)$$,
    'sum: recorded, an event id, the counter, no cap, the calendar month (the customer is created on first use)'
);
select is(
    (select used from tenancy.track_usage('api_calls', 'c-free', 3.5)), 5.5::numeric, 'sum: values add up'
);
select is((select used from tenancy.track_usage('requests', 'c-free', 7)), 1::numeric, 'count: one event counts 1');
select is(
    (select used from tenancy.track_usage('requests', 'c-free', 7)), 2::numeric, 'count: whatever its value'
);
select is((select used from tenancy.track_usage('peak_gb', 'c-free', 3)), 3::numeric, 'max: the first value');
select is((select used from tenancy.track_usage('peak_gb', 'c-free', 9)), 9::numeric, 'max: a higher value');
select is((select used from tenancy.track_usage('peak_gb', 'c-free', 4)), 9::numeric, 'max: a lower value changes nothing');
select is(
    (select used from tenancy.track_usage('seats', 'c-free', p_properties => '{"user": "a"}')), 1::numeric,
    'unique_count: a new value counts 1'
);
select is(
    (select used from tenancy.track_usage('seats', 'c-free', p_properties => '{"user": "a"}')), 1::numeric,
    'unique_count: a value seen in the period counts nothing'
);
select is(
    (select used from tenancy.track_usage('seats', 'c-free', 5, '{"user": "b", "x": 1}')), 2::numeric,
    'unique_count: another value counts 1, whatever the event value'
);
select throws_ok(
    $$select * from tenancy.track_usage('seats', 'c-free', p_properties => '{"name": "a"}')$$,
    '22023',
    'usage event of meter ''seats'' needs property ''user'', whose distinct values it counts, of at most 1000 bytes',
    'unique_count: an event without the property is refused'
);
select is((select used from tenancy.track_usage('projects', 'c-free', 5)), 5::numeric, 'latest: the value');
select is(
    (select used from tenancy.track_usage('projects', 'c-free', 3, p_occurred_at => now() - interval '1 hour')),
    5::numeric,
    'latest: an earlier event does not replace a later one'
);
select results_eq(
    $$select used, period_start, period_end
    from tenancy.track_usage('projects', 'c-free', 7, p_occurred_at => now() + interval '1 minute')$$,
    $$values (7::numeric, '-infinity'::timestamptz, 'infinity'::timestamptz)$$,
    'latest: a later event replaces it; a never meter has one period'
);
reset role;
select results_eq(
    format(
        $$select m.key::text, u.used, u.events, u.latest_at
        from tenancy.usage_counters as u
        inner join tenancy.meters as m on u.tenant_id = m.tenant_id and u.meter_id = m.id
        inner join tenancy.customers as c on u.tenant_id = c.tenant_id and u.customer_id = c.id
        where u.tenant_id = %L and c.external_id = 'c-free' order by m.key$$,
        :'tenant_a'
    ),
    $$values
        ('api_calls', 5.5::numeric, 2::bigint, now()),
        ('peak_gb', 9, 3, now()),
        ('projects', 7, 3, now() + interval '1 minute'),
        ('requests', 2, 2, now()),
        ('seats', 2, 3, now())$$,
    'the counters hold used, the number of events and the latest occurred_at'
);
select results_eq(
    format(
        $$select u.value from tenancy.usage_unique_values as u
        inner join tenancy.customers as c on u.tenant_id = c.tenant_id and u.customer_id = c.id
        where u.tenant_id = %L and c.external_id = 'c-free' order by u.value$$,
        :'tenant_a'
    ),
    $$values ('a'), ('b')$$,
    'unique_count keeps the distinct values of the period'
);
select is(
    (
        select count(*)::integer from tenancy.usage_events as e inner join tenancy.customers as c
            on e.tenant_id = c.tenant_id and e.customer_id = c.id
        where e.tenant_id = :'tenant_a' and c.external_id = 'c-free'
    ),
    13,
    'every counted event is in the log (the refused one is not)'
);

-- Invalid events and roles ---------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select * from tenancy.track_usage('nope', 'c-free')$$,
    'P0002',
    format('meter ''nope'' does not exist in tenant %s', :'tenant_a'),
    'track_usage of an unknown meter: P0002 naming it'
);
select throws_ok(
    $$select * from tenancy.track_usage('api_calls', 'c-free', -1)$$,
    '22023',
    'invalid usage value -1 for meter ''api_calls'': a number from 0 to 1e18',
    'track_usage refuses a negative value'
);
select throws_ok(
    $$select * from tenancy.track_usage('api_calls', 'c-free', null)$$,
    '22023',
    'invalid usage value NULL for meter ''api_calls'': a number from 0 to 1e18',
    'track_usage refuses a NULL value'
);
select throws_ok(
    $$select * from tenancy.track_usage('api_calls', 'c-free', 'NaN')$$, '22023', null, 'track_usage refuses NaN'
);
select throws_ok(
    $$select * from tenancy.track_usage('api_calls', 'c-free', 'Infinity')$$, '22023', null, 'track_usage refuses Infinity'
);
select throws_ok(
    $$select * from tenancy.track_usage('api_calls', 'c-free', 1, '[1]')$$,
    '22023',
    'invalid usage properties for meter ''api_calls'': a JSON object of at most 16 KB, got array of 3 bytes',
    'track_usage refuses properties that are not an object'
);
select throws_ok(
    $$select * from tenancy.track_usage('api_calls', 'c-free', 1, null)$$,
    '22023', null,
    'track_usage refuses NULL properties'
);
select throws_ok(
    format($$select * from tenancy.track_usage('api_calls', 'c-free', 1, %L)$$, jsonb_build_object('x', repeat('y', 16384))),
    '22023', null,
    'track_usage refuses properties over 16 KB'
);
select throws_ok(
    $$select * from tenancy.track_usage('api_calls', '', 1)$$,
    '22023',
    'invalid customer id '''': 1 to 255 characters',
    'track_usage refuses an empty customer id'
);
select throws_ok(
    format($$select * from tenancy.track_usage('api_calls', %L, 1)$$, repeat('c', 256)),
    '22023', null,
    'track_usage refuses a customer id of 256 characters'
);
select throws_ok(
    $$select * from tenancy.track_usage('api_calls', 'c-free', 1, p_idempotency_key => '')$$,
    '22023',
    'invalid idempotency key '''': 1 to 255 characters',
    'track_usage refuses an empty idempotency key'
);
select throws_ok(
    format($$select * from tenancy.track_usage('api_calls', 'c-free', 1, p_idempotency_key => %L)$$, repeat('k', 256)),
    '22023', null,
    'track_usage refuses an idempotency key of 256 characters'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'admin_a');
select is((select outcome from tenancy.track_usage('api_calls', 'c-admin')), 'recorded', 'an admin tracks usage');
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select is((select outcome from tenancy.track_usage('api_calls', 'c-owner')), 'recorded', 'an owner tracks usage');
reset role;
select pg_temp.act_as(:'tenant_a');
select is((select outcome from tenancy.track_usage('api_calls', 'c-service')), 'recorded', 'a service context tracks usage');
reset role;
select results_eq(
    format(
        $$select u.used, u.events from pg_temp.counter(%L, 'c-free', 'api_calls') as u$$, :'tenant_a'
    ),
    $$values (5.5::numeric, 2::bigint)$$,
    'refused events counted nothing'
);

-- Hard and soft caps ---------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select results_eq(
    $$select outcome, used, cap, remaining from tenancy.track_usage('api_calls', 'c-cap', 4, p_enforce => true)$$,
    $$values ('recorded', 4::numeric, 10::numeric, 6::numeric)$$,
    'hard cap: an enforced event under the cap is recorded'
);
select results_eq(
    $$select outcome, used, remaining from tenancy.track_usage('api_calls', 'c-cap', 6, p_enforce => true)$$,
    $$values ('recorded', 10::numeric, 0::numeric)$$,
    'hard cap: an event reaching the cap exactly is recorded'
);
select results_eq(
    $$select outcome, event_id, used, cap, remaining from tenancy.track_usage('api_calls', 'c-cap', 1, p_enforce => true)$$,
    $$values ('refused', null::bigint, 10::numeric, 10::numeric, 0::numeric)$$,
    'hard cap: an event over the cap is refused, with no event id, the counter unchanged'
);
select is(
    (select outcome from tenancy.track_usage('api_calls', 'c-cap', 0, p_enforce => true)), 'recorded',
    'hard cap: an event of value 0 is recorded at the cap'
);
select results_eq(
    $$select outcome, used, remaining from tenancy.track_usage('api_calls', 'c-cap', 1)$$,
    $$values ('recorded', 11::numeric, 0::numeric)$$,
    'without p_enforce the event is recorded over the cap'
);
select results_eq(
    $$select outcome from tenancy.track_usage('requests', 'c-cap', 100, p_enforce => true)
    union all select outcome from tenancy.track_usage('requests', 'c-cap', 100, p_enforce => true)
    union all select outcome from tenancy.track_usage('requests', 'c-cap', 100, p_enforce => true)
    union all select outcome from tenancy.track_usage('requests', 'c-cap', 1, p_enforce => true)$$,
    $$values ('recorded'), ('recorded'), ('recorded'), ('refused')$$,
    'hard cap of a count meter: 3 events, the fourth refused'
);
select results_eq(
    $$select outcome, used from tenancy.track_usage('peak_gb', 'c-cap', 9, p_enforce => true)
    union all select outcome, used from tenancy.track_usage('peak_gb', 'c-cap', 8, p_enforce => true)$$,
    $$values ('refused', 0::numeric), ('recorded', 8::numeric)$$,
    'hard cap of a max meter: a value over the cap is refused, the cap itself recorded'
);
select results_eq(
    $$select outcome, used from tenancy.track_usage('seats', 'c-cap', p_properties => '{"user": "a"}', p_enforce => true)
    union all select outcome, used from tenancy.track_usage('seats', 'c-cap', p_properties => '{"user": "b"}', p_enforce => true)
    union all select outcome, used from tenancy.track_usage('seats', 'c-cap', p_properties => '{"user": "c"}', p_enforce => true)
    union all select outcome, used from tenancy.track_usage('seats', 'c-cap', p_properties => '{"user": "a"}', p_enforce => true)$$,
    $$values ('recorded', 1::numeric), ('recorded', 2::numeric), ('refused', 2::numeric), ('recorded', 2::numeric)$$,
    'hard cap of a unique_count meter: a third value is refused, a value already counted is not'
);
select results_eq(
    $$select outcome, used from tenancy.track_usage('projects', 'c-cap', 6, p_enforce => true)
    union all select outcome, used from tenancy.track_usage('projects', 'c-cap', 5, p_enforce => true)
    union all select outcome, used from tenancy.track_usage('projects', 'c-cap', 3, p_occurred_at => now() - interval '1 hour', p_enforce => true)$$,
    $$values ('refused', 0::numeric), ('recorded', 5::numeric), ('recorded', 5::numeric)$$,
    'hard cap of a latest meter: a latest value over the cap is refused; an earlier event, which does not replace it, is recorded'
);
reset role;
select results_eq(
    format(
        $$select u.value from tenancy.usage_unique_values as u
        inner join tenancy.customers as c on u.tenant_id = c.tenant_id and u.customer_id = c.id
        where u.tenant_id = %L and c.external_id = 'c-cap' order by u.value$$,
        :'tenant_a'
    ),
    $$values ('a'), ('b')$$,
    'the refused unique value was not kept'
);
select results_eq(
    format(
        $$select m.key::text, count(*)::integer from tenancy.usage_events as e
        inner join tenancy.customers as c on e.tenant_id = c.tenant_id and e.customer_id = c.id
        inner join tenancy.meters as m on e.tenant_id = m.tenant_id and e.meter_id = m.id
        where e.tenant_id = %L and c.external_id = 'c-cap' group by m.key order by m.key$$,
        :'tenant_a'
    ),
    $$values ('api_calls', 4), ('peak_gb', 1), ('projects', 2), ('requests', 3), ('seats', 3)$$,
    'refused events are not in the log'
);
select pg_temp.act_as(:'tenant_a', :'member_a');
select results_eq(
    $$select outcome, used, cap, remaining from tenancy.track_usage('api_calls', 'c-soft', 12, p_enforce => true)$$,
    $$values ('recorded', 12::numeric, 10::numeric, 0::numeric)$$,
    'soft cap: an enforced event over the cap is recorded'
);
select results_eq(
    $$select outcome, used, cap from tenancy.track_usage('api_calls', 'c-nocap', 1000, p_enforce => true)$$,
    $$values ('recorded', 1000::numeric, null::numeric)$$,
    'a JSON null cap override: no cap, nothing refused'
);

-- check_usage_enforcement ----------------------------------------------------------------------

select results_eq(
    $$select allowed, used, cap, remaining, hard, reserved from tenancy.check_usage_enforcement('c-cap', 'api_calls', 1)$$,
    $$values (false, 11::numeric, 10::numeric, 0::numeric, true, 0::numeric)$$,
    'check_usage_enforcement: over a hard cap, not allowed'
);
select results_eq(
    $$select allowed from tenancy.check_usage_enforcement('c-cap', 'api_calls', 0)$$,
    $$values (true)$$,
    'check_usage_enforcement: requesting 0 is allowed'
);
select results_eq(
    $$select allowed, used, cap, remaining, hard from tenancy.check_usage_enforcement('c-soft', 'api_calls', 5)$$,
    $$values (true, 12::numeric, 10::numeric, 0::numeric, false)$$,
    'check_usage_enforcement: a soft cap allows'
);
select results_eq(
    $$select allowed, used, cap, period_start, period_end from tenancy.check_usage_enforcement('nobody', 'api_calls', 1000)$$,
    $$values (true, 0::numeric, null::numeric,
        date_trunc('month', now() at time zone 'UTC') at time zone 'UTC',
        (date_trunc('month', now() at time zone 'UTC') + interval '1 month') at time zone 'UTC')$$,
    'check_usage_enforcement: an unknown customer has no cap and used nothing'
);
select results_eq(
    $$select allowed, used from tenancy.check_usage_enforcement('c-cap', 'peak_gb', 8)
    union all select allowed, used from tenancy.check_usage_enforcement('c-cap', 'peak_gb', 9)$$,
    $$values (true, 8::numeric), (false, 8::numeric)$$,
    'check_usage_enforcement of a max meter compares the value with the cap'
);
select results_eq(
    $$select allowed, remaining from tenancy.check_usage_enforcement('c-cap', 'seats', 1)$$,
    $$values (false, 0::numeric)$$,
    'check_usage_enforcement of a unique_count meter: a new value over the cap'
);
select throws_ok(
    $$select * from tenancy.check_usage_enforcement('c-cap', 'nope')$$,
    'P0002',
    format('meter ''nope'' does not exist in tenant %s', :'tenant_a'),
    'check_usage_enforcement of an unknown meter: P0002'
);
select throws_ok(
    $$select * from tenancy.check_usage_enforcement('c-cap', 'api_calls', -1)$$,
    '22023',
    'invalid requested amount -1 for meter ''api_calls'': a finite number from 0',
    'check_usage_enforcement refuses a negative amount'
);
select throws_ok(
    $$select * from tenancy.check_usage_enforcement('c-cap', 'api_calls', null)$$,
    '22023', null,
    'check_usage_enforcement refuses a NULL amount'
);
select throws_ok(
    $$select * from tenancy.check_usage_enforcement('c-cap', 'api_calls', 'NaN')$$,
    '22023', null,
    'check_usage_enforcement refuses NaN'
);
reset role;

-- Idempotency ----------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select event_id as dup_event from tenancy.track_usage('api_calls', 'c-dup', 2, p_idempotency_key => 'k1') \gset
select results_eq(
    $$select outcome, event_id, used, first_outcome from tenancy.track_usage('api_calls', 'c-dup', 2, p_idempotency_key => 'k1')$$,
    format($$values ('duplicate', %s::bigint, 2::numeric, 'recorded')$$, :dup_event),
    'a retry with the key: duplicate, the first event''s id and outcome, nothing counted'
);
select is(
    (select outcome from tenancy.track_usage('api_calls', 'c-dup', 2, '{"other": "properties"}', 'k1')), 'duplicate',
    'a retry with other properties is still a duplicate'
);
select throws_ok(
    $$select * from tenancy.track_usage('api_calls', 'c-dup', 3, p_idempotency_key => 'k1')$$,
    'TN019',
    'idempotency key ''k1'' of customer ''c-dup'' was used for another event (meter api_calls, value 2), not meter ''api_calls'' with value 3',
    'the key reused with another value: TN019'
);
select throws_ok(
    $$select * from tenancy.track_usage('requests', 'c-dup', 2, p_idempotency_key => 'k1')$$,
    'TN019',
    'idempotency key ''k1'' of customer ''c-dup'' was used for another event (meter api_calls, value 2), not meter ''requests'' with value 2',
    'the key reused for another meter: TN019'
);
select is(
    (select outcome from tenancy.track_usage('api_calls', 'c-dup-2', 2, p_idempotency_key => 'k1')), 'recorded',
    'keys are per customer: another customer''s k1 is a new event'
);
select results_eq(
    $$select outcome, event_id, used from tenancy.track_usage('api_calls', 'c-cap', 1, p_idempotency_key => 'r1', p_enforce => true)$$,
    $$values ('refused', null::bigint, 11::numeric)$$,
    'an event refused at the cap, with a key'
);
select results_eq(
    $$select outcome, event_id, used, first_outcome
    from tenancy.track_usage('api_calls', 'c-cap', 1, p_idempotency_key => 'r1', p_enforce => true)$$,
    $$values ('duplicate', null::bigint, 11::numeric, 'refused')$$,
    'its retry is a duplicate whose first outcome is refused'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.set_subscription_overrides('c-cap', '{"api_calls": 100}');
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select results_eq(
    $$select outcome, event_id, used, first_outcome
    from tenancy.track_usage('api_calls', 'c-cap', 1, p_idempotency_key => 'r1', p_enforce => true)$$,
    $$values ('duplicate', null::bigint, 11::numeric, 'refused')$$,
    'its retry is a duplicate of the refusal, counting nothing, even with room under a raised cap'
);
select throws_ok(
    $$select * from tenancy.track_usage('api_calls', 'c-cap', 2, p_idempotency_key => 'r1')$$,
    'TN019', null,
    'the refused event''s key reused with another value: TN019'
);
select results_eq(
    $$select outcome, first_outcome
    from tenancy.track_usage('api_calls', 'c-cap', 1, p_idempotency_key => 'r1', p_occurred_at => now() - interval '2 days')$$,
    $$values ('duplicate', 'refused')$$,
    'a retry of the refused event outside the backdating window is a duplicate, not counted'
);
reset role;
select results_eq(
    format(
        $$select count(*)::integer, coalesce(sum(e.value), 0) from tenancy.usage_events as e
        inner join tenancy.customers as c on e.tenant_id = c.tenant_id and e.customer_id = c.id
        where e.tenant_id = %L and c.external_id = 'c-cap' and e.idempotency_key = 'r1'$$,
        :'tenant_a'
    ),
    $$values (0, 0::numeric)$$,
    'no event with the refused key was ever counted'
);
select pg_temp.act_as(:'tenant_a', :'member_a');
select is(
    (select outcome from tenancy.track_usage('hourly', 'c-dup', 1, p_idempotency_key => 'h1', p_occurred_at => now() - interval '30 minutes')),
    'recorded',
    'an event with a key, in time'
);
select results_eq(
    $$select outcome, first_outcome from tenancy.track_usage('hourly', 'c-dup', 1, p_idempotency_key => 'h1', p_occurred_at => now() - interval '2 hours')$$,
    $$values ('duplicate', 'recorded')$$,
    'a retry of it outside the backdating window is still a duplicate, not TN018'
);
reset role;
select results_eq(
    format(
        $$select c.external_id, k.key, k.outcome, k.event_id is not null from tenancy.usage_idempotency_keys as k
        inner join tenancy.customers as c on k.tenant_id = c.tenant_id and k.customer_id = c.id
        where k.tenant_id = %L order by 1, 2$$,
        :'tenant_a'
    ),
    $$values ('c-cap', 'r1', 'refused', false), ('c-dup', 'h1', 'recorded', true), ('c-dup', 'k1', 'recorded', true),
        ('c-dup-2', 'k1', 'recorded', true)$$,
    'one key row per customer and key, with its outcome'
);
select results_eq(
    format($$select u.used, u.events from pg_temp.counter(%L, 'c-dup', 'api_calls') as u$$, :'tenant_a'),
    $$values (2::numeric, 1::bigint)$$,
    'duplicates and refused reuses counted nothing'
);

-- Backdating (c-back: daily periods anchored an hour ago) --------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select results_eq(
    $$select outcome, used, period_start, period_end
    from tenancy.track_usage('daily', 'c-back', 1, p_occurred_at => now() - interval '24 hours')$$,
    $$values ('recorded', 1::numeric, now() - interval '25 hours', now() - interval '1 hour')$$,
    'an event exactly at the grace (24 hours back) is recorded in the period it belongs to (the day before)'
);
select throws_ok(
    $$select * from tenancy.track_usage('daily', 'c-back', 2, p_occurred_at => now() - interval '24 hours 0.000001 seconds')$$,
    'TN018',
    format(
        'usage event of meter ''daily'' at %s is outside the accepted window: from %s (%s ago) to %s (5 minutes ahead)',
        now() - interval '24 hours 0.000001 seconds', now() - interval '24 hours', interval '24 hours',
        now() + interval '5 minutes'
    ),
    'an event a microsecond older than the grace: TN018 naming the window'
);
select results_eq(
    $$select outcome, used, period_start, period_end
    from tenancy.track_usage('daily', 'c-back', 4, p_occurred_at => now() + interval '5 minutes')$$,
    $$values ('recorded', 4::numeric, now() - interval '1 hour', now() + interval '23 hours')$$,
    'an event 5 minutes ahead is recorded in the current period'
);
select throws_ok(
    $$select * from tenancy.track_usage('daily', 'c-back', 2, p_occurred_at => now() + interval '5 minutes 0.000001 seconds')$$,
    'TN018', null,
    'an event more than 5 minutes ahead: TN018'
);
select results_eq(
    $$select outcome, used, period_start
    from tenancy.track_usage('daily', 'c-back', 8, p_occurred_at => now() - interval '2 hours', p_enforce => true)$$,
    $$values ('recorded', 9::numeric, now() - interval '25 hours')$$,
    'a backdated event inside the grace counts (and is enforced) in the period it belongs to'
);
select results_eq(
    $$select used, period_start from tenancy.check_usage_enforcement('c-back', 'daily')$$,
    $$values (4::numeric, now() - interval '1 hour')$$,
    'the current period holds only its own events'
);
select is(
    (select outcome from tenancy.track_usage('hourly', 'c-back', 1, p_occurred_at => now() - interval '1 hour')),
    'recorded',
    'a meter''s own grace: an event exactly 1 hour back is recorded'
);
select throws_ok(
    $$select * from tenancy.track_usage('hourly', 'c-back', 1, p_occurred_at => now() - interval '1 hour 0.000001 seconds')$$,
    'TN018',
    format(
        'usage event of meter ''hourly'' at %s is outside the accepted window: from %s (%s ago) to %s (5 minutes ahead)',
        now() - interval '1 hour 0.000001 seconds', now() - interval '1 hour', interval '1 hour',
        now() + interval '5 minutes'
    ),
    'a meter''s own grace: a microsecond more is TN018'
);
select is(
    (select outcome from tenancy.track_usage('exports', 'c-back', 1)), 'recorded', 'a grace of 0: an event now is recorded'
);
select throws_ok(
    $$select * from tenancy.track_usage('exports', 'c-back', 1, p_occurred_at => now() - interval '0.000001 seconds')$$,
    'TN018', null,
    'a grace of 0: an event a microsecond back is TN018'
);
select throws_ok(
    $$select * from tenancy.track_usage('daily', 'c-late', 1, p_occurred_at => now() - interval '2 days')$$,
    'TN018', null,
    'an event two days back for a new customer: TN018'
);
reset role;
select is(
    (
        select count(*)::integer from tenancy.customers
        where tenant_id = :'tenant_a' and external_id = 'c-late'
    ),
    0,
    'the refused late event created no customer'
);
select results_eq(
    format(
        $$select u.used, u.events from pg_temp.counter(%L, 'c-back', 'daily', now() - interval '2 hours') as u
        union all select u.used, u.events from pg_temp.counter(%L, 'c-back', 'daily') as u$$,
        :'tenant_a', :'tenant_a'
    ),
    $$values (9::numeric, 2::bigint), (4, 1)$$,
    'each period''s counter holds its events, the refused ones none'
);

-- Batches --------------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select * from tenancy.track_usage_batch('{"meter": "api_calls"}')$$,
    '22023',
    'usage batch must be a JSON array of at most 10000 events and 16 MB, got object',
    'track_usage_batch refuses a batch that is not an array'
);
select throws_ok(
    $$select * from tenancy.track_usage_batch(null)$$,
    '22023',
    'usage batch must be a JSON array of at most 10000 events and 16 MB, got NULL',
    'track_usage_batch refuses NULL'
);
select throws_like(
    $$select * from tenancy.track_usage_batch(
        (select jsonb_agg(jsonb_build_object('meter', 'api_calls', 'customer', 'b-big')) from generate_series(1, 10001))
    )$$,
    'usage batch must be a JSON array of at most 10000 events and 16 MB, got array of 10001 events, % bytes',
    'track_usage_batch refuses 10001 events'
);
select is(
    (select count(*)::integer from tenancy.track_usage_batch('[]')), 0, 'an empty batch returns no row'
);
select results_eq(
    $$select count(*)::integer, count(*) filter (where outcome = 'recorded')::integer, max(used)
    from tenancy.track_usage_batch(
        (select jsonb_agg(jsonb_build_object('meter', 'api_calls', 'customer', 'b-big')) from generate_series(1, 10000))
    )$$,
    $$values (10000, 10000, 10000::numeric)$$,
    'track_usage_batch records 10000 events'
);
select
    jsonb_build_array(
        '{"meter": "api_calls", "customer": "b-1", "value": 2, "idempotency_key": "bk1"}'::jsonb,
        '{"meter": "api_calls", "customer": "b-1", "value": 2, "idempotency_key": "bk1"}'::jsonb,
        '5'::jsonb,
        '{"customer": "b-1"}'::jsonb,
        '{"meter": "nope", "customer": "b-1"}'::jsonb,
        '{"meter": "api_calls"}'::jsonb,
        '{"meter": "api_calls", "customer": ""}'::jsonb,
        '{"meter": "api_calls", "customer": "b-1", "value": -1}'::jsonb,
        '{"meter": "api_calls", "customer": "b-1", "value": "3"}'::jsonb,
        '{"meter": "api_calls", "customer": "b-1", "properties": [1]}'::jsonb,
        '{"meter": "seats", "customer": "b-1", "properties": {"name": "x"}}'::jsonb,
        '{"meter": "api_calls", "customer": "b-1", "idempotency_key": 5}'::jsonb,
        '{"meter": "api_calls", "customer": "b-1", "idempotency_key": ""}'::jsonb,
        '{"meter": "api_calls", "customer": "b-1", "enforce": "yes"}'::jsonb,
        '{"meter": "api_calls", "customer": "b-1", "occurred_at": "2026-13-01T00:00:00Z"}'::jsonb,
        '{"meter": "api_calls", "customer": "b-1", "occurred_at": "yesterday"}'::jsonb,
        '{"meter": "api_calls", "customer": "b-1", "occurred_at": "2026-01-01T00:00:00"}'::jsonb,
        '{"meter": "api_calls", "customer": "b-late", "occurred_at": "2020-01-01T00:00:00Z"}'::jsonb,
        '{"meter": "api_calls", "customer": "b-1", "value": 3, "idempotency_key": "bk1"}'::jsonb,
        '{"meter": "api_calls", "customer": "b-cap", "value": 11, "enforce": true}'::jsonb,
        '{"meter": "api_calls", "customer": "b-cap", "value": 4, "enforce": true}'::jsonb,
        jsonb_build_object('meter', 'api_calls', 'customer', repeat('c', 256)),
        jsonb_build_object(
            'meter', 'api_calls', 'customer', 'b-1', 'value', 5,
            'occurred_at', greatest(now() - interval '1 hour', date_trunc('month', now() at time zone 'UTC') at time zone 'UTC')
        ),
        '{"meter": "requests", "customer": "b-neg", "value": -1}'::jsonb,
        '{"meter": "api_calls", "customer": "b-1", "value": 1, "idempotency_key": "bk2", "enforce": false}'::jsonb,
        '{"meter": "api_calls", "customer": "b-1", "value": 1, "idempotency_key": "bk2"}'::jsonb
    )::text as batch_1
\gset
select jsonb_agg(to_jsonb(b) order by b.event_index)::text as batch_1_out
from tenancy.track_usage_batch(:'batch_1') as b
\gset
select results_eq(
    format(
        $$select (r ->> 'event_index')::integer, r ->> 'outcome', r ->> 'error_code', r ->> 'first_outcome'
        from jsonb_array_elements(%L::jsonb) as r$$,
        :'batch_1_out'
    ),
    $$values
        (0, 'recorded', null, null), (1, 'duplicate', null, 'recorded'), (2, 'invalid', '22023', null),
        (3, 'invalid', '22023', null), (4, 'invalid', 'P0002', null), (5, 'invalid', '22023', null),
        (6, 'invalid', '22023', null), (7, 'invalid', '22023', null), (8, 'invalid', '22023', null),
        (9, 'invalid', '22023', null), (10, 'invalid', '22023', null), (11, 'invalid', '22023', null),
        (12, 'invalid', '22023', null), (13, 'invalid', '22023', null), (14, 'invalid', '22007', null),
        (15, 'invalid', '22007', null), (16, 'invalid', '22007', null), (17, 'invalid', 'TN018', null),
        (18, 'invalid', 'TN019', null), (19, 'refused', null, null), (20, 'recorded', null, null),
        (21, 'invalid', '22023', null), (22, 'recorded', null, null), (23, 'invalid', '22023', null),
        (24, 'recorded', null, null), (25, 'duplicate', null, 'recorded')$$,
    'track_usage_batch: one outcome per event, each invalid kind with its SQLSTATE, in order'
);
select results_eq(
    format(
        $$select (r ->> 'event_index')::integer, r ->> 'error'
        from jsonb_array_elements(%L::jsonb) as r where (r ->> 'event_index')::integer in (2, 3, 4, 7, 10, 13, 14, 18)$$,
        :'batch_1_out'
    ),
    format(
        $$values
            (2, 'usage event is not a JSON object: 5'),
            (3, 'usage event has no meter (a string)'),
            (4, %L),
            (7, 'invalid usage value -1 for meter ''api_calls'': a number from 0 to 1e18'),
            (10, 'usage event of meter ''seats'' needs property ''user'', whose distinct values it counts, of at most 1000 bytes'),
            (13, 'invalid enforce "yes": true or false'),
            (14, 'invalid occurred_at "2026-13-01T00:00:00Z": an ISO 8601 timestamp with an offset'),
            (18, 'idempotency key ''bk1'' of customer ''b-1'' was used for another event (value 2), not meter ''api_calls'' with value 3')$$,
        format('meter ''nope'' does not exist in tenant %s', :'tenant_a')
    ),
    'track_usage_batch: each invalid event''s message names the value'
);
select results_eq(
    format(
        $$select r ->> 'event_id' is not distinct from (%L::jsonb -> 0 ->> 'event_id'), (r ->> 'used')::numeric, (r ->> 'cap')::numeric
        from jsonb_array_elements(%L::jsonb) as r where (r ->> 'event_index')::integer in (1, 19, 20)
        order by (r ->> 'event_index')::integer$$,
        :'batch_1_out', :'batch_1_out'
    ),
    $$values (true, 8::numeric, null::numeric), (false, 4, 10), (false, 4, 10)$$,
    'the duplicate names the first event; used and cap are the counter''s after the batch'
);
reset role;
select results_eq(
    format(
        $$select u.used, u.events from pg_temp.counter(%L, 'b-1', 'api_calls') as u
        union all select u.used, u.events from pg_temp.counter(%L, 'b-cap', 'api_calls') as u$$,
        :'tenant_a', :'tenant_a'
    ),
    $$values (8::numeric, 3::bigint), (4, 1)$$,
    'the batch counted its recorded events and nothing else'
);
select is(
    (
        select count(*)::integer from tenancy.customers
        where tenant_id = :'tenant_a' and external_id in ('b-late', 'b-neg')
    ),
    0,
    'invalid events of a batch create no customer (as track_usage refuses them before creating one)'
);
select pg_temp.act_as(:'tenant_a', :'member_a');
select results_eq(
    format(
        $$select event_index, outcome, error_code, first_outcome from tenancy.track_usage_batch(%L)$$,
        jsonb_build_array(
            '{"meter": "api_calls", "customer": "b-1", "value": 2, "idempotency_key": "bk1"}'::jsonb,
            '{"meter": "api_calls", "customer": "b-1", "value": 2, "idempotency_key": "bk1", "occurred_at": "2020-01-01T00:00:00Z"}'::jsonb,
            '{"meter": "api_calls", "customer": "b-1", "value": 9, "idempotency_key": "bk1"}'::jsonb,
            '{"meter": "api_calls", "customer": "b-cap", "value": 6, "enforce": true, "idempotency_key": "bc1"}'::jsonb,
            '{"meter": "api_calls", "customer": "b-cap", "value": 1, "enforce": true, "idempotency_key": "bc2"}'::jsonb,
            '{"meter": "api_calls", "customer": "b-cap", "value": 6, "enforce": true, "idempotency_key": "bc1"}'::jsonb
        )
    ),
    $$values
        (0, 'duplicate', null, 'recorded'), (1, 'duplicate', null, 'recorded'), (2, 'invalid', 'TN019', null),
        (3, 'recorded', null, null), (4, 'refused', null, null), (5, 'duplicate', null, 'recorded')$$,
    'a second batch: keys of the first are duplicates (outside the window too), TN019 for another value; enforced events in order'
);
reset role;
select results_eq(
    format(
        $$select u.used, u.events from pg_temp.counter(%L, 'b-1', 'api_calls') as u
        union all select u.used, u.events from pg_temp.counter(%L, 'b-cap', 'api_calls') as u$$,
        :'tenant_a', :'tenant_a'
    ),
    $$values (8::numeric, 3::bigint), (10, 2)$$,
    'the second batch counted only its new enforced event'
);

-- Reservations ---------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select
    reservation_id as res_1,
    allowed as res_1_allowed,
    used as res_1_used,
    reserved as res_1_reserved,
    remaining as res_1_remaining,
    expires_at as res_1_expires
from tenancy.reserve_usage('c-res', 'api_calls', 6) \gset
select results_eq(
    format(
        $$select %L::boolean, %L::numeric, %L::numeric, %L::numeric, %L::timestamptz$$,
        :'res_1_allowed', :'res_1_used', :'res_1_reserved', :'res_1_remaining', :'res_1_expires'
    ),
    $$values (true, 0::numeric, 6::numeric, 4::numeric, now() + interval '15 minutes')$$,
    'reserve_usage holds 6 of a cap of 10 for 15 minutes'
);
select is(
    (select outcome from tenancy.track_usage('api_calls', 'c-res', 5, p_enforce => true)), 'refused',
    'the hold counts against the cap: 6 held + 5 > 10 is refused'
);
select results_eq(
    $$select outcome, used, remaining from tenancy.track_usage('api_calls', 'c-res', 4, p_enforce => true)$$,
    $$values ('recorded', 4::numeric, 0::numeric)$$,
    '6 held + 4 fits'
);
select results_eq(
    $$select reservation_id, allowed, used, reserved, cap, remaining, expires_at from tenancy.reserve_usage('c-res', 'api_calls', 1)$$,
    $$values (null::uuid, false, 4::numeric, 6::numeric, 10::numeric, 0::numeric, null::timestamptz)$$,
    'a hold with no room: allowed false, no hold'
);
select results_eq(
    $$select allowed, used, reserved, remaining from tenancy.check_usage_enforcement('c-res', 'api_calls', 1)$$,
    $$values (false, 4::numeric, 6::numeric, 0::numeric)$$,
    'check_usage_enforcement counts the live hold'
);
select results_eq(
    $$select used, reserved, remaining from tenancy.customer_usage('c-res') where meter = 'api_calls'$$,
    $$values (4::numeric, 6::numeric, 0::numeric)$$,
    'customer_usage shows the live hold'
);
select results_eq(
    format($$select outcome, used, cap, remaining from tenancy.commit_reservation(%L, 3, '{"job": "j1"}')$$, :'res_1'),
    $$values ('recorded', 7::numeric, 10::numeric, 3::numeric)$$,
    'commit_reservation records 3 of the 6 held; the hold no longer counts'
);
select results_eq(
    $$select reserved, remaining from tenancy.check_usage_enforcement('c-res', 'api_calls')$$,
    $$values (0::numeric, 3::numeric)$$,
    'after the commit nothing is held'
);
select throws_ok(
    format($$select * from tenancy.commit_reservation(%L)$$, :'res_1'),
    'TN020',
    format('reservation %s is no longer held: committed at %s', :'res_1', now()),
    'commit_reservation of a committed hold: TN020'
);
select throws_ok(
    format($$select tenancy.release_reservation(%L)$$, :'res_1'),
    'TN020',
    format('reservation %s is no longer held: committed at %s', :'res_1', now()),
    'release_reservation of a committed hold: TN020'
);
select reservation_id as res_2 from tenancy.reserve_usage('c-res', 'api_calls', 3) \gset
select lives_ok(format($$select tenancy.release_reservation(%L)$$, :'res_2'), 'release_reservation of a live hold');
select results_eq(
    $$select used, reserved, remaining from tenancy.check_usage_enforcement('c-res', 'api_calls')$$,
    $$values (7::numeric, 0::numeric, 3::numeric)$$,
    'a released hold no longer counts and recorded nothing'
);
select throws_ok(
    format($$select tenancy.release_reservation(%L)$$, :'res_2'),
    'TN020',
    format('reservation %s is no longer held: released at %s', :'res_2', now()),
    'release_reservation of a released hold: TN020'
);
select throws_ok(
    format($$select * from tenancy.commit_reservation(%L)$$, :'res_2'),
    'TN020', null,
    'commit_reservation of a released hold: TN020'
);
select reservation_id as res_3 from tenancy.reserve_usage('c-res', 'api_calls', 3, '1 minute') \gset
select throws_ok(
    format($$select * from tenancy.commit_reservation(%L, 4)$$, :'res_3'),
    '22023',
    format('invalid committed value 4 for reservation %s: from 0 to the 3 held', :'res_3'),
    'commit_reservation refuses more than the amount held'
);
select throws_ok(
    format($$select * from tenancy.commit_reservation(%L, -1)$$, :'res_3'),
    '22023', null,
    'commit_reservation refuses a negative value'
);
select throws_ok(
    format($$select * from tenancy.commit_reservation(%L)$$, gen_random_uuid()),
    'P0002', null,
    'commit_reservation of an unknown hold: P0002'
);
select throws_ok(
    $$select tenancy.release_reservation(null)$$,
    'P0002',
    format('reservation NULL does not exist in tenant %s', :'tenant_a'),
    'release_reservation of NULL: P0002'
);
reset role;
select pg_temp.expire(:'res_3');
select pg_temp.act_as(:'tenant_a', :'member_a');
select results_eq(
    $$select reserved, remaining from tenancy.check_usage_enforcement('c-res', 'api_calls')
    union all select reserved, remaining from tenancy.customer_usage('c-res') where meter = 'api_calls'$$,
    $$values (0::numeric, 3::numeric), (0, 3)$$,
    'an expired hold no longer counts for check_usage_enforcement and customer_usage'
);
select throws_ok(
    format($$select * from tenancy.commit_reservation(%L)$$, :'res_3'),
    'TN020',
    format('reservation %s is no longer held: expired at %s', :'res_3', now() - interval '1 second'),
    'commit_reservation of an expired hold: TN020'
);
select throws_ok(
    format($$select tenancy.release_reservation(%L)$$, :'res_3'),
    'TN020', null,
    'release_reservation of an expired hold: TN020'
);
select results_eq(
    $$select outcome, used, remaining from tenancy.track_usage('api_calls', 'c-res', 3, p_enforce => true)$$,
    $$values ('recorded', 10::numeric, 0::numeric)$$,
    'an enforced event the expired hold was in the way of is recorded (the hold frees itself)'
);
reset role;
select results_eq(
    format($$select id, state from tenancy.usage_reservations where id in (%L, %L, %L) order by state$$, :'res_1', :'res_2', :'res_3'),
    format($$values (%L::uuid, 'committed'), (%L, 'expired'), (%L, 'released')$$, :'res_1', :'res_3', :'res_2'),
    'the holds are committed, released and expired'
);
select is(
    (
        select reservation_id from tenancy.usage_events
        where tenant_id = :'tenant_a' and reservation_id is not null
    ),
    :'res_1'::uuid,
    'the committed usage names its hold in the log'
);
select pg_temp.act_as(:'tenant_a', :'member_a');
select reservation_id as res_4 from tenancy.reserve_usage('c-res2', 'api_calls', 10) \gset
reset role;
select pg_temp.expire(:'res_4');
select pg_temp.act_as(:'tenant_a', :'member_a');
select results_eq(
    $$select allowed, reserved from tenancy.reserve_usage('c-res2', 'api_calls', 2)$$,
    $$values (true, 2::numeric)$$,
    'a hold the expired one was in the way of is made (the expired hold is swept)'
);
select reservation_id as res_5 from tenancy.reserve_usage('c-res2', 'api_calls', 3) \gset
select results_eq(
    format($$select outcome, used from tenancy.commit_reservation(%L)$$, :'res_5'),
    $$values ('recorded', 3::numeric)$$,
    'commit_reservation without a value records the amount held'
);
select throws_ok(
    $$select * from tenancy.reserve_usage('c-res', 'requests', 1)$$,
    '22023',
    'meter ''requests'' aggregates with count: only sum meters take reservations',
    'reserve_usage refuses a count meter (its events count 1 whatever their value)'
);
select results_eq(
    $$select allowed, reservation_id is not null, cap from tenancy.reserve_usage('c-soft', 'api_calls', 50)$$,
    $$values (true, true, 10::numeric)$$,
    'a soft cap never refuses a hold'
);
select throws_ok(
    $$select * from tenancy.reserve_usage('c-res', 'peak_gb', 1)$$,
    '22023',
    'meter ''peak_gb'' aggregates with max: only sum meters take reservations',
    'reserve_usage refuses a max meter'
);
select throws_ok(
    $$select * from tenancy.reserve_usage('c-res', 'seats', 1)$$,
    '22023', null,
    'reserve_usage refuses a unique_count meter'
);
select throws_ok(
    $$select * from tenancy.reserve_usage('c-res', 'api_calls', 0)$$,
    '22023',
    'invalid reservation amount 0 for meter ''api_calls'': a number above 0, at most 1e18',
    'reserve_usage refuses an amount of 0'
);
select throws_ok(
    $$select * from tenancy.reserve_usage('c-res', 'api_calls', null)$$, '22023', null, 'reserve_usage refuses a NULL amount'
);
select throws_ok(
    $$select * from tenancy.reserve_usage('c-res', 'api_calls', 'NaN')$$, '22023', null, 'reserve_usage refuses NaN'
);
select throws_ok(
    $$select * from tenancy.reserve_usage('c-res', 'api_calls', 1, '0')$$,
    '22023',
    'invalid reservation lifetime 00:00:00: above 0 and at most 24 hours',
    'reserve_usage refuses a lifetime of 0'
);
select throws_ok(
    $$select * from tenancy.reserve_usage('c-res', 'api_calls', 1, '24 hours 1 second')$$,
    '22023', null,
    'reserve_usage refuses a lifetime over 24 hours'
);
select throws_ok(
    $$select * from tenancy.reserve_usage('c-res', 'api_calls', 1, null)$$,
    '22023', null,
    'reserve_usage refuses a NULL lifetime'
);
select throws_ok(
    $$select * from tenancy.reserve_usage('c-res', 'nope', 1)$$,
    'P0002',
    format('meter ''nope'' does not exist in tenant %s', :'tenant_a'),
    'reserve_usage of an unknown meter: P0002'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'admin_a');
select reservation_id as res_8 from tenancy.reserve_usage('c-res4', 'api_calls', 1) \gset
select lives_ok(format($$select tenancy.release_reservation(%L)$$, :'res_8'), 'an admin reserves and releases');
reset role;

-- Alerts ---------------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select tenancy.track_usage('api_calls', 'c-alert', 7);
reset role;
select is(
    (select count(*)::integer from pg_temp.alerts(:'tenant_a', 'c-alert', 'api_calls')), 0, 'no alert under 80 %'
);
select pg_temp.act_as(:'tenant_a', :'member_a');
select tenancy.track_usage('api_calls', 'c-alert', 1);
select tenancy.track_usage('api_calls', 'c-alert', 1);
reset role;
select results_eq(
    format($$select threshold, used, cap from pg_temp.alerts(%L, 'c-alert', 'api_calls')$$, :'tenant_a'),
    $$values (0.8::numeric, 8::numeric, 10::numeric)$$,
    'crossing 80 % writes one alert; staying over it writes none'
);
select pg_temp.act_as(:'tenant_a', :'member_a');
select tenancy.track_usage('api_calls', 'c-alert', 1);
select tenancy.track_usage('api_calls', 'c-alert', 1, p_enforce => true);
select tenancy.track_usage('api_calls', 'c-alert', 5);
reset role;
select results_eq(
    format($$select period_start, threshold, used, cap from pg_temp.alerts(%L, 'c-alert', 'api_calls')$$, :'tenant_a'),
    format(
        $$select p.period_start, t.threshold, t.used, 10::numeric
        from tenancy.subscriptions as s
        cross join lateral tenancy.usage_period('month', s.period_anchor, now()) as p
        cross join (values (0.8, 8::numeric), (1, 10)) as t (threshold, used)
        where s.tenant_id = %L and s.customer_id = (
            select c.id from tenancy.customers as c where c.tenant_id = %L and c.external_id = 'c-alert'
        )
        order by t.threshold$$,
        :'tenant_a', :'tenant_a'
    ),
    'crossing 100 % writes one alert for the period; the refused event and going further write none'
);
select pg_temp.act_as(:'tenant_a', :'member_a');
select tenancy.track_usage('daily', 'c-alert2', 80, p_occurred_at => now() - interval '2 hours');
select tenancy.track_usage('daily', 'c-alert2', 85);
select tenancy.track_usage('daily', 'c-alert2', 15);
select tenancy.track_usage('daily', 'c-alert2', 1, p_occurred_at => now() - interval '3 hours');
reset role;
select results_eq(
    format($$select period_start, threshold, used from pg_temp.alerts(%L, 'c-alert2', 'daily')$$, :'tenant_a'),
    $$values
        (now() - interval '25 hours', 0.8::numeric, 80::numeric),
        (now() - interval '1 hour', 0.8, 85),
        (now() - interval '1 hour', 1, 100)$$,
    'alerts are per period: a backdated crossing alerts in its own period, the current period alerts again'
);
select pg_temp.act_as(:'tenant_a', :'member_a');
select tenancy.track_usage('api_calls', 'c-half', 5);
select tenancy.track_usage('api_calls', 'c-half', 5);
reset role;
select results_eq(
    format($$select threshold, used from pg_temp.alerts(%L, 'c-half', 'api_calls')$$, :'tenant_a'),
    $$values (0.5::numeric, 5::numeric)$$,
    'a tier''s own thresholds (50 %) replace 80 % and 100 %'
);
select pg_temp.act_as(:'tenant_a', :'member_a');
select tenancy.track_usage('peak_gb', 'c-alert', 7);
select tenancy.track_usage('peak_gb', 'c-alert', 7.5);
select tenancy.track_usage('projects', 'c-alert', 5, p_occurred_at => now() - interval '2 minutes');
select tenancy.track_usage('projects', 'c-alert', 1, p_occurred_at => now() - interval '1 minute');
select tenancy.track_usage('projects', 'c-alert', 5);
reset role;
select results_eq(
    format(
        $$select 'peak_gb', threshold, used from pg_temp.alerts(%L, 'c-alert', 'peak_gb')
        union all select 'projects', threshold, used from pg_temp.alerts(%L, 'c-alert', 'projects')$$,
        :'tenant_a', :'tenant_a'
    ),
    $$values ('peak_gb', 0.8::numeric, 7::numeric), ('projects', 0.8, 5), ('projects', 1, 5)$$,
    'max and latest meters alert once per threshold and period, even when the value drops and rises again'
);
select pg_temp.act_as(:'tenant_a', :'member_a');
select count(*) from tenancy.track_usage_batch(
    '[{"meter": "api_calls", "customer": "b-alert", "value": 5}, {"meter": "api_calls", "customer": "b-alert", "value": 5},
      {"meter": "api_calls", "customer": "b-alert", "value": 1}]'
);
select count(*) from tenancy.track_usage_batch('[{"meter": "api_calls", "customer": "b-alert", "value": 1}]');
reset role;
select results_eq(
    format($$select threshold, used from pg_temp.alerts(%L, 'b-alert', 'api_calls')$$, :'tenant_a'),
    $$values (0.8::numeric, 11::numeric), (1, 11)$$,
    'a batch writes the alerts of the thresholds it crossed, once'
);

-- usage_summary --------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select tenancy.track_usage('api_calls', 'g-1', 2, '{"region": "eu"}');
select tenancy.track_usage('api_calls', 'g-1', 3, '{"region": "us"}');
select tenancy.track_usage('api_calls', 'g-1', 4, '{"region": "us"}');
select tenancy.track_usage('api_calls', 'g-1', 5);
select tenancy.track_usage('requests', 'g-1', 1, '{"region": "eu"}');
select tenancy.track_usage('seats', 'g-1', p_properties => '{"user": "a", "region": "eu"}');
select tenancy.track_usage('seats', 'g-1', p_properties => '{"user": "a", "region": "us"}');
select throws_ok(
    $$select * from tenancy.usage_summary(now() - interval '1 day', now())$$,
    '42501',
    format('role member of tenant %s cannot read usage summaries', :'tenant_a'),
    'a member cannot read usage summaries: 42501'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok(
    $$select * from tenancy.usage_summary(now() - interval '1 day', now())$$,
    '42501', null,
    'a viewer cannot read usage summaries: 42501'
);
reset role;
-- The counters, as the superuser reads them, for the comparison below.
select
    string_agg(
        format('(%L, %L, %L::timestamptz, %s::numeric, %s::bigint)', c.external_id, m.key, u.period_start, u.used, u.events),
        ', '
    ) as counter_rows
from tenancy.usage_counters as u
inner join tenancy.customers as c on u.tenant_id = c.tenant_id and u.customer_id = c.id
inner join tenancy.meters as m on u.tenant_id = m.tenant_id and u.meter_id = m.id
where u.tenant_id = :'tenant_a' and u.events > 0
\gset
-- What the owner reads, kept in psql variables and compared as the superuser below (pgTAP's
-- comparisons create temporary tables, which the application role may not).
select pg_temp.act_as(:'tenant_a', :'owner_a');
select
    string_agg(
        format('(%L, %L, %L::timestamptz, %s::numeric, %s::bigint)', s.customer, s.meter, s.period_start, s.value, s.events),
        ', '
    ) as summary_rows
from tenancy.usage_summary('-infinity', 'infinity') as s
\gset
select
    string_agg(
        format('(%L, %L, %L, %s::numeric, %s::bigint)', s.customer, s.meter, s.group_value, s.value, s.events),
        ', ' order by s.customer, s.meter, s.period_start, s.group_value
    ) as region_rows
from tenancy.usage_summary(now() - interval '1 minute', now() + interval '1 minute', 'region') as s
where s.customer = 'g-1'
\gset
select
    (
        select sum(s.value) from tenancy.usage_summary('-infinity', 'infinity', 'region') as s
        where s.customer = 'g-1' and s.meter = 'api_calls'
    ) as region_sum,
    (select c.used from tenancy.check_usage_enforcement('g-1', 'api_calls') as c) as checked_used
\gset
reset role;
select set_eq(
    'values ' || :'summary_rows',
    'values ' || :'counter_rows',
    'usage_summary over all time equals every counter (used and events) of every customer, meter and period'
);
select results_eq(
    'values ' || :'region_rows',
    $$values
        ('g-1', 'api_calls', 'eu', 2::numeric, 1::bigint), ('g-1', 'api_calls', 'us', 7, 2), ('g-1', 'api_calls', null, 5, 1),
        ('g-1', 'requests', 'eu', 1, 1),
        ('g-1', 'seats', 'eu', 1, 1), ('g-1', 'seats', 'us', 1, 1)$$,
    'usage_summary grouped by an event property: one row per value (NULL without it)'
);
select results_eq(
    format('values (%s::numeric), (%s)', :'region_sum', :'checked_used'),
    $$values (14::numeric), (14)$$,
    'the groups of a sum meter add up to its counter'
);
select pg_temp.act_as(:'tenant_a', :'owner_a');
select is(
    (
        select count(*)::integer from tenancy.usage_summary(now() - interval '1 minute', now())
        where customer = 'g-1'
    ),
    0,
    'usage_summary excludes events at p_to'
);
select is(
    (
        select sum(value) from tenancy.usage_summary(now() - interval '2 hours', now() - interval '1 hour')
        where customer = 'c-back' and meter = 'daily'
    ),
    8::numeric,
    'usage_summary includes events at p_from (the one backdated 2 hours)'
);
select throws_ok(
    $$select * from tenancy.usage_summary(now(), now() - interval '1 second')$$,
    '22023',
    format('invalid summary range from %s to %s', now(), now() - interval '1 second'),
    'usage_summary refuses a range that ends before it starts'
);
select throws_ok(
    $$select * from tenancy.usage_summary(null, now())$$,
    '22023',
    format('invalid summary range from NULL to %s', now()),
    'usage_summary refuses a NULL bound'
);
select throws_ok(
    $$select * from tenancy.usage_summary(now() - interval '1 day', now(), '')$$,
    '22023',
    'invalid group-by property '''': 1 to 100 characters',
    'usage_summary refuses an empty group-by property'
);
select throws_ok(
    format($$select * from tenancy.usage_summary(now() - interval '1 day', now(), %L)$$, repeat('p', 101)),
    '22023', null,
    'usage_summary refuses a group-by property of 101 characters'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'admin_a');
select isnt(
    (select count(*)::integer from tenancy.usage_summary('-infinity', 'infinity')), 0, 'an admin reads usage summaries'
);
reset role;

-- ensure_usage_partitions ----------------------------------------------------------------------

select
    date_trunc('month', now() at time zone 'UTC') as month_0,
    to_char(date_trunc('month', now() at time zone 'UTC') + interval '4 months', 'YYYY_MM') as month_4,
    to_char(date_trunc('month', now() at time zone 'UTC') + interval '5 months', 'YYYY_MM') as month_5,
    to_char(date_trunc('month', now() at time zone 'UTC') + interval '6 months', 'YYYY_MM') as month_6,
    to_char(date_trunc('month', now() at time zone 'UTC') + interval '7 months', 'YYYY_MM') as month_7,
    (
        select count(*) from generate_series(4, 5) as i
        where to_regclass(format('tenancy.usage_events_%s', to_char(date_trunc('month', now() at time zone 'UTC') + make_interval(months => i), 'YYYY_MM'))) is null
    ) as missing_4_5
\gset
set local role tenancy_app;
select throws_ok(
    $$select tenancy.ensure_usage_partitions(5)$$,
    '42501', null,
    'tenancy_app may not run ensure_usage_partitions'
);
reset role;
set local role tenancy_admin;
select is(tenancy.ensure_usage_partitions(3), 0, 'the job made this month''s partition and the next three''s: nothing left to make');
select is(tenancy.ensure_usage_partitions(0), 0, 'ensure_usage_partitions(0): this month only, which exists');
select is(tenancy.ensure_usage_partitions(5), :missing_4_5, 'ensure_usage_partitions(5) makes the months missing (tenancy_admin)');
select throws_ok(
    $$select tenancy.ensure_usage_partitions(-1)$$,
    '22023',
    'months ahead -1 is out of range: 0 to 24 months after the current one',
    'ensure_usage_partitions refuses -1'
);
select throws_ok(
    $$select tenancy.ensure_usage_partitions(25)$$, '22023', null, 'ensure_usage_partitions refuses 25'
);
select throws_ok(
    $$select tenancy.ensure_usage_partitions(null)$$,
    '22023',
    'months ahead NULL is out of range: 0 to 24 months after the current one',
    'ensure_usage_partitions refuses NULL'
);
reset role;
select results_eq(
    format(
        $$select c.relname::text collate "default", c.relrowsecurity, c.relforcerowsecurity,
            pg_get_expr(c.relpartbound, c.oid) collate "default",
            c.relacl::text ~ 'tenancy_app'
        from pg_class as c where c.relnamespace = 'tenancy'::regnamespace and c.relname in (%L, %L) order by 1$$,
        'usage_events_' || :'month_4', 'usage_events_' || :'month_5'
    ),
    format(
        $$values
            (%L, true, true, %L, false),
            (%L, true, true, %L, false)$$,
        'usage_events_' || :'month_4',
        format('FOR VALUES FROM (%L) TO (%L)', (:'month_0'::timestamp + interval '4 months') at time zone 'UTC', (:'month_0'::timestamp + interval '5 months') at time zone 'UTC'),
        'usage_events_' || :'month_5',
        format('FOR VALUES FROM (%L) TO (%L)', (:'month_0'::timestamp + interval '5 months') at time zone 'UTC', (:'month_0'::timestamp + interval '6 months') at time zone 'UTC')
    ),
    'each partition holds one UTC month, with row level security enabled and forced and no grant to tenancy_app'
);
-- A month some other partition covers part of, and a month the default partition holds events
-- of (planted by the superuser: the API accepts no event that far ahead), are skipped.
select format(
    'create table tenancy.usage_events_planted partition of tenancy.usage_events for values from (%L) to (%L)',
    (:'month_0'::timestamp + interval '6 months 1 day') at time zone 'UTC',
    (:'month_0'::timestamp + interval '6 months 2 days') at time zone 'UTC'
) \gexec
insert into tenancy.usage_events_default (tenant_id, customer_id, meter_id, period_start, value, occurred_at)
select
    c.tenant_id,
    c.id as customer_id,
    m.id as meter_id,
    '-infinity'::timestamptz as period_start,
    1 as value,
    (:'month_0'::timestamp + interval '7 months 3 days') at time zone 'UTC' as occurred_at
from tenancy.customers as c, tenancy.meters as m
where c.tenant_id = :'tenant_a' and c.external_id = 'g-1' and m.tenant_id = :'tenant_a' and m.key = 'api_calls';
set local role tenancy_service;
set local client_min_messages = warning;
select is(
    tenancy.ensure_usage_partitions(7), 0,
    'ensure_usage_partitions (tenancy_service) skips both months with a notice and creates nothing'
);
reset client_min_messages;
reset role;
select results_eq(
    format(
        $$select to_regclass(%L) is null, to_regclass(%L) is null$$,
        'tenancy.usage_events_' || :'month_6', 'tenancy.usage_events_' || :'month_7'
    ),
    $$values (true, true)$$,
    'the skipped months have no partition of their own'
);
select is(
    (
        select count(*)::integer from tenancy.usage_events_default
        where tenant_id = :'tenant_a'
    ),
    1,
    'the default partition keeps its events'
);

select * from finish();
rollback;
