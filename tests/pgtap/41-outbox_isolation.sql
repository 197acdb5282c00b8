-- Outbox isolation: as tenancy_app in tenant B's context, B reads none of A's events, endpoints or deliveries, cannot replay, rotate, disable or remove what is A's, and A's connector events are never delivered to B's endpoints.
-- Tenants A and B each have webhooks and a Slack endpoint (one name, shared, in both), analytics
-- and connector events. Every attack from B is paired with the same operation succeeding for A,
-- and A's rows are checked unchanged afterwards. The relay's view is checked as tenancy_service:
-- each claimed delivery goes to an endpoint of the event's own tenant, at that endpoint's URL.
-- The superuser creates the two tenants, marks A's connector event delivered and its analytics
-- event dead (as a relay would), and reads the rows behind the functions.

begin;
select plan(48);

\ir setup/helpers.psql

-- visible(table, own tenant): the rows of an outbox table the current role reads, of other
-- tenants and of its own.
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

-- relay_view(): every connector delivery the relay claims now, with the endpoint relay_endpoints
-- gives for it (as tenancy_service): the claim's tenant, the endpoint's tenant, its URL.
create function pg_temp.relay_view()
returns table (event_id uuid, claim_tenant uuid, endpoint_tenant uuid, url text)
language plpgsql
as $$
declare
    v_rows jsonb;
begin
    set local role tenancy_service;
    with c as (
        select * from tenancy.relay_claim('isolation-relay', false, 10000, 10000)
    )
    select coalesce(jsonb_agg(jsonb_build_object(
        'event_id', c.event_id, 'claim_tenant', c.tenant_id, 'endpoint_tenant', r.tenant_id, 'url', r.url
    )), '[]')
    into v_rows
    from c
    left join tenancy.relay_endpoints(array(select c.destination_id from c)) as r on c.destination_id = r.endpoint_id;
    reset role;
    return query select x.event_id, x.claim_tenant, x.endpoint_tenant, x.url
    from jsonb_to_recordset(v_rows) as x (event_id uuid, claim_tenant uuid, endpoint_tenant uuid, url text);
end
$$;

-- secrets(endpoint): the signing secrets relay_endpoints gives for an endpoint (as tenancy_service).
create function pg_temp.secrets(p_endpoint uuid)
returns text[]
language plpgsql
as $$
declare
    v_secrets text[];
begin
    set local role tenancy_service;
    select r.signing_secrets into v_secrets from tenancy.relay_endpoints(array[p_endpoint]) as r;
    reset role;
    return v_secrets;
end
$$;

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as owner_b,
    'oi-a-' || left(md5(random()::text), 8) as slug_a,
    'oi-b-' || left(md5(random()::text), 8) as slug_b
\gset

