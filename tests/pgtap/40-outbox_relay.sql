-- Outbox relay and maintenance: relay_claim (heads of ordering keys, leases, round-robin over tenants), relay_complete's outcomes, replay, delivery_status, relay_status, maintain_outbox's daily partitions, and the outbox's sources (usage alerts, tenant changes).
-- The relay's functions run as tenancy_service, the relay's role; replay and delivery_status as
-- tenancy_app in contexts set by tenancy_service (owners and admins replay, members and viewers
-- are refused). Three tenants are created and sorted by id (t1 < t2 < t3) to follow the claim's
-- round-robin. The superuser reads the rows behind the functions, names each event with a label
-- (pg_temp.labels), moves a lease's expiry or a retry's next attempt into the past as the clock
-- would (now() does not move inside the test's transaction), and builds past days' partitions by
-- hand for maintain_outbox to drop. Deliveries already pending when the file starts (a seeded
-- database's, the tenants' own $groupidentify) are marked delivered, inside the test's
-- transaction, so that the claims and counts below see this file's deliveries only.

begin;
select plan(102);

\ir setup/helpers.psql

create temporary table labels (label text primary key, event_id uuid not null unique);
create temporary table claims (
    batch integer not null,
    n bigint not null,
    relay text not null,
    tenant_id uuid not null,
    event_id uuid not null,
    destination_id uuid not null,
    occurred_at timestamptz not null,
    attempts integer not null,
    ordering_key text not null,
    payload jsonb
);

-- id(label): an event's id.
create function pg_temp.id(p_label text)
returns uuid
language sql
as $$
    select l.event_id from pg_temp.labels as l where l.label = p_label
$$;

-- track(tenant, user, label, distinct id): an analytics event enqueued as tenancy_app in the
-- user's context, named label.
create function pg_temp.track(p_tenant uuid, p_user text, p_label text, p_distinct_id text)
returns uuid
language plpgsql
as $$
declare
    v_id uuid;
begin
    perform pg_temp.act_as(p_tenant, p_user);
    v_id := tenancy.track_event('page_view', p_distinct_id, jsonb_build_object('label', p_label));
    reset role;
    insert into pg_temp.labels (label, event_id) values (p_label, v_id);
    return v_id;
end
$$;

-- log(tenant, user, label, connector.action, ordering key): a connector event enqueued as
-- tenancy_app in the user's context, named label.
create function pg_temp.log(p_tenant uuid, p_user text, p_label text, p_type text, p_key text)
returns uuid
language plpgsql
as $$
declare
    v_id uuid;
begin
    perform pg_temp.act_as(p_tenant, p_user);
    v_id := tenancy.log_connector_event(
        split_part(p_type, '.', 1), split_part(p_type, '.', 2), jsonb_build_object('label', p_label), p_key
    );
    reset role;
    insert into pg_temp.labels (label, event_id) values (p_label, v_id);
    return v_id;
end
$$;

-- delivery_label(tenant, event, destination): label@destination (an endpoint's name, or posthog).
create function pg_temp.delivery_label(p_tenant uuid, p_event uuid, p_destination uuid)
returns text
language sql
as $$
    select coalesce((select l.label from pg_temp.labels as l where l.event_id = p_event), p_event::text) || '@'
        || coalesce(
            (select e.name from tenancy.connector_endpoints as e where e.tenant_id = p_tenant and e.id = p_destination),
            case when p_destination = '00000000-0000-0000-0000-000000000000' then 'posthog' else p_destination::text end
        )
$$;

-- claim(relay, analytics, limit, per tenant, after tenant, per key): relay_claim as
-- tenancy_service; its rows are kept in pg_temp.claims under a new batch number, returned.
create function pg_temp.claim(
    p_relay text,
    p_analytics boolean,
    p_limit integer default 500,
    p_per_tenant integer default 50,
    p_after uuid default null,
    p_per_key integer default 1
)
returns integer
language plpgsql
as $$
declare
    v_rows jsonb;
    v_batch integer;
begin
    set local role tenancy_service;
    select coalesce(jsonb_agg(to_jsonb(c) order by c.n), '[]') into v_rows
    from tenancy.relay_claim(p_relay, p_analytics, p_limit, p_per_tenant, 30, p_after, p_per_key)
        with ordinality as c (tenant_id, event_id, destination_id, occurred_at, attempts, ordering_key, payload, n);
    reset role;
    select coalesce(max(c.batch), 0) + 1 into v_batch from pg_temp.claims as c;
    insert into pg_temp.claims
    select v_batch, x.n, p_relay, x.tenant_id, x.event_id, x.destination_id, x.occurred_at, x.attempts, x.ordering_key, x.payload
    from jsonb_to_recordset(v_rows) as x (
        n bigint, tenant_id uuid, event_id uuid, destination_id uuid, occurred_at timestamptz, attempts integer,
        ordering_key text, payload jsonb
    );
    return v_batch;
end
$$;

-- claimed(batch): the deliveries a claim leased, as label@destination, in the order returned.
create function pg_temp.claimed(p_batch integer)
returns text[]
language sql
as $$
    select coalesce(array_agg(pg_temp.delivery_label(c.tenant_id, c.event_id, c.destination_id) order by c.n), '{}')
    from pg_temp.claims as c
    where c.batch = p_batch
$$;

-- sorted(texts): the texts in byte order.
create function pg_temp.sorted(p_texts text[])
returns text[]
language sql
as $$
    select coalesce(array_agg(t.v order by t.v collate "C"), '{}') from unnest(p_texts) as t (v)
$$;

-- delivery(label@destination): the delivery row.
create function pg_temp.delivery(p_delivery text)
returns setof tenancy.deliveries
language sql
as $$
    select d.*
    from tenancy.deliveries as d
    where
        d.event_id = pg_temp.id(split_part(p_delivery, '@', 1))
        and pg_temp.delivery_label(d.tenant_id, d.event_id, d.destination_id) = p_delivery
$$;

-- complete(relay, deliveries, outcomes, statuses, errors, retry after, max attempts):
-- relay_complete as tenancy_service for deliveries named label@destination.
create function pg_temp.complete(
    p_relay text,
    p_deliveries text[],
    p_outcomes text[],
    p_statuses integer[] default null,
    p_errors text[] default null,
    p_retry_after numeric[] default null,
    p_max_attempts integer default 12
)
returns integer
language plpgsql
as $$
declare
    v_tenants uuid[];
    v_events uuid[];
    v_destinations uuid[];
    v_occurred timestamptz[];
    v_count integer;
begin
    select array_agg(d.tenant_id order by o.i), array_agg(d.event_id order by o.i),
        array_agg(d.destination_id order by o.i), array_agg(d.occurred_at order by o.i)
    into v_tenants, v_events, v_destinations, v_occurred
    from unnest(p_deliveries) with ordinality as o (delivery, i)
    cross join lateral pg_temp.delivery(o.delivery) as d;
    set local role tenancy_service;
    v_count := tenancy.relay_complete(
        p_relay, v_tenants, v_events, v_destinations, v_occurred, p_outcomes,
        coalesce(p_statuses, array_fill(null::integer, array[cardinality(p_deliveries)])),
        coalesce(p_errors, array_fill(null::text, array[cardinality(p_deliveries)])),
        coalesce(p_retry_after, array_fill(null::numeric, array[cardinality(p_deliveries)])),
        p_max_attempts
    );
    reset role;
    return v_count;
end
$$;

-- old_partition(table, day, name): a daily partition of a past day, as tenancy.maintain_outbox names
-- and owns them (made by the superuser: maintain_outbox makes them from today on only).
create function pg_temp.old_partition(p_table text, p_day date, p_name text default null)
returns text
language plpgsql
as $$
declare
    v_name text := coalesce(p_name, p_table || '_p' || to_char(p_day, 'YYYYMMDD'));
begin
    execute format('create table tenancy.%I (like tenancy.%I including defaults including constraints)', v_name, p_table);
    execute format(
        'alter table tenancy.%I attach partition tenancy.%I for values from (%L) to (%L)',
        p_table, v_name, to_char(p_day, 'YYYY-MM-DD') || ' 00:00:00+00', to_char(p_day + 1, 'YYYY-MM-DD') || ' 00:00:00+00'
    );
    execute format('alter table tenancy.%I owner to tenancy_owner', v_name);
    return v_name;
end
$$;

select
    'auth0|' || gen_random_uuid() as owner_x,
    'auth0|' || gen_random_uuid() as admin_a,
    'auth0|' || gen_random_uuid() as member_a,
    'auth0|' || gen_random_uuid() as viewer_a,
    'or-a-' || left(md5(random()::text), 8) as slug_a,
    'or-b-' || left(md5(random()::text), 8) as slug_b,
    'or-c-' || left(md5(random()::text), 8) as slug_c,
    (now() at time zone 'UTC')::date as today
\gset

-- The usage log's partition of this month, as the daily job makes it.
select tenancy.ensure_usage_partitions(0) >= 0 as usage_partitions_made \gset
set local role tenancy_admin;
select
    tenancy.create_tenant(:'slug_a', 'Outbox relay A', :'owner_x') as tenant_a,
    tenancy.create_tenant(:'slug_b', 'Outbox relay B', :'owner_x') as tenant_b,
    tenancy.create_tenant(:'slug_c', 'Outbox relay C', :'owner_x') as tenant_c
\gset
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_x');
select tenancy.add_member(:'admin_a', 'admin');
select tenancy.add_member(:'member_a', 'member');
select tenancy.add_member(:'viewer_a', 'viewer');
reset role;
select
    s.ids[1] as t1,
    s.ids[2] as t2,
    s.ids[3] as t3
from (select array_agg(v.id order by v.id) as ids from (values (:'tenant_a'::uuid), (:'tenant_b'), (:'tenant_c')) as v (id)) as s
\gset

-- Sources: tenant changes enqueue $groupidentify ----------------------------------------------

select results_eq(
    format(
        $$select a.event, a.distinct_id, a.ordering_key, a.actor, a.properties
        from tenancy.analytics_events as a where a.tenant_id = %L$$,
        :'tenant_a'
    ),
    format(
        $$select '$groupidentify', '$tenant_' || t.id, '$tenant_' || t.id, null::text,
            jsonb_build_object(
                '$group_type', 'tenant', '$group_key', t.id::text,
                '$group_set', jsonb_build_object('name', 'Outbox relay A', 'slug', %L, 'status', 'active', 'created_at', t.created_at)
            )
        from tenancy.tenants as t where t.id = %L$$,
        :'slug_a', :'tenant_a'
    ),
    'creating a tenant enqueues $groupidentify of group tenant, keyed by its id, with its name, slug and status'
);
select is(
    (
        select array_agg(d.destination_id::text || ':' || d.source)
        from tenancy.deliveries as d
        where d.tenant_id = :'tenant_a'
    ),
    '{00000000-0000-0000-0000-000000000000:analytics}',
    'the $groupidentify has one delivery, to PostHog'
);

set local role tenancy_admin;
select tenancy.rename_tenant_slug(:'tenant_a', :'slug_a' || '-new');
reset role;
update tenancy.tenants set name = 'Outbox relay A renamed'
where id = :'tenant_a';
select pg_temp.act_as(:'tenant_a', :'owner_x');
select tenancy.set_branding('{"display_name": "Acme Analytics"}') is not null as branded \gset
reset role;
update tenancy.tenants set updated_at = now()
where id = :'tenant_a';
select results_eq(
    format(
        $$select a.properties -> '$group_set' ->> 'slug', a.properties -> '$group_set' ->> 'name',
            a.properties -> '$group_set' ->> 'display_name', a.distinct_id
        from tenancy.analytics_events as a where a.tenant_id = %L and a.event = '$groupidentify' order by a.id$$,
        :'tenant_a'
    ),
    format(
        $$values
            (%L, 'Outbox relay A', null::text, %L),
            (%L, 'Outbox relay A', null, %L),
            (%L, 'Outbox relay A renamed', null, %L),
            (%L, 'Outbox relay A renamed', 'Acme Analytics', %L)$$,
        :'slug_a', '$tenant_' || :'tenant_a', :'slug_a' || '-new', '$tenant_' || :'tenant_a',
        :'slug_a' || '-new', '$tenant_' || :'tenant_a', :'slug_a' || '-new', '$tenant_' || :'tenant_a'
    ),
    'a new slug, a new name and new branding each enqueue $groupidentify with the group''s properties; other updates do not'
);
select is(
    (
        select count(*)::integer from tenancy.deliveries
        where tenant_id = :'tenant_a' and destination_id = '00000000-0000-0000-0000-000000000000'
    ),
    4,
    'each $groupidentify goes to PostHog'
);

-- Sources: a usage alert enqueues usage.alert ----------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_x');
select endpoint_id as usage_hook from tenancy.configure_webhook('usage-hook', 'https://example.com/usage', '{usage.*}') \gset
select endpoint_id as billing_hook from tenancy.configure_webhook('billing-hook', 'https://example.com/billing', '{billing.*}') \gset
select tenancy.create_meter('api_calls') is not null as meter_made \gset
select tenancy.create_tier('capped', 10, '{"api_calls": 10}') is not null as tier_made \gset
select tenancy.subscribe('cust-1', 'capped') is not null as subscribed \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select outcome as usage_outcome from tenancy.track_usage('api_calls', 'cust-1', 8) \gset
select outcome as usage_outcome_2 from tenancy.track_usage('api_calls', 'cust-1', 2) \gset
reset role;
select min(period_start) as alert_period from tenancy.usage_alerts
where tenant_id = :'tenant_a' \gset
select results_eq(
    format(
        $$select c.connector, c.action, c.ordering_key, c.actor, c.payload - 'period_start',
            (c.payload ->> 'period_start')::timestamptz
        from tenancy.connector_events as c where c.tenant_id = %L and c.connector = 'usage' order by c.id$$,
        :'tenant_a'
    ),
    format(
        $$values
            ('usage', 'alert', 'usage:cust-1', null::text,
                '{"customer": "cust-1", "meter": "api_calls", "threshold": 0.8, "used": 8, "cap": 10}'::jsonb, %L::timestamptz),
            ('usage', 'alert', 'usage:cust-1', null,
                '{"customer": "cust-1", "meter": "api_calls", "threshold": 1, "used": 10, "cap": 10}', %L)$$,
        :'alert_period', :'alert_period'
    ),
    'crossing 80 % and 100 % of a cap enqueues usage.alert twice, with the customer, meter, threshold, usage, cap and period, ordered per customer'
);
select is(
    (
        select array_agg(e.name order by c.id)
        from tenancy.connector_events as c
        inner join tenancy.deliveries as d on c.tenant_id = d.tenant_id and c.id = d.event_id
        inner join tenancy.connector_endpoints as e on d.tenant_id = e.tenant_id and d.destination_id = e.id
        where c.tenant_id = :'tenant_a' and c.connector = 'usage'
    ),
    '{usage-hook,usage-hook}',
    'usage.alert reaches the webhook filtered on usage.*, not the one on billing.*'
);

-- Sources: a security event enqueues security.<kind> ----------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_x');
select endpoint_id as security_hook from tenancy.configure_webhook('security-hook', 'https://example.com/security', '{security.*}') \gset
select id as key_id from tenancy.create_api_key('outbox key', 'member') \gset
reset role;
select results_eq(
    format(
        $$select c.connector, c.action, c.ordering_key, c.payload ->> 'kind', c.payload ->> 'api_key_id', c.payload ->> 'user_id'
        from tenancy.connector_events as c where c.tenant_id = %L and c.connector = 'security'$$,
        :'tenant_a'
    ),
    format($$values ('security', 'api_key_created', 'security', 'api_key.created', %L, %L)$$, :'key_id', :'owner_x'),
    'creating an API key enqueues security.api_key_created with the key and the user'
);
select is(
    (
        select array_agg(e.name)
        from tenancy.connector_events as c
        inner join tenancy.deliveries as d on c.tenant_id = d.tenant_id and c.id = d.event_id
        inner join tenancy.connector_endpoints as e on d.tenant_id = e.tenant_id and d.destination_id = e.id
        where c.tenant_id = :'tenant_a' and c.connector = 'security'
    ),
    '{security-hook}',
    'security.api_key_created reaches the webhook filtered on security.* only'
);

-- What was pending before is done: the claims below see this file's deliveries alone.
update tenancy.deliveries set delivered_at = coalesce(delivered_at, now()), dead_at = null, lease_until = null
where delivered_at is null or dead_at is not null or lease_until is not null;

-- relay_claim: round-robin over tenants ---------------------------------------------------------

select count(pg_temp.track(:'t1', :'owner_x', 't1-u' || n, 'u' || n)) as tracked from generate_series(1, 6) as n \gset
select
    pg_temp.track(:'t2', :'owner_x', 't2-u1', 'u1') as t2_u1,
    pg_temp.track(:'t3', :'owner_x', 't3-u1', 'u1') as t3_u1
\gset

select pg_temp.claim('relay-1', true, 4, 2) as b \gset
select is(
    pg_temp.claimed(:b),
    '{t1-u1@posthog,t1-u2@posthog,t2-u1@posthog,t3-u1@posthog}',
    'a claim takes at most p_per_tenant of each tenant, in tenant order: t1''s backlog of 6 does not starve t2 and t3'
);
select results_eq(
    format($$select distinct relay, attempts from pg_temp.claims where batch = %s$$, :b),
    $$values ('relay-1', 1)$$,
    'each claimed delivery counts an attempt'
);
select results_eq(
    format(
        $$select payload from pg_temp.claims where batch = %s and event_id = %L$$, :b, pg_temp.id('t1-u1')
    ),
    format(
        $$values (jsonb_build_object('event', 'page_view', 'distinct_id', 'u1', 'properties', '{"label": "t1-u1"}'::jsonb, 'actor', %L))$$,
        :'owner_x'
    ),
    'an analytics claim carries the event, distinct id, properties and actor'
);
select results_eq(
    $$select leased_by, lease_until = now() + interval '30 seconds', attempts, ordering_key from pg_temp.delivery('t2-u1@posthog')$$,
    $$values ('relay-1', true, 1, 'u1')$$,
    'a claimed delivery is leased to the relay for the lease'
);

select
    pg_temp.track(:'t2', :'owner_x', 't2-u2', 'u2') as t2_u2,
    pg_temp.track(:'t3', :'owner_x', 't3-u2', 'u2') as t3_u2
\gset
select pg_temp.claim('relay-1', true, 2, 2, :'t1') as b \gset
select is(
    pg_temp.claimed(:b),
    '{t2-u2@posthog,t3-u2@posthog}',
    'a claim after t1 serves t2 and t3 first: their new events go before t1''s backlog'
);
select pg_temp.claim('relay-1', true, 10, 10, :'t3') as b \gset
select is(
    pg_temp.claimed(:b),
    '{t1-u3@posthog,t1-u4@posthog,t1-u5@posthog,t1-u6@posthog}',
    'a claim after t3 wraps around to t1'
);
select pg_temp.track(:'t2', :'owner_x', 't2-u1b', 'u1') as t2_u1b \gset
select pg_temp.claim('relay-2', true) as b \gset
select is(pg_temp.claimed(:b), '{}', 'nothing more is due: every head is leased, and t2''s second u1 event waits for its first');

select is(
    pg_temp.complete(
        'relay-1', '{t1-u1@posthog,t1-u2@posthog,t1-u3@posthog,t1-u4@posthog,t1-u5@posthog}',
        '{delivered,delivered,dead,dead,retry}', '{200,200,400,400,500}'
    ),
    5,
    'relay_complete records five outcomes'
);
set local role tenancy_service;
select results_eq(
    $$select kind, pending, in_flight, dead, oldest_pending = now() from tenancy.relay_status where source = 'analytics'$$,
    $$values ('posthog', 2::bigint, 5::bigint, 2::bigint, true)$$,
    'relay_status: 2 pending (a retry backing off, an event behind a leased one), 5 in flight, 2 dead'
);
reset role;

-- relay_claim: the head of each ordering key ----------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_x');
select endpoint_id as crm_hook from tenancy.configure_webhook('crm-hook', 'https://example.com/crm', '{crm.*}') \gset
reset role;
select count(pg_temp.log(:'tenant_a', :'owner_x', 'c' || n, 'crm.sync', 'k1')) as logged from generate_series(1, 4) as n \gset
select pg_temp.log(:'tenant_a', :'owner_x', 'c5', 'crm.sync', 'k2') as c5 \gset

select pg_temp.claim('relay-1', false) as b \gset
select is(pg_temp.claimed(:b), '{c1@crm-hook,c5@crm-hook}', 'a claim leases the earliest pending delivery of each ordering key only');
select results_eq(
    format($$select ordering_key, attempts, payload from pg_temp.claims where batch = %s order by n$$, :b),
    format(
        $$values
            ('k1', 1, jsonb_build_object('connector', 'crm', 'action', 'sync', 'payload', '{"label": "c1"}'::jsonb, 'actor', %L)),
            ('k2', 1, jsonb_build_object('connector', 'crm', 'action', 'sync', 'payload', '{"label": "c5"}'::jsonb, 'actor', %L))$$,
        :'owner_x', :'owner_x'
    ),
    'a connector claim carries the connector, action, payload and actor'
);
select pg_temp.claim('relay-2', false) as b \gset
select is(pg_temp.claimed(:b), '{}', 'another relay gets nothing: the heads are leased, and the later events wait behind them');
select is(pg_temp.complete('relay-1', '{c1@crm-hook}', '{delivered}', '{200}'), 1, 'relay-1 records c1 delivered');
select results_eq(
    $$select delivered_at = now(), dead_at, last_status, lease_until, leased_by, attempts from pg_temp.delivery('c1@crm-hook')$$,
    $$values (true, null::timestamptz, 200, null::timestamptz, null::text, 1)$$,
    'delivered: delivered_at set, the lease released'
);
select pg_temp.claim('relay-2', false) as b \gset
select is(pg_temp.claimed(:b), '{c2@crm-hook}', 'once c1 is delivered, c2 is the head of k1');
select pg_temp.claim('relay-2', false, p_per_key => 3) as b \gset
select is(pg_temp.claimed(:b), '{}', 'even with p_per_key 3, c3 and c4 wait while c2 is in flight');
select is(pg_temp.complete('relay-2', '{c2@crm-hook}', '{delivered}', '{204}'), 1, 'relay-2 records c2 delivered');
select pg_temp.claim('relay-1', false, p_per_key => 2) as b \gset
select is(pg_temp.claimed(:b), '{c3@crm-hook,c4@crm-hook}', 'p_per_key 2 leases the next two events of k1, in order');

-- Leases expire; a relay that lost its lease records nothing ------------------------------------

update tenancy.deliveries set lease_until = now() - interval '1 second'
where event_id = pg_temp.id('c5');
select pg_temp.claim('relay-2', false) as b \gset
select is(pg_temp.claimed(:b), '{c5@crm-hook}', 'once relay-1''s lease of c5 expired, relay-2 claims it');
select results_eq(
    $$select attempts, leased_by from pg_temp.delivery('c5@crm-hook')$$,
    $$values (2, 'relay-2')$$,
    'the second lease counts a second attempt'
);
select is(pg_temp.complete('relay-1', '{c5@crm-hook}', '{delivered}', '{200}'), 0, 'relay-1''s late completion records nothing');
select results_eq(
    $$select delivered_at, dead_at, last_status, leased_by, attempts from pg_temp.delivery('c5@crm-hook')$$,
    $$values (null::timestamptz, null::timestamptz, null::integer, 'relay-2', 2)$$,
    'c5 is still relay-2''s, unchanged'
);
select is(pg_temp.complete('relay-2', '{c5@crm-hook}', '{delivered}', '{200}'), 1, 'relay-2 records it');

-- relay_complete's outcomes -------------------------------------------------------------------

select count(pg_temp.log(:'tenant_a', :'owner_x', 'o' || n, 'crm.sync', 'o' || n)) as logged from generate_series(1, 6) as n \gset
select pg_temp.log(:'tenant_a', :'owner_x', 'o1b', 'crm.sync', 'o1') as o1b \gset
select pg_temp.claim('relay-1', false) as b \gset
select is(
    pg_temp.claimed(:b),
    '{o1@crm-hook,o2@crm-hook,o3@crm-hook,o4@crm-hook,o5@crm-hook,o6@crm-hook}',
    'six keys, six heads leased'
);
select is(
    pg_temp.complete(
        'relay-1', '{o1@crm-hook,o2@crm-hook,o3@crm-hook,o4@crm-hook,o5@crm-hook}',
        '{retry,retry,dead,defer,defer}', '{500,429,400,null,null}', '{HTTP 500,HTTP 429,HTTP 400,null,null}',
        '{null,120,null,30,null}'
    ),
    5,
    'retry, retry after 120 s, dead, defer 30 s, defer: five recorded'
);
select results_eq(
    $$select next_attempt_at between now() + interval '3.75 seconds' and now() + interval '6.25 seconds',
        attempts, last_status, last_error, dead_at, lease_until, leased_by
    from pg_temp.delivery('o1@crm-hook')$$,
    $$values (true, 1, 500, 'HTTP 500', null::timestamptz, null::timestamptz, null::text)$$,
    'retry: tried again after 5 s (with jitter) after the first attempt, the status and error kept'
);
select results_eq(
    $$select next_attempt_at - now(), last_status, dead_at from pg_temp.delivery('o2@crm-hook')$$,
    $$values (interval '120 seconds', 429, null::timestamptz)$$,
    'retry with retry_after: tried again after it (Retry-After)'
);
select results_eq(
    $$select dead_at = now(), last_status, last_error, lease_until from pg_temp.delivery('o3@crm-hook')$$,
    $$values (true, 400, 'HTTP 400', null::timestamptz)$$,
    'dead: dead-lettered now'
);
select results_eq(
    $$select attempts, next_attempt_at - now(), last_status, lease_until from pg_temp.delivery('o4@crm-hook')$$,
    $$values (0, interval '30 seconds', null::integer, null::timestamptz)$$,
    'defer: due again after retry_after, the attempt not counted'
);
select results_eq(
    $$select attempts, next_attempt_at = now(), lease_until from pg_temp.delivery('o5@crm-hook')$$,
    $$values (0, true, null::timestamptz)$$,
    'defer without retry_after: due now, the attempt not counted'
);
select is(
    pg_temp.complete('relay-1', '{o6@crm-hook}', '{retry}', '{503}', '{HTTP 503}', null, 1),
    1,
    'a retry at p_max_attempts 1 is recorded'
);
select results_eq(
    $$select dead_at = now(), last_status, attempts from pg_temp.delivery('o6@crm-hook')$$,
    $$values (true, 503, 1)$$,
    'a retry after p_max_attempts attempts is dead-lettered'
);
select pg_temp.claim('relay-2', false) as b \gset
select is(
    pg_temp.claimed(:b),
    '{o5@crm-hook}',
    'the next claim: the deferred o5 only (o1 and o2 back off, and o1b waits behind o1; o4 is deferred; o3, o6 are dead)'
);
select results_eq(
    $$select attempts from pg_temp.delivery('o5@crm-hook')$$,
    $$values (1)$$,
    'o5''s attempt after its deferral is its first'
);
-- o2's Retry-After passes.
update tenancy.deliveries set next_attempt_at = now() - interval '1 second'
where event_id = pg_temp.id('o2');
select pg_temp.claim('relay-2', false) as b \gset
select is(pg_temp.claimed(:b), '{o2@crm-hook}', 'once its Retry-After passed, o2 is claimed again');
select is(pg_temp.complete('relay-2', '{o2@crm-hook}', '{defer}', null, null, '{60}'), 1, 'relay-2 defers o2 for a minute');
select results_eq(
    $$select attempts, last_status, last_error from pg_temp.delivery('o2@crm-hook')$$,
    $$values (1, 429, 'HTTP 429')$$,
    'a deferral keeps the last status and error, and takes the attempt back'
);

set local role tenancy_service;
select throws_ok(
    $$select tenancy.relay_complete('relay-1', '{}', '{}', '{}', '{}', '{lost}', '{}', '{}', '{}')$$,
    '22023',
    'delivery outcome ''lost'' is not delivered, retry, dead, gone or defer',
    'relay_complete refuses an unknown outcome'
);
select throws_ok(
    $$select tenancy.relay_complete('relay-1', '{}', '{}', '{}', '{}', '{null}', '{}', '{}', '{}')$$,
    '22023',
    'delivery outcome NULL is not delivered, retry, dead, gone or defer',
    'relay_complete refuses a NULL outcome'
);
select throws_ok(
    $$select tenancy.relay_complete('relay-1', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', 0)$$,
    '22023',
    'max attempts 0: 1 to 100',
    'relay_complete refuses p_max_attempts 0'
);
select throws_ok(
    $$select * from tenancy.relay_claim('', false)$$,
    '22023',
    'relay name '''' is not 1 to 200 characters',
    'relay_claim refuses an empty relay name'
);
select throws_ok(
    $$select * from tenancy.relay_claim('relay-1', false, 0)$$,
    '22023',
    'claim of 0 deliveries, 50 per tenant, 1 per key, leased for 30 s: 1 to 10000, 1 to 10000, 1 to 1000, 1 to 3600 s',
    'relay_claim refuses a limit of 0'
);
select throws_ok(
    $$select * from tenancy.relay_claim('relay-1', false, p_lease_seconds => 3601)$$,
    '22023',
    'claim of 500 deliveries, 50 per tenant, 1 per key, leased for 3601 s: 1 to 10000, 1 to 10000, 1 to 1000, 1 to 3600 s',
    'relay_claim refuses a lease of 3601 s'
);
select throws_ok(
    $$select * from tenancy.relay_claim('relay-1', null)$$,
    '22023', null,
    'relay_claim refuses a NULL p_analytics'
);
reset role;

-- gone: a 410 disables the endpoint and dead-letters what was queued for it ---------------------

select pg_temp.act_as(:'tenant_a', :'owner_x');
select endpoint_id as gone_hook from tenancy.configure_webhook('gone-hook', 'https://example.com/gone', '{ping.*}') \gset
select endpoint_id as keep_hook from tenancy.configure_webhook('keep-hook', 'https://example.com/keep', '{ping.*}') \gset
reset role;
select
    pg_temp.log(:'tenant_a', :'owner_x', 'p1', 'ping.sent', 'g1') as p1,
    pg_temp.log(:'tenant_a', :'owner_x', 'p2', 'ping.sent', 'g2') as p2,
    pg_temp.log(:'tenant_a', :'owner_x', 'p3', 'ping.sent', 'g1') as p3
\gset
select pg_temp.claim('relay-1', false) as b \gset
select is(
    pg_temp.sorted(pg_temp.claimed(:b)),
    '{p1@gone-hook,p1@keep-hook,p2@gone-hook,p2@keep-hook}',
    'each endpoint''s keys have their own heads'
);
select is(pg_temp.complete('relay-1', '{p1@gone-hook}', '{gone}', '{410}', '{HTTP 410}'), 1, 'relay-1 records a 410');
select results_eq(
    format(
        $$select enabled, disabled_reason, disabled_at = now() from tenancy.connector_endpoints where id = %L$$,
        :'gone_hook'
    ),
    $$values (false, 'the endpoint answered 410 Gone', true)$$,
    'gone: the endpoint is disabled, saying why'
);
select results_eq(
    $$select d.label, x.dead_at = now(), x.last_status, x.last_error, x.leased_by
    from unnest('{p1@gone-hook,p2@gone-hook,p3@gone-hook}'::text[]) as d (label)
    cross join lateral pg_temp.delivery(d.label) as x
    order by d.label$$,
    $$values
        ('p1@gone-hook', true, 410, 'HTTP 410', null::text),
        ('p2@gone-hook', true, null, 'endpoint disabled: it answered 410 Gone', null),
        ('p3@gone-hook', true, null, 'endpoint disabled: it answered 410 Gone', null)$$,
    'gone: the delivery and every other one queued for the endpoint (leased or not) are dead-lettered'
);
select results_eq(
    $$select d.label, x.dead_at, x.leased_by
    from unnest('{p1@keep-hook,p2@keep-hook,p3@keep-hook}'::text[]) as d (label)
    cross join lateral pg_temp.delivery(d.label) as x
    order by d.label$$,
    $$values ('p1@keep-hook', null::timestamptz, 'relay-1'), ('p2@keep-hook', null, 'relay-1'), ('p3@keep-hook', null, null)$$,
    'the other endpoint''s deliveries of the same events are untouched'
);
select is(pg_temp.complete('relay-1', '{p2@gone-hook}', '{delivered}', '{200}'), 0, 'a completion of a delivery dead-lettered meanwhile records nothing');
select pg_temp.log(:'tenant_a', :'owner_x', 'p4', 'ping.sent', 'g4') as p4 \gset
select is(
    (
        select array_agg(pg_temp.delivery_label(d.tenant_id, d.event_id, d.destination_id)) from tenancy.deliveries as d
        where d.event_id = pg_temp.id('p4')
    ),
    '{p4@keep-hook}',
    'the disabled endpoint is given no new event'
);

-- delivery_status -----------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_x');
select jsonb_object_agg(s.event_id::text || '@' || coalesce(s.destination, '-'), jsonb_build_array(s.kind, s.state, s.attempts, s.last_status)) as status_a
from tenancy.delivery_status as s \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select count(*) as status_member from tenancy.delivery_status \gset
reset role;
select results_eq(
    format(
        $$select d.label, %L::jsonb -> (pg_temp.id(split_part(d.label, '@', 1))::text || '@' || split_part(d.label, '@', 2))
        from unnest('{c2@crm-hook,c3@crm-hook,o1@crm-hook,o1b@crm-hook,o3@crm-hook,p1@gone-hook}'::text[]) with ordinality as d (label, i)
        order by d.i$$,
        :'status_a'
    ),
    $$values
        ('c2@crm-hook', '["webhook", "delivered", 1, 204]'::jsonb),
        ('c3@crm-hook', '["webhook", "in_flight", 1, null]'),
        ('o1@crm-hook', '["webhook", "pending", 1, 500]'),
        ('o1b@crm-hook', '["webhook", "pending", 0, null]'),
        ('o3@crm-hook', '["webhook", "dead", 1, 400]'),
        ('p1@gone-hook', '["webhook", "dead", 1, 410]')$$,
    'delivery_status shows an owner each delivery: delivered, in flight, pending (backing off or waiting), dead'
);
select is(
    (
        select count(*)::integer from jsonb_each(:'status_a'::jsonb) as s
        where s.key like '%@posthog' and s.value ->> 0 = 'posthog'
    ),
    (
        select count(*)::integer from tenancy.deliveries
        where tenant_id = :'tenant_a' and destination_id = '00000000-0000-0000-0000-000000000000'
    ),
    'and each of the tenant''s analytics deliveries, to posthog'
);
select is(:'status_member'::integer, 0, 'a member sees no delivery');

-- replay and replay_dead_letters --------------------------------------------------------------

select
    pg_temp.id('c1') as c1,
    pg_temp.id('c3') as c3,
    pg_temp.id('o3') as o3
\gset

select tenancy.clear_context();
set local role tenancy_app;
select throws_ok(
    format($$select tenancy.replay(%L)$$, :'c1'),
    'TN001',
    'no tenant context: replay events needs tenancy.authenticate() or tenancy.set_context() first',
    'replay without a context: TN001'
);
select throws_ok(
    $$select tenancy.replay_dead_letters()$$,
    'TN001',
    'no tenant context: replay events needs tenancy.authenticate() or tenancy.set_context() first',
    'replay_dead_letters without a context: TN001'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    format($$select tenancy.replay(%L)$$, :'c1'),
    '42501',
    format('role member of tenant %s cannot replay events', :'tenant_a'),
    'a member cannot replay an event: 42501'
);
select throws_ok(
    $$select tenancy.replay_dead_letters('crm-hook')$$,
    '42501',
    format('role member of tenant %s cannot replay events', :'tenant_a'),
    'a member cannot replay dead letters: 42501'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok(
    format($$select tenancy.replay(%L)$$, :'c1'),
    '42501',
    format('role viewer of tenant %s cannot replay events', :'tenant_a'),
    'a viewer cannot replay an event: 42501'
);
reset role;
select results_eq(
    $$select delivered_at = now(), dead_at is null from pg_temp.delivery('c1@crm-hook')
    union all select delivered_at is null, dead_at = now() from pg_temp.delivery('o3@crm-hook')$$,
    $$values (true, true), (true, true)$$,
    'the refused replays changed nothing'
);

select pg_temp.act_as(:'tenant_a', :'admin_a');
select tenancy.replay(:'c1') as replayed_c1 \gset
select tenancy.replay(:'c3') as replayed_c3 \gset
select tenancy.replay(:'o3') as replayed_o3 \gset
select throws_ok(
    format($$select tenancy.replay(%L)$$, '00000000-0000-7000-8000-000000000001'),
    'P0002',
    format('event 00000000-0000-7000-8000-000000000001 has no delivery in tenant %s', :'tenant_a'),
    'replay of an unknown event: P0002'
);
reset role;
select results_eq(
    format($$values (%s, %s, %s)$$, :replayed_c1, :replayed_c3, :replayed_o3),
    $$values (1, 0, 1)$$,
    'replay queues a delivered and a dead-lettered event again, and leaves one in flight to its relay'
);
select results_eq(
    $$select attempts, next_attempt_at = now(), delivered_at, dead_at, last_error, lease_until from pg_temp.delivery('c1@crm-hook')
    union all select attempts, next_attempt_at = now(), delivered_at, dead_at, last_error, lease_until from pg_temp.delivery('o3@crm-hook')$$,
    $$values (0, true, null::timestamptz, null::timestamptz, null::text, null::timestamptz), (0, true, null, null, null, null)$$,
    'a replayed delivery starts over: no attempt, due now, neither delivered nor dead'
);
select results_eq(
    $$select leased_by, attempts from pg_temp.delivery('c3@crm-hook')$$,
    $$values ('relay-1', 1)$$,
    'the delivery in flight is still its relay''s'
);

select pg_temp.act_as(:'tenant_a', :'owner_x');
select tenancy.replay_dead_letters(null, now() + interval '1 second') as replayed_later \gset
select throws_ok(
    $$select tenancy.replay_dead_letters('nope')$$,
    'P0002',
    format('endpoint ''nope'' does not exist in tenant %s', :'tenant_a'),
    'replay_dead_letters of an unknown endpoint: P0002'
);
select tenancy.set_endpoint_enabled('gone-hook', true);
select tenancy.replay_dead_letters('gone-hook') as replayed_gone \gset
reset role;
select pg_temp.act_as(:'t1', :'owner_x');
select tenancy.replay_dead_letters('posthog', now()) as replayed_posthog_t1 \gset
reset role;
select pg_temp.act_as(:'t2', :'owner_x');
select tenancy.replay_dead_letters('posthog') as replayed_posthog_t2 \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_x');
select tenancy.replay_dead_letters() as replayed_all \gset
reset role;
select results_eq(
    format($$values (%s, %s, %s, %s, %s)$$, :replayed_later, :replayed_gone, :replayed_posthog_t1, :replayed_posthog_t2, :replayed_all),
    $$values (0, 3, 2, 0, 1)$$,
    'replay_dead_letters: none dead since a later time; the endpoint''s 3; posthog''s 2 in t1, none in t2; then every other destination''s (o6)'
);
select results_eq(
    $$select d.label, x.attempts, x.dead_at, x.last_error, x.next_attempt_at = now()
    from unnest('{p1@gone-hook,p2@gone-hook,p3@gone-hook,o6@crm-hook,t1-u3@posthog,t1-u4@posthog}'::text[]) as d (label)
    cross join lateral pg_temp.delivery(d.label) as x
    order by d.label$$,
    $$values
        ('o6@crm-hook', 0, null::timestamptz, null::text, true),
        ('p1@gone-hook', 0, null, null, true),
        ('p2@gone-hook', 0, null, null, true),
        ('p3@gone-hook', 0, null, null, true),
        ('t1-u3@posthog', 0, null, null, true),
        ('t1-u4@posthog', 0, null, null, true)$$,
    'replayed dead letters start over'
);
select pg_temp.claim('relay-3', false) as b \gset
select is(
    pg_temp.sorted(pg_temp.claimed(:b)),
    '{c1@crm-hook,o3@crm-hook,o6@crm-hook,p1@gone-hook,p2@gone-hook,p4@keep-hook}',
    'the relay claims the replayed deliveries, heads of their keys first (p3 waits behind p1), and p4, due'
);

-- relay_status and relay_counts ----------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_x');
select tenancy.remove_endpoint('keep-hook');
reset role;
set local role tenancy_service;
select results_eq(
    $$select source, kind, pending, in_flight, dead, oldest_pending = now() from tenancy.relay_status order by 1, 2$$,
    $$values
        ('analytics', 'posthog', 4::bigint, 5::bigint, 0::bigint, true),
        ('connector', 'removed', 0, 0, 4, null),
        ('connector', 'webhook', 5, 8, 0, true)$$,
    'relay_status: pending, in flight and dead per source and kind (a removed endpoint''s dead letters as removed)'
);
select results_eq(
    $$select * from tenancy.relay_counts() order by 1, 2$$,
    $$select * from tenancy.relay_status order by 1, 2$$,
    'relay_counts gives the same numbers'
);
reset role;
set local role tenancy_admin;
select is((select sum(pending)::integer from tenancy.relay_status), 9, 'tenancy_admin reads relay_status');
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_x');
select throws_ok(
    $$select * from tenancy.relay_status$$,
    '42501',
    'permission denied for view relay_status',
    'the application role cannot read relay_status'
);
select throws_ok(
    $$select * from tenancy.relay_counts()$$,
    '42501',
    'permission denied for function relay_counts',
    'the application role cannot execute relay_counts'
);
reset role;

-- maintain_outbox: daily partitions ahead --------------------------------------------------------

-- A row of the day after tomorrow already in the default partition.
insert into tenancy.analytics_events (tenant_id, id, occurred_at, event, distinct_id, ordering_key)
values (:'tenant_a', tenancy.uuid_v7(), ((:'today'::date + 2) + time '12:00') at time zone 'UTC', 'early', 'u1', 'u1');

set local role tenancy_service;
set local client_min_messages = warning;  -- the NOTICEs of the days skipped
select pg_temp.sorted(array_agg(m.partition_name)) as created from tenancy.maintain_outbox(2) as m \gset
reset client_min_messages;
reset role;
select is(
    :'created'::text[],
    (
        select array_agg('tenancy.' || v.t || '_p' || to_char(:'today'::date + v.n, 'YYYYMMDD') order by v.t, v.n)
        from (values ('analytics_events', 1), ('connector_events', 1), ('connector_events', 2), ('deliveries', 1), ('deliveries', 2)) as v (t, n)
    ),
    'maintain_outbox creates each table''s partitions of the coming days, named TABLE_pYYYYMMDD, skipping days the default partition holds rows of (today''s, and the early event''s)'
);
select is(
    to_regclass(format('tenancy.analytics_events_p%s', to_char(:'today'::date + 2, 'YYYYMMDD'))),
    null,
    'the day of the early event has no partition'
);
select is(
    (
        select tableoid::regclass::text from tenancy.analytics_events
        where event = 'early' and tenant_id = :'tenant_a'
    ),
    'tenancy.analytics_events_default',
    'the early event stays in the default partition'
);
select results_eq(
    format(
        $$select count(*)::integer, bool_and(c.relrowsecurity), bool_and(c.relforcerowsecurity),
            bool_and(pg_get_userbyid(c.relowner) = 'tenancy_owner'),
            bool_or(has_table_privilege(r.rolname, c.oid, 'select,insert,update,delete,truncate'))
        from pg_class as c
        cross join (values ('tenancy_app'), ('tenancy_service'), ('tenancy_admin'), ('public')) as r (rolname)
        where c.oid = any(%L::regclass[])$$,
        :'created'
    ),
    $$values (20, true, true, true, false)$$,
    'the new partitions force row level security, belong to tenancy_owner and grant nothing to anyone'
);
insert into tenancy.connector_events (tenant_id, id, occurred_at, connector, action, ordering_key)
values (:'tenant_a', tenancy.uuid_v7(), ((:'today'::date + 1) + time '08:00') at time zone 'UTC', 'crm', 'sync', 'crm');
select is(
    (
        select tableoid::regclass::text from tenancy.connector_events
        where tenant_id = :'tenant_a' and occurred_at > now() + interval '1 hour'
    ),
    format('tenancy.connector_events_p%s', to_char(:'today'::date + 1, 'YYYYMMDD')),
    'an event of tomorrow (UTC) goes to tomorrow''s partition'
);
set local role tenancy_service;
set local client_min_messages = warning;
select count(*) as created_again from tenancy.maintain_outbox(2) \gset
reset client_min_messages;
select throws_ok(
    $$select * from tenancy.maintain_outbox(61)$$,
    '22023',
    'days ahead 61 is out of range: 0 to 60',
    'maintain_outbox refuses 61 days ahead'
);
select throws_ok(
    $$select * from tenancy.maintain_outbox(null)$$,
    '22023',
    'days ahead NULL is out of range: 0 to 60',
    'maintain_outbox refuses NULL days ahead'
);
reset role;
select is(:'created_again'::integer, 0, 'a second run creates nothing');
select pg_temp.act_as(:'tenant_a', :'owner_x');
select throws_ok(
    $$select * from tenancy.maintain_outbox()$$,
    '42501',
    'permission denied for function maintain_outbox',
    'the application role cannot run maintain_outbox'
);
reset role;

-- maintain_outbox: past days dropped after their retention, unless a delivery is pending -------

select count(pg_temp.old_partition(v.t, :'today'::date - d.n)) as old_partitions
from (values ('analytics_events'), ('connector_events'), ('deliveries')) as v (t)
cross join (values (40), (41), (8), (7)) as d (n) \gset
select pg_temp.old_partition('analytics_events', :'today'::date - 50, 'analytics_events_archive') as archive \gset
insert into tenancy.deliveries (
    tenant_id, event_id, destination_id, source, occurred_at, ordering_key, next_attempt_at, delivered_at
)
select
    :'tenant_a' as tenant_id,
    tenancy.uuid_v7() as event_id,
    '00000000-0000-0000-0000-000000000000' as destination_id,
    'analytics' as source,
    ((:'today'::date - d.n) + time '12:00') at time zone 'UTC' as occurred_at,
    'old' as ordering_key,
    now() as next_attempt_at,
    case when d.n <> 41 then now() end as delivered_at
from (values (40), (41), (8), (7)) as d (n);

set local role tenancy_service;
set local client_min_messages = warning;  -- the NOTICE of the day kept for its pending delivery
select jsonb_agg(m.action || ' ' || m.partition_name) as maintained from tenancy.maintain_outbox(0) as m \gset
reset client_min_messages;
reset role;
select is(
    :'maintained'::jsonb,
    jsonb_build_array(
        'dropped tenancy.analytics_events_p' || to_char(:'today'::date - 40, 'YYYYMMDD'),
        'dropped tenancy.connector_events_p' || to_char(:'today'::date - 40, 'YYYYMMDD'),
        'dropped tenancy.deliveries_p' || to_char(:'today'::date - 40, 'YYYYMMDD'),
        'dropped tenancy.analytics_events_p' || to_char(:'today'::date - 8, 'YYYYMMDD')
    ),
    'past their retention (7 days for analytics, 30 for the others), the days without pending deliveries are dropped'
);
select is(
    (
        select pg_temp.sorted(array_agg(c.relname::text))
        from pg_inherits as i
        inner join pg_class as c on i.inhrelid = c.oid
        where
            i.inhparent = any('{tenancy.analytics_events,tenancy.connector_events,tenancy.deliveries}'::regclass[])
            and (c.relname ~ ('_p(' || to_char(:'today'::date - 41, 'YYYYMMDD') || '|' || to_char(:'today'::date - 8, 'YYYYMMDD') || '|' || to_char(:'today'::date - 7, 'YYYYMMDD') || ')$') or c.relname = 'analytics_events_archive')
    ),
    array[
        'analytics_events_archive',
        'analytics_events_p' || to_char(:'today'::date - 41, 'YYYYMMDD'),
        'analytics_events_p' || to_char(:'today'::date - 7, 'YYYYMMDD'),
        'connector_events_p' || to_char(:'today'::date - 41, 'YYYYMMDD'),
        'connector_events_p' || to_char(:'today'::date - 8, 'YYYYMMDD'),
        'connector_events_p' || to_char(:'today'::date - 7, 'YYYYMMDD'),
        'deliveries_p' || to_char(:'today'::date - 41, 'YYYYMMDD'),
        'deliveries_p' || to_char(:'today'::date - 8, 'YYYYMMDD'),
        'deliveries_p' || to_char(:'today'::date - 7, 'YYYYMMDD')
    ],
    'kept: the day with a pending delivery, the days within their retention, and a partition not named by day'
);

set local role tenancy_service;
select throws_ok(
    $$select tenancy.set_outbox_retention('deliveries', '1 day')$$,
    '42501',
    'permission denied for function set_outbox_retention',
    'the relay''s role cannot set a retention'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_x');
select throws_ok(
    $$select tenancy.set_outbox_retention('deliveries', '1 day')$$,
    '42501',
    'permission denied for function set_outbox_retention',
    'the application role cannot set a retention'
);
reset role;
set local role tenancy_admin;
select throws_ok(
    $$select tenancy.set_outbox_retention('usage_events', '1 day')$$,
    '22023',
    'outbox table ''usage_events'' is not analytics_events, connector_events or deliveries',
    'set_outbox_retention refuses another table'
);
select throws_ok(
    $$select tenancy.set_outbox_retention(null, '1 day')$$,
    '22023',
    'outbox table NULL is not analytics_events, connector_events or deliveries',
    'set_outbox_retention refuses a NULL table'
);
select throws_ok(
    $$select tenancy.set_outbox_retention('deliveries', '23 hours')$$,
    '22023',
    'retention 23:00:00 of deliveries is not between 1 day and 10 years',
    'set_outbox_retention refuses less than a day'
);
select throws_ok(
    $$select tenancy.set_outbox_retention('deliveries', '10 years 1 day')$$,
    '22023',
    'retention 10 years 1 day of deliveries is not between 1 day and 10 years',
    'set_outbox_retention refuses more than 10 years'
);
select throws_ok(
    $$select tenancy.set_outbox_retention('deliveries', null)$$,
    '22023',
    'retention NULL of deliveries is not between 1 day and 10 years',
    'set_outbox_retention refuses NULL'
);
select lives_ok($$select tenancy.set_outbox_retention('deliveries', '1 day')$$, 'tenancy_admin sets a retention');
set local client_min_messages = warning;
select jsonb_agg(m.action || ' ' || m.partition_name) as maintained from tenancy.maintain_outbox(0) as m \gset
reset client_min_messages;
reset role;
select is(
    (
        select retain from tenancy.outbox_retention
        where table_name = 'deliveries'
    ),
    interval '1 day',
    'the retention is stored'
);
select is(
    :'maintained'::jsonb,
    jsonb_build_array(
        'dropped tenancy.deliveries_p' || to_char(:'today'::date - 8, 'YYYYMMDD'),
        'dropped tenancy.deliveries_p' || to_char(:'today'::date - 7, 'YYYYMMDD')
    ),
    'with a retention of 1 day, tenancy_admin''s run drops the days of deliveries past it, not the pending one'
);

select * from finish();
rollback;