set local role tenancy_admin;
select tenancy.create_tenant(:'slug_a', 'Outbox isolation A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant(:'slug_b', 'Outbox isolation B', :'owner_b') as tenant_b \gset
reset role;

-- Tenant A: webhooks a-hook (every type) and shared (crm.*), Slack endpoint a-slack; three events.
select pg_temp.act_as(:'tenant_a', :'owner_a');
select endpoint_id as a_hook from tenancy.configure_webhook('a-hook', 'https://a.example.com/hook') \gset
select
    endpoint_id as a_shared,
    signing_secret as a_shared_secret
from tenancy.configure_webhook('shared', 'https://a.example.com/shared', '{crm.*}') \gset
select tenancy.configure_slack('a-slack', 'https://hooks.slack.com/services/TA/BA/aSecret') as a_slack \gset
select
    tenancy.track_event('signup', 'shared-user') as a_analytics,
    tenancy.log_connector_event('crm', 'sync', '{"account": "a"}') as a_crm,
    tenancy.log_slack_message('general', 'A''s message') as a_message
\gset
reset role;

-- Tenant B: webhooks b-hook (every type) and shared (every type), Slack endpoint b-slack; two events.
select pg_temp.act_as(:'tenant_b', :'owner_b');
select endpoint_id as b_hook from tenancy.configure_webhook('b-hook', 'https://b.example.com/hook') \gset
select endpoint_id as b_shared from tenancy.configure_webhook('shared', 'https://b.example.com/shared') \gset
select tenancy.configure_slack('b-slack', 'https://hooks.slack.com/services/TB/BB/bSecret') as b_slack \gset
select
    tenancy.track_event('signup', 'shared-user') as b_analytics,
    tenancy.log_connector_event('crm', 'sync', '{"account": "b"}') as b_crm
\gset
reset role;

-- As a relay would: A's crm.sync delivered, A's analytics event dead-lettered.
update tenancy.deliveries set delivered_at = now()
where tenant_id = :'tenant_a' and event_id = :'a_crm';
update tenancy.deliveries set dead_at = now(), last_error = 'HTTP 400'
where tenant_id = :'tenant_a' and event_id = :'a_analytics';

-- Deliveries go to the event's own tenant's endpoints only ---------------------------------------

select results_eq(
    format(
        $$select e.tenant_id, e.name from tenancy.deliveries as d
        inner join tenancy.connector_endpoints as e on d.destination_id = e.id
        where d.event_id = %L order by e.name collate "C"$$,
        :'a_crm'
    ),
    format($$values (%L::uuid, 'a-hook'), (%L, 'shared')$$, :'tenant_a', :'tenant_a'),
    'A''s crm.sync goes to A''s a-hook and A''s shared, not to B''s endpoints of every type'
);
select results_eq(
    format(
        $$select e.tenant_id, e.name from tenancy.deliveries as d
        inner join tenancy.connector_endpoints as e on d.destination_id = e.id
        where d.event_id = %L order by e.name collate "C"$$,
        :'a_message'
    ),
    format($$values (%L::uuid, 'a-hook'), (%L, 'a-slack')$$, :'tenant_a', :'tenant_a'),
    'A''s Slack message goes to A''s Slack endpoint and A''s webhook of every type, not to B''s'
);
select results_eq(
    format(
        $$select e.tenant_id, e.name from tenancy.deliveries as d
        inner join tenancy.connector_endpoints as e on d.destination_id = e.id
        where d.event_id = %L order by e.name collate "C"$$,
        :'b_crm'
    ),
    format($$values (%L::uuid, 'b-hook'), (%L, 'shared')$$, :'tenant_b', :'tenant_b'),
    'B''s crm.sync goes to B''s own endpoints only'
);
select is(
    (
        select count(*)::integer from tenancy.deliveries as d
        inner join tenancy.connector_endpoints as e on d.destination_id = e.id
        where d.tenant_id <> e.tenant_id
    ),
    0,
    'no delivery in the database goes to another tenant''s endpoint'
);
create temporary table relayed as select * from pg_temp.relay_view();
select is(
    (
        select count(*)::integer from pg_temp.relayed
        where claim_tenant is distinct from endpoint_tenant
    ),
    0,
    'every delivery the relay claims goes to an endpoint of the event''s own tenant'
);
select results_eq(
    format(
        $$select event_id, url from pg_temp.relayed where claim_tenant in (%L, %L) order by event_id, url collate "C"$$,
        :'tenant_a', :'tenant_b'
    ),
    format(
        $$values
            (%L::uuid, 'https://a.example.com/hook'),
            (%L, 'https://hooks.slack.com/services/TA/BA/aSecret'),
            (%L, 'https://b.example.com/hook'),
            (%L, 'https://b.example.com/shared')$$,
        :'a_message', :'a_message', :'b_crm', :'b_crm'
    ),
    'the relay gets A''s URLs for A''s message and B''s for B''s event (shared: B''s own URL)'
);

-- B reads none of A's rows, and its own -----------------------------------------------------------

select pg_temp.act_as(:'tenant_b', :'owner_b');
select results_eq(
    format($$select others, own > 0 from pg_temp.visible('analytics_events', %L)$$, :'tenant_b'),
    $$values (0::bigint, true)$$,
    'B reads none of A''s analytics events, and its own'
);
select results_eq(
    format($$select others, own > 0 from pg_temp.visible('connector_events', %L)$$, :'tenant_b'),
    $$values (0::bigint, true)$$,
    'B reads none of A''s connector events, and its own'
);
select results_eq(
    format($$select others, own > 0 from pg_temp.visible('deliveries', %L)$$, :'tenant_b'),
    $$values (0::bigint, true)$$,
    'B reads none of A''s deliveries, and its own'
);
select results_eq(
    format($$select others, own from pg_temp.visible('connector_endpoints', %L)$$, :'tenant_b'),
    $$values (0::bigint, 3::bigint)$$,
    'B reads none of A''s endpoints, and its own three'
);
select results_eq(
    format(
        $$select count(*) filter (where event_id in (%L, %L, %L)), count(*) filter (where event_id in (%L, %L))
        from tenancy.delivery_status$$,
        :'a_analytics', :'a_crm', :'a_message', :'b_analytics', :'b_crm'
    ),
    $$values (0::bigint, 3::bigint)$$,
    'delivery_status shows B none of A''s deliveries, and its own three'
);
select is(
    (
        select count(*)::integer from tenancy.delivery_status
        where destination in ('a-hook', 'a-slack')
    ),
    0,
    'no delivery of B''s names A''s endpoints'
);
select is(
    (
        select count(*)::integer from tenancy.analytics_events
        where id = :'a_analytics'
    ),
    0,
    'B does not find A''s analytics event by its id'
);
select is(
    (
        select count(*)::integer from tenancy.connector_endpoints
        where id in (:'a_hook', :'a_shared', :'a_slack')
    ),
    0,
    'B does not find A''s endpoints by their ids'
);
select throws_ok(
    $$select count(*) from tenancy.deliveries_default$$,
    '42501', null,
    'B cannot read the default partition of the deliveries directly'
);
select throws_ok(
    $$select count(*) from tenancy.connector_events_default$$,
    '42501', null,
    'B cannot read the default partition of the connector events directly'
);
select throws_ok(
    format($$select url from tenancy.connector_secrets where endpoint_id = %L$$, :'a_hook'),
    '42501', null,
    'B cannot read A''s endpoint URL from the secrets'
);
select throws_ok(
    format(
        $$insert into tenancy.deliveries (tenant_id, event_id, destination_id, source, occurred_at, ordering_key, next_attempt_at)
        values (%L, %L, %L, 'connector', now(), 'crm', now())$$,
        :'tenant_a', :'b_crm', :'a_hook'
    ),
    '42501', null,
    'B cannot queue a delivery to A''s endpoint directly'
);
select throws_ok(
    format($$update tenancy.connector_endpoints set enabled = false where id = %L$$, :'a_hook'),
    '42501', null,
    'B cannot disable A''s endpoint directly'
);
select throws_ok(
    format($$select tenancy.enqueue_connector_event(%L, 'crm', 'sync', '{}', 'crm', null)$$, :'tenant_a'),
    '42501', null,
    'B cannot enqueue a connector event for A through the internal function'
);

-- B cannot act on A's events or endpoints -----------------------------------------------------

select throws_ok(
    format($$select tenancy.replay(%L)$$, :'a_crm'),
    'P0002',
    format('event %s has no delivery in tenant %s', :'a_crm', :'tenant_b'),
    'replay of A''s event: P0002 in B'
);
select throws_ok(
    $$select tenancy.replay_dead_letters('a-hook')$$,
    'P0002',
    format('endpoint ''a-hook'' does not exist in tenant %s', :'tenant_b'),
    'replay_dead_letters of A''s endpoint: P0002 in B'
);
select is(tenancy.replay_dead_letters('posthog'), 0, 'replay_dead_letters in B replays none of A''s dead letters');
select throws_ok(
    $$select tenancy.remove_endpoint('a-hook')$$,
    'P0002',
    format('endpoint ''a-hook'' does not exist in tenant %s', :'tenant_b'),
    'remove_endpoint of A''s endpoint: P0002 in B'
);
select throws_ok(
    $$select tenancy.rotate_webhook_secret('a-hook')$$,
    'P0002',
    format('webhook endpoint ''a-hook'' does not exist in tenant %s', :'tenant_b'),
    'rotate_webhook_secret of A''s endpoint: P0002 in B'
);
select throws_ok(
    $$select tenancy.set_endpoint_enabled('a-slack', false)$$,
    'P0002',
    format('endpoint ''a-slack'' does not exist in tenant %s', :'tenant_b'),
    'set_endpoint_enabled of A''s endpoint: P0002 in B'
);
select ok(
    tenancy.rotate_webhook_secret('shared') ~ '^whsec_',
    'B rotates the secret of its own endpoint named shared'
);
select lives_ok($$select tenancy.set_endpoint_enabled('shared', false)$$, 'B disables its own shared');
select lives_ok($$select tenancy.remove_endpoint('shared')$$, 'B removes its own shared');
reset role;

-- A's rows are as they were, and A's operations succeed ------------------------------------------

select results_eq(
    format(
        $$select name, enabled, url_display from tenancy.connector_endpoints where tenant_id = %L order by name collate "C"$$,
        :'tenant_a'
    ),
    $$values
        ('a-hook', true, 'https://a.example.com/hook'),
        ('a-slack', true, 'https://hooks.slack.com/…'),
        ('shared', true, 'https://a.example.com/shared')$$,
    'A''s endpoints are all there, enabled, after B removed, disabled and rotated its own shared'
);
select is(pg_temp.secrets(:'a_shared'), array[:'a_shared_secret'], 'A''s shared still signs with its one secret');
select results_eq(
    format(
        $$select count(*) filter (where delivered_at is not null), count(*) filter (where dead_at is not null)
        from tenancy.deliveries where tenant_id = %L and event_id in (%L, %L)$$,
        :'tenant_a', :'a_crm', :'a_analytics'
    ),
    $$values (2::bigint, 1::bigint)$$,
    'A''s delivered and dead deliveries are as they were'
);
select is(
    (
        select count(*)::integer from tenancy.connector_endpoints
        where tenant_id = :'tenant_b' and name = 'shared'
    ),
    0,
    'B''s shared is gone'
);
select results_eq(
    format(
        $$select count(*), count(*) filter (where dead_at is not null and last_error = 'endpoint removed')
        from tenancy.deliveries where destination_id = %L$$,
        :'b_shared'
    ),
    $$values (1::bigint, 1::bigint)$$,
    'removing B''s shared dead-lettered B''s delivery to it only'
);

select pg_temp.act_as(:'tenant_a', :'owner_a');
select results_eq(
    format($$select others, own from pg_temp.visible('connector_endpoints', %L)$$, :'tenant_a'),
    $$values (0::bigint, 3::bigint)$$,
    'A reads its own three endpoints, none of B''s'
);
select results_eq(
    format(
        $$select count(*) filter (where event_id in (%L, %L)), count(*) filter (where event_id in (%L, %L, %L))
        from tenancy.delivery_status$$,
        :'b_analytics', :'b_crm', :'a_analytics', :'a_crm', :'a_message'
    ),
    $$values (0::bigint, 5::bigint)$$,
    'delivery_status shows A its own five deliveries, none of B''s'
);
select is(tenancy.replay(:'a_crm'), 2, 'A replays its event: both deliveries queued again');
select throws_ok(
    format($$select tenancy.replay(%L)$$, :'b_crm'),
    'P0002',
    format('event %s has no delivery in tenant %s', :'b_crm', :'tenant_a'),
    'A cannot replay B''s event either'
);
select is(tenancy.replay_dead_letters('posthog'), 1, 'A replays its dead analytics delivery');
select ok(tenancy.rotate_webhook_secret('a-hook') ~ '^whsec_', 'A rotates a-hook''s secret');
select lives_ok($$select tenancy.set_endpoint_enabled('a-slack', false)$$, 'A disables a-slack');
select lives_ok($$select tenancy.remove_endpoint('a-hook')$$, 'A removes a-hook');
select throws_ok(
    $$select tenancy.remove_endpoint('b-hook')$$,
    'P0002',
    format('endpoint ''b-hook'' does not exist in tenant %s', :'tenant_a'),
    'A cannot remove B''s endpoint'
);
select tenancy.log_connector_event('crm', 'sync', '{"account": "a"}') as a_crm_2 \gset
select tenancy.log_slack_message('general', 'A again') as a_message_2 \gset
reset role;
select results_eq(
    format(
        $$select d.event_id, e.tenant_id, e.name from tenancy.deliveries as d
        inner join tenancy.connector_endpoints as e on d.destination_id = e.id
        where d.event_id in (%L, %L) order by d.event_id, e.name collate "C"$$,
        :'a_crm_2', :'a_message_2'
    ),
    format($$values (%L::uuid, %L::uuid, 'shared')$$, :'a_crm_2', :'tenant_a'),
    'A''s later events go to A''s remaining endpoint only: not to B''s endpoints of every type, not to the disabled a-slack'
);
select is(
    (
        select count(*)::integer from tenancy.deliveries
        where event_id = :'a_message_2'
    ),
    0,
    'A''s Slack message with a-slack disabled and a-hook removed has no delivery, although B''s endpoints take every type'
);
select results_eq(
    format(
        $$select name, enabled from tenancy.connector_endpoints where tenant_id = %L order by name collate "C"$$,
        :'tenant_b'
    ),
    $$values ('b-hook', true), ('b-slack', true)$$,
    'B''s endpoints are untouched by A''s operations'
);

-- Another member's view within A: members read none of A's outbox --------------------------------

select 'auth0|' || gen_random_uuid() as member_a \gset
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.add_member(:'member_a', 'member') is not null as member_added \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select results_eq(
    format(
        $$select (select own from pg_temp.visible('deliveries', %L)), (select own from pg_temp.visible('connector_endpoints', %L)),
            (select count(*) from tenancy.delivery_status)$$,
        :'tenant_a', :'tenant_a'
    ),
    $$values (0::bigint, 0::bigint, 0::bigint)$$,
    'a member of A reads none of A''s deliveries, endpoints or delivery states'
);
select throws_ok(
    format($$select tenancy.replay(%L)$$, :'a_crm'),
    '42501',
    format('role member of tenant %s cannot replay events', :'tenant_a'),
    'a member of A cannot replay A''s event'
);
reset role;

select * from finish();
rollback;
