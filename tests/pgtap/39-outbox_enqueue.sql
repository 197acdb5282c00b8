-- Outbox enqueue and configuration: track_event, track_api_call, log_connector_event and log_slack_message write an event and its deliveries in the caller's transaction; Slack and webhook endpoints, their secrets and who may configure them.
-- Every call runs as tenancy_app in a context set by tenancy_service, as applications do: every
-- role enqueues, owners and admins configure endpoints, members and viewers are refused (42501),
-- and without a context everything is refused (TN001). Each SQLSTATE the functions' comments name
-- is raised with the offending value in its message, and a refused call writes nothing. The
-- superuser reads the rows behind the functions (events, deliveries, secrets), and moves a
-- rotated secret's expiry into the past as the clock would; relay_endpoints is read as
-- tenancy_service, the relay's role.

begin;
select plan(168);

\ir setup/helpers.psql

-- destinations(event): the names of the endpoints an event has a delivery to (posthog for the
-- nil uuid), sorted (as the superuser).
create function pg_temp.destinations(p_event uuid)
returns text[]
language sql
as $$
    select coalesce(
        array_agg(
            coalesce(
                e.name,
                case when d.destination_id = '00000000-0000-0000-0000-000000000000' then 'posthog' else 'unknown' end
            ) collate "C"
            order by coalesce(e.name, 'posthog') collate "C"
        ),
        '{}'
    )
    from tenancy.deliveries as d
    left join tenancy.connector_endpoints as e on d.tenant_id = e.tenant_id and d.destination_id = e.id
    where d.event_id = p_event
$$;

-- rows_of(tenant): how many events and deliveries a tenant has (as the superuser).
create function pg_temp.rows_of(p_tenant uuid)
returns bigint
language sql
as $$
    select (select count(*) from tenancy.analytics_events as a where a.tenant_id = p_tenant)
        + (select count(*) from tenancy.connector_events as c where c.tenant_id = p_tenant)
        + (select count(*) from tenancy.deliveries as d where d.tenant_id = p_tenant)
$$;

-- secrets(endpoint): the signing secrets tenancy.relay_endpoints gives the relay for an
-- endpoint, read as tenancy_service.
create function pg_temp.secrets(p_endpoint uuid)
returns text[]
language plpgsql
as $$
declare
    v_secrets text [];
begin
    set local role tenancy_service;
    select r.signing_secrets into v_secrets from tenancy.relay_endpoints(array[p_endpoint]) as r;
    reset role;
    return v_secrets;
end
$$;

-- v7_ms(id): the Unix milliseconds in the first 48 bits of a UUID.
create function pg_temp.v7_ms(p_id uuid)
returns bigint
language sql
as $$
    select ('x' || lpad(replace(left(p_id::text, 13), '-', ''), 16, '0'))::bit(64)::bigint
$$;

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as admin_a,
    'auth0|' || gen_random_uuid() as member_a,
    'auth0|' || gen_random_uuid() as viewer_a,
    'oe-a-' || left(md5(random()::text), 8) as slug_a,
    'whsec_' || replace(encode(decode(repeat('ab', 32), 'hex'), 'base64'), E'\n', '') as secret_1,
    'whsec_' || replace(encode(decode(repeat('cd', 24), 'hex'), 'base64'), E'\n', '') as secret_2,
    'whsec_' || replace(encode(decode(repeat('ef', 64), 'hex'), 'base64'), E'\n', '') as secret_3,
    'whsec_' || replace(encode(decode(repeat('01', 23), 'hex'), 'base64'), E'\n', '') as secret_23,
    'whsec_' || replace(encode(decode(repeat('02', 65), 'hex'), 'base64'), E'\n', '') as secret_65
\gset

set local role tenancy_admin;
select tenancy.create_tenant(:'slug_a', 'Outbox enqueue A', :'owner_a') as tenant_a \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.add_member(:'admin_a', 'admin');
select tenancy.add_member(:'member_a', 'member');
select tenancy.add_member(:'viewer_a', 'viewer');
select
    id as member_key_id,
    key as member_key
from tenancy.create_api_key('outbox member', 'member') \gset
reset role;

-- Without a context ----------------------------------------------------------------------------

-- The tenant's rows so far: its $groupidentify, and the security event of its API key.
select pg_temp.rows_of(:'tenant_a') as rows_before_no_context \gset
select tenancy.clear_context();
set local role tenancy_app;
select throws_ok(
    $$select tenancy.track_event('signup', 'user-1')$$,
    'TN001',
    'no tenant context: tenancy.track_event needs tenancy.authenticate() or tenancy.set_context() first',
    'track_event without a context: TN001'
);
select throws_ok(
    $$select tenancy.track_events('[{"event": "signup", "distinct_id": "user-1"}]')$$,
    'TN001',
    'no tenant context: tenancy.track_events needs tenancy.authenticate() or tenancy.set_context() first',
    'track_events without a context: TN001'
);
select throws_ok(
    $$select tenancy.track_api_call('user-1', '/v1/projects', 'get')$$,
    'TN001',
    'no tenant context: tenancy.track_event needs tenancy.authenticate() or tenancy.set_context() first',
    'track_api_call without a context: TN001'
);
select throws_ok(
    $$select tenancy.log_connector_event('crm', 'sync')$$,
    'TN001',
    'no tenant context: tenancy.log_connector_event needs tenancy.authenticate() or tenancy.set_context() first',
    'log_connector_event without a context: TN001'
);
select throws_ok(
    $$select tenancy.log_slack_message('alerts', 'hello')$$,
    'TN001',
    'no tenant context: tenancy.log_connector_event needs tenancy.authenticate() or tenancy.set_context() first',
    'log_slack_message without a context: TN001'
);
select throws_ok(
    $$select tenancy.configure_slack('team', 'https://hooks.slack.com/services/T0/B0/x')$$,
    'TN001',
    'no tenant context: configure connectors needs tenancy.authenticate() or tenancy.set_context() first',
    'configure_slack without a context: TN001'
);
select throws_ok(
    $$select * from tenancy.configure_webhook('hook', 'https://example.com/hook')$$,
    'TN001',
    'no tenant context: configure connectors needs tenancy.authenticate() or tenancy.set_context() first',
    'configure_webhook without a context: TN001'
);
select throws_ok(
    $$select tenancy.rotate_webhook_secret('hook')$$,
    'TN001',
    'no tenant context: configure connectors needs tenancy.authenticate() or tenancy.set_context() first',
    'rotate_webhook_secret without a context: TN001'
);
select throws_ok(
    $$select tenancy.set_endpoint_enabled('hook', false)$$,
    'TN001',
    'no tenant context: configure connectors needs tenancy.authenticate() or tenancy.set_context() first',
    'set_endpoint_enabled without a context: TN001'
);
select throws_ok(
    $$select tenancy.remove_endpoint('hook')$$,
    'TN001',
    'no tenant context: configure connectors needs tenancy.authenticate() or tenancy.set_context() first',
    'remove_endpoint without a context: TN001'
);
reset role;
select is(pg_temp.rows_of(:'tenant_a'), :'rows_before_no_context'::bigint, 'calls without a context wrote nothing');

-- Analytics events -----------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select
    tenancy.track_event('signup', 'user-1', '{"plan": "pro", "seats": 3}') as ev_signup,
    clock_timestamp() as after_signup
\gset
select tenancy.track_api_call('user-1', '/v1/projects', 'post') as ev_api \gset
select tenancy.track_event('no_props', 'user-2', null) as ev_null_props \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select tenancy.track_event('viewed', 'user-3') as ev_viewer \gset
reset role;
select pg_temp.act_as(:'tenant_a');
select tenancy.track_event('nightly_job', 'service') as ev_service \gset
reset role;
select tenancy.clear_context();
set local role tenancy_app;
select tenancy.authenticate_api_key(:'member_key') is not null as key_authenticated \gset
select tenancy.track_event('key_call', 'key-user') as ev_key \gset
select tenancy.clear_context();
reset role;

select is(substr(:'ev_signup', 15, 1), '7', 'track_event returns a version 7 UUID');
select ok(substr(:'ev_signup', 20, 1) in ('8', '9', 'a', 'b'), 'track_event''s UUID has the RFC 9562 variant');
select ok(
    pg_temp.v7_ms(:'ev_signup') between floor(extract(epoch from now()) * 1000)::bigint
    and floor(extract(epoch from :'after_signup'::timestamptz) * 1000)::bigint,
    'the UUID''s first 48 bits are the Unix milliseconds it was made at'
);
select ok(
    :'ev_signup'::uuid < :'ev_api'::uuid and :'ev_api'::uuid < :'ev_null_props'::uuid,
    'event ids made one after another sort in the order they were made'
);
select ok(
    substr(:'ev_api', 15, 1) = '7' and substr(:'ev_viewer', 15, 1) = '7' and substr(:'ev_key', 15, 1) = '7',
    'track_api_call and track_event for every role return version 7 UUIDs'
);
select results_eq(
    format(
        $$select tenant_id, event, distinct_id, ordering_key, actor, properties, occurred_at = now()
        from tenancy.analytics_events where id = %L$$,
        :'ev_signup'
    ),
    format(
        $$values (%L::uuid, 'signup', 'user-1', 'user-1', %L, '{"plan": "pro", "seats": 3}'::jsonb, true)$$,
        :'tenant_a', :'member_a'
    ),
    'track_event writes the event: tenant, name, distinct id (its ordering key), the member as actor, properties, now()'
);
select results_eq(
    format(
        $$select tenant_id, destination_id, source, ordering_key, attempts, next_attempt_at = now(),
            occurred_at = now(), lease_until, leased_by, delivered_at, dead_at
        from tenancy.deliveries where event_id = %L$$,
        :'ev_signup'
    ),
    format(
        $$values (%L::uuid, '00000000-0000-0000-0000-000000000000'::uuid, 'analytics', 'user-1', 0, true,
            true, null::timestamptz, null::text, null::timestamptz, null::timestamptz)$$,
        :'tenant_a'
    ),
    'track_event writes one delivery, to the nil uuid (PostHog), due now, never attempted'
);
select results_eq(
    format($$select event, distinct_id, properties from tenancy.analytics_events where id = %L$$, :'ev_api'),
    $$values ('api_call', 'user-1', '{"endpoint": "/v1/projects", "method": "POST"}'::jsonb)$$,
    'track_api_call writes api_call with the endpoint and the method upper-cased'
);
select is(pg_temp.destinations(:'ev_api'), '{posthog}', 'track_api_call''s event has one delivery, to PostHog');
select is(
    (
        select properties from tenancy.analytics_events
        where id = :'ev_null_props'
    ),
    '{}'::jsonb,
    'NULL properties are stored as {}'
);
select results_eq(
    format(
        $$select id::text, actor from tenancy.analytics_events where id in (%L, %L, %L) order by id$$,
        :'ev_viewer', :'ev_service', :'ev_key'
    ),
    format(
        $$values (%L, %L), (%L, null), (%L, %L)$$,
        :'ev_viewer', :'viewer_a', :'ev_service', :'ev_key', 'api_key:' || :'member_key_id'
    ),
    'the actor is the viewer''s user id, NULL for a service context, api_key:<id> for an API key'
);
select is(
    (
        select count(*)::integer from tenancy.deliveries
        where
            event_id in (:'ev_viewer', :'ev_service', :'ev_key', :'ev_null_props')
            and destination_id = '00000000-0000-0000-0000-000000000000'
    ),
    4,
    'every role''s analytics event has its PostHog delivery'
);

-- A batch of analytics events.
select pg_temp.act_as(:'tenant_a', :'member_a');
select tenancy.track_events(
    '[{"event": "step", "distinct_id": "user-5", "properties": {"n": 1}},
      {"event": "step", "distinct_id": "user-6", "properties": {"n": 2}},
      {"event": "step", "distinct_id": "user-5"}]'
) as batch_ids \gset
select tenancy.track_events('[]') as empty_batch \gset
reset role;
select is(cardinality(:'batch_ids'::uuid[]), 3, 'track_events returns an id per event');
select ok(
    (select bool_and(substr(i::text, 15, 1) = '7') from unnest(:'batch_ids'::uuid[]) as i),
    'track_events returns version 7 UUIDs'
);
select results_eq(
    format(
        $$select a.event, a.distinct_id, a.ordering_key, a.actor, a.properties, d.destination_id, d.source
        from unnest(%L::uuid[]) with ordinality as b (id, n)
        inner join tenancy.analytics_events as a on a.id = b.id
        inner join tenancy.deliveries as d on a.tenant_id = d.tenant_id and a.id = d.event_id
        where a.tenant_id = %L
        order by b.n$$,
        :'batch_ids', :'tenant_a'
    ),
    format(
        $$values
            ('step', 'user-5', 'user-5', %L, '{"n": 1}'::jsonb, '00000000-0000-0000-0000-000000000000'::uuid, 'analytics'),
            ('step', 'user-6', 'user-6', %L, '{"n": 2}', '00000000-0000-0000-0000-000000000000', 'analytics'),
            ('step', 'user-5', 'user-5', %L, '{}', '00000000-0000-0000-0000-000000000000', 'analytics')$$,
        :'member_a', :'member_a', :'member_a'
    ),
    'track_events writes each event and its PostHog delivery, the ids in the array''s order'
);
select is(:'empty_batch'::uuid[], '{}'::uuid[], 'track_events of an empty array returns no id');

-- A connector event before any endpoint: logged, delivered nowhere.
select pg_temp.act_as(:'tenant_a', :'member_a');
select tenancy.log_connector_event('crm', 'sync', '{"account": 7}') as ev_lonely \gset
reset role;
select results_eq(
    format(
        $$select tenant_id, connector, action, ordering_key, actor, payload, occurred_at = now()
        from tenancy.connector_events where id = %L$$,
        :'ev_lonely'
    ),
    format($$values (%L::uuid, 'crm', 'sync', 'crm', %L, '{"account": 7}'::jsonb, true)$$, :'tenant_a', :'member_a'),
    'log_connector_event writes the event: the connector as the default ordering key, the member as actor'
);
select is(substr(:'ev_lonely', 15, 1), '7', 'log_connector_event returns a version 7 UUID');
select is(pg_temp.destinations(:'ev_lonely'), '{}', 'a connector event of a tenant without endpoints has no delivery');

-- Configuration: roles --------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.configure_slack('team', 'https://hooks.slack.com/services/T0/B0/x')$$,
    '42501',
    format('role member of tenant %s cannot configure connectors', :'tenant_a'),
    'a member cannot configure Slack: 42501'
);
select throws_ok(
    $$select * from tenancy.configure_webhook('hook', 'https://example.com/hook')$$,
    '42501',
    format('role member of tenant %s cannot configure connectors', :'tenant_a'),
    'a member cannot configure a webhook: 42501'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok(
    $$select tenancy.configure_slack('team', 'https://hooks.slack.com/services/T0/B0/x')$$,
    '42501',
    format('role viewer of tenant %s cannot configure connectors', :'tenant_a'),
    'a viewer cannot configure Slack: 42501'
);
select throws_ok(
    $$select * from tenancy.configure_webhook('hook', 'https://example.com/hook')$$,
    '42501',
    format('role viewer of tenant %s cannot configure connectors', :'tenant_a'),
    'a viewer cannot configure a webhook: 42501'
);
reset role;
select is(
    (
        select count(*)::integer from tenancy.connector_endpoints
        where tenant_id = :'tenant_a'
    ),
    0,
    'members and viewers configured nothing'
);

-- Configuration: endpoints ----------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select
    tenancy.configure_slack('alerts-slack', 'https://hooks.slack.com/services/T0/B0/alertsSecretPath', '#alerts') as slack_alerts,
    tenancy.configure_slack('all-slack', 'https://hooks.slack.com/services/T0/B1/allSecretPath') as slack_all,
    tenancy.configure_slack('general-slack', 'https://hooks.slack.com/services/T0/B2/generalSecretPath', 'general') as slack_general,
    tenancy.configure_slack('off-slack', 'https://hooks.slack.com/services/T0/B3/offSecretPath', 'alerts') as slack_off
\gset
select
    endpoint_id as hook_all,
    signing_secret as hook_all_secret
from tenancy.configure_webhook('all-hook', 'https://example.com/all?token=abc#frag') \gset
select
    endpoint_id as hook_billing,
    signing_secret is null as hook_billing_secret_null
from tenancy.configure_webhook('billing-hook', 'https://example.com/billing', '{billing.invoice_paid}', :'secret_1') \gset
select endpoint_id as hook_off from tenancy.configure_webhook('off-hook', 'http://localhost:8080/off') \gset
select tenancy.set_endpoint_enabled('off-slack', false);
select tenancy.set_endpoint_enabled('off-hook', false);
reset role;
select pg_temp.act_as(:'tenant_a', :'admin_a');
select endpoint_id as hook_usage from tenancy.configure_webhook('usage-hook', 'http://127.0.0.1:9/usage', '{usage.*}') \gset
select endpoint_id as hook_multi from tenancy.configure_webhook('multi-hook', 'http://[::1]/multi', '{crm.sync,billing.*}') \gset
select results_eq(
    $$select name, kind, url_display, channel, event_types, enabled from tenancy.connector_endpoints order by name collate "C"$$,
    $$values
        ('alerts-slack', 'slack', 'https://hooks.slack.com/…', 'alerts', '{}'::text [], true),
        ('all-hook', 'webhook', 'https://example.com/all', null, '{}', true),
        ('all-slack', 'slack', 'https://hooks.slack.com/…', null, '{}', true),
        ('billing-hook', 'webhook', 'https://example.com/billing', null, '{billing.invoice_paid}', true),
        ('general-slack', 'slack', 'https://hooks.slack.com/…', 'general', '{}', true),
        ('multi-hook', 'webhook', 'http://[::1]/multi', null, '{crm.sync,billing.*}', true),
        ('off-hook', 'webhook', 'http://localhost:8080/off', null, '{}', false),
        ('off-slack', 'slack', 'https://hooks.slack.com/…', 'alerts', '{}', false),
        ('usage-hook', 'webhook', 'http://127.0.0.1:9/usage', null, '{usage.*}', true)$$,
    'owners and admins configure endpoints, read back without a Slack URL''s path or a webhook''s query; a leading # of a channel is dropped'
);
reset role;
select ok(:'hook_all_secret' ~ '^whsec_[A-Za-z0-9+/]+={0,2}$', 'configure_webhook returns a new whsec_ secret');
select is(
    length(decode(substr(:'hook_all_secret', 7), 'base64')), 32, 'the new secret is the base64 of 32 bytes'
);
select ok(:'hook_billing_secret_null'::boolean, 'configure_webhook returns NULL when the caller gave the secret');
select is(pg_temp.secrets(:'hook_all'), array[:'hook_all_secret'], 'the relay signs with the secret returned');
select is(pg_temp.secrets(:'hook_billing'), array[:'secret_1'], 'the relay signs with the secret given');
select results_eq(
    format(
        $$select endpoint_id, tenant_id, kind, channel, enabled, url from tenancy.relay_endpoints(array[%L, %L, %L]::uuid [])
        order by url collate "C"$$,
        :'slack_alerts', :'hook_all', :'hook_off'
    ),
    format(
        $$values
            (%L::uuid, %L::uuid, 'webhook', null::text, false, 'http://localhost:8080/off'),
            (%L, %L, 'webhook', null, true, 'https://example.com/all?token=abc#frag'),
            (%L, %L, 'slack', 'alerts', true, 'https://hooks.slack.com/services/T0/B0/alertsSecretPath')$$,
        :'hook_off', :'tenant_a', :'hook_all', :'tenant_a', :'slack_alerts', :'tenant_a'
    ),
    'relay_endpoints gives the superuser (and the relay) the whole URLs'
);
select is(
    (
        select count(*)::integer from tenancy.connector_secrets
        where endpoint_id = :'slack_alerts' and signing_secret is null
    ),
    1,
    'a Slack endpoint has its URL and no signing secret'
);

-- Configuration: refused input ------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select throws_ok(
    $$select * from tenancy.configure_webhook('plain', 'http://example.com/hook')$$,
    '22023',
    'endpoint URL ''http://example.com/…'' is not an https URL (http only to localhost) without credentials, spaces or control characters, of at most 2000 characters',
    'configure_webhook refuses http to a host that is not loopback: 22023 naming its origin only'
);
select throws_ok(
    $$select * from tenancy.configure_webhook('tricky', 'http://localhost.example.com/hook')$$,
    '22023', null,
    'configure_webhook refuses http to a host named like localhost'
);
select throws_ok(
    $$select * from tenancy.configure_webhook('tricky', 'http://127.0.0.1@example.com/hook')$$,
    '22023', null,
    'configure_webhook refuses http to 127.0.0.1@ another host'
);
select throws_ok(
    $$select * from tenancy.configure_webhook('creds', 'https://user:hunter2@example.com/hook')$$,
    '22023', null,
    'configure_webhook refuses a URL with credentials'
);
select throws_like(
    $$select * from tenancy.configure_webhook('creds', 'https://user:hunter2@example.com/hook')$$,
    '%''https://example.com/…''%',
    'the refusal names the origin without the credentials'
);
select throws_ok(
    $$select * from tenancy.configure_webhook('spaces', 'https://example.com/a hook')$$,
    '22023',
    'endpoint URL ''https://example.com/…'' is not an https URL (http only to localhost) without credentials, spaces or control characters, of at most 2000 characters',
    'configure_webhook refuses a URL with a space'
);
select throws_ok(
    $$select tenancy.configure_slack('team', 'ftp://hooks.slack.com/services/T0/B0/x')$$,
    '22023',
    'endpoint URL ''ftp://hooks.slack.com/…'' is not an https URL (http only to localhost) without credentials, spaces or control characters, of at most 2000 characters',
    'configure_slack refuses a URL that is not https'
);
select throws_like(
    $$select tenancy.configure_slack('team', ' https://hooks.slack.com/services/T0/B0/pastedSecretPath')$$,
    '%''https://hooks.slack.com/…''%',
    'a URL pasted with a leading space is refused without its path (the Slack secret) in the message'
);
select throws_like(
    $$select tenancy.configure_slack('team', 'HTTPS://hooks.slack.com/services/T0/B0/upperSecretPath')$$,
    '%''HTTPS://hooks.slack.com/…''%',
    'a URL with an upper-case scheme is refused without its path in the message'
);
select throws_ok(
    $$select tenancy.configure_slack('team', null)$$,
    '22023',
    'endpoint URL NULL is not an https URL (http only to localhost) without credentials, spaces or control characters, of at most 2000 characters',
    'configure_slack refuses a NULL URL'
);
select throws_ok(
    $$select tenancy.configure_slack('team', 'https://hooks.slack.com/services/' || repeat('x', 2000))$$,
    '22023', null,
    'configure_slack refuses a URL longer than 2000 characters'
);
select throws_ok(
    $$select tenancy.configure_slack('', 'https://hooks.slack.com/services/T0/B0/x')$$,
    '22023',
    'endpoint name '''' is not 1 to 100 characters',
    'configure_slack refuses an empty name'
);
select throws_ok(
    $$select * from tenancy.configure_webhook(repeat('n', 101), 'https://example.com/hook')$$,
    '22023',
    format('endpoint name %L is not 1 to 100 characters', repeat('n', 100) || '...'),
    'configure_webhook refuses a name of 101 characters'
);
select throws_ok(
    $$select tenancy.configure_slack('team', 'https://hooks.slack.com/services/T0/B0/x', '#General')$$,
    '22023',
    'Slack channel ''#General'' is not a channel name (lower-case letters, digits, - and _, at most 80)',
    'configure_slack refuses a channel that is not a Slack channel name'
);
select throws_ok(
    $$select * from tenancy.configure_webhook('hook', 'https://example.com/hook', '{usage.*,Billing.paid}')$$,
    '22023',
    'event type filter ''Billing.paid'' is not connector.action or connector.* (at most 100 filters)',
    'configure_webhook refuses a filter that is not connector.action'
);
select throws_ok(
    $$select * from tenancy.configure_webhook('hook', 'https://example.com/hook', '{usage}')$$,
    '22023',
    'event type filter ''usage'' is not connector.action or connector.* (at most 100 filters)',
    'configure_webhook refuses a filter without an action or .*'
);
select throws_ok(
    $$select * from tenancy.configure_webhook('hook', 'https://example.com/hook', '{}', 'secret-1234567890123456789012345')$$,
    '22023',
    'signing secret ''secret-123…'' is not whsec_ and the base64 of 24 to 64 bytes',
    'configure_webhook refuses a secret that is not whsec_, naming its first characters only'
);
select throws_ok(
    format($$select * from tenancy.configure_webhook('hook', 'https://example.com/hook', '{}', %L)$$, :'secret_23'),
    '22023',
    format('signing secret %L is not whsec_ and the base64 of 24 to 64 bytes (it holds 23 bytes)', left(:'secret_23', 10) || '…'),
    'configure_webhook refuses a secret of 23 bytes'
);
select throws_ok(
    format($$select * from tenancy.configure_webhook('hook', 'https://example.com/hook', '{}', %L)$$, :'secret_65'),
    '22023',
    format('signing secret %L is not whsec_ and the base64 of 24 to 64 bytes (it holds 65 bytes)', left(:'secret_65', 10) || '…'),
    'configure_webhook refuses a secret of 65 bytes'
);
select throws_ok(
    $$select * from tenancy.configure_webhook('hook', 'https://example.com/hook', '{}', 'whsec_not base64!')$$,
    '22023',
    'signing secret ''whsec_not …'' is not whsec_ and the base64 of 24 to 64 bytes',
    'configure_webhook refuses a whsec_ secret that is not base64'
);
select throws_ok(
    $$select tenancy.configure_slack('all-hook', 'https://hooks.slack.com/services/T0/B0/x')$$,
    '23505',
    format('endpoint ''all-hook'' of tenant %s exists and is not a Slack endpoint', :'tenant_a'),
    'configure_slack with the name of a webhook endpoint: 23505'
);
select throws_ok(
    $$select * from tenancy.configure_webhook('all-slack', 'https://example.com/hook')$$,
    '23505',
    format('endpoint ''all-slack'' of tenant %s exists and is not a webhook endpoint', :'tenant_a'),
    'configure_webhook with the name of a Slack endpoint: 23505'
);
select lives_ok(
    format($$select * from tenancy.configure_webhook('edge-hook', 'https://example.com/edge', '{}', %L)$$, :'secret_3'),
    'a secret of 64 bytes is taken'
);
select lives_ok(
    format($$select tenancy.rotate_webhook_secret('edge-hook', %L)$$, :'secret_2'),
    'a secret of 24 bytes is taken'
);
select lives_ok($$select tenancy.remove_endpoint('edge-hook')$$, 'the endpoint of the edge cases is removed');
reset role;
select results_eq(
    format(
        $$select count(*)::integer, count(*) filter (where name in ('alerts-slack', 'all-slack', 'all-hook'))::integer
        from tenancy.connector_endpoints where tenant_id = %L$$,
        :'tenant_a'
    ),
    $$values (9, 3)$$,
    'the refused calls changed no endpoint: the 9 configured are there'
);
select is(
    (
        select url from tenancy.connector_secrets
        where endpoint_id = :'slack_all'
    ),
    'https://hooks.slack.com/services/T0/B1/allSecretPath',
    'the 23505 refusal left the Slack endpoint''s URL alone'
);

-- Connector events: delivered to the endpoints whose filters match -----------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select
    tenancy.log_slack_message('#alerts', 'Deploy done') as ev_slack_alerts,
    tenancy.log_slack_message('general', 'Hello') as ev_slack_general,
    tenancy.log_connector_event('slack', 'message', '{"channel": "random", "text": "direct"}') as ev_slack_random,
    tenancy.log_connector_event('billing', 'invoice_paid', '{"invoice": "in_1"}') as ev_paid,
    tenancy.log_connector_event('billing', 'refund', '{"invoice": "in_1"}') as ev_refund,
    tenancy.log_connector_event('usage', 'alert', '{"meter": "api_calls"}') as ev_usage,
    tenancy.log_connector_event('usages', 'alert') as ev_usages,
    tenancy.log_connector_event('crm', 'sync', '{"account": 7}', 'account-7') as ev_crm
\gset
reset role;
select is(
    pg_temp.destinations(:'ev_slack_alerts'),
    '{alerts-slack,all-hook,all-slack}',
    'a Slack message of #alerts goes to the Slack endpoint of alerts, the one of every channel and the webhook of every type (not the disabled one)'
);
select is(
    pg_temp.destinations(:'ev_slack_general'),
    '{all-hook,all-slack,general-slack}',
    'a Slack message of general goes to the endpoint of general and the one of every channel'
);
select is(
    pg_temp.destinations(:'ev_slack_random'),
    '{all-hook,all-slack}',
    'a slack.message logged directly goes to the Slack endpoint of every channel only'
);
select is(
    pg_temp.destinations(:'ev_paid'),
    '{all-hook,billing-hook,multi-hook}',
    'billing.invoice_paid: the exact filter, billing.* and the webhook of every type; no Slack endpoint'
);
select is(pg_temp.destinations(:'ev_refund'), '{all-hook,multi-hook}', 'billing.refund: billing.* but not the exact filter of another action');
select is(pg_temp.destinations(:'ev_usage'), '{all-hook,usage-hook}', 'usage.alert: usage.*');
select is(pg_temp.destinations(:'ev_usages'), '{all-hook}', 'usages.alert is not matched by usage.*');
select is(pg_temp.destinations(:'ev_crm'), '{all-hook,multi-hook}', 'crm.sync: the exact filter among others');
select is(
    (
        select count(*)::integer from tenancy.deliveries
        where tenant_id = :'tenant_a' and destination_id in (:'slack_off', :'hook_off')
    ),
    0,
    'disabled endpoints get no delivery'
);
select results_eq(
    format(
        $$select connector, action, ordering_key, payload, actor from tenancy.connector_events where id = %L$$,
        :'ev_slack_alerts'
    ),
    format($$values ('slack', 'message', 'slack:alerts', '{"channel": "alerts", "text": "Deploy done"}'::jsonb, %L)$$, :'member_a'),
    'log_slack_message logs slack.message {channel, text} without the #, ordered per channel'
);
select results_eq(
    format(
        $$select distinct tenant_id, source, ordering_key, attempts, next_attempt_at = now(), occurred_at = now()
        from tenancy.deliveries where event_id = %L$$,
        :'ev_crm'
    ),
    format($$values (%L::uuid, 'connector', 'account-7', 0, true, true)$$, :'tenant_a'),
    'a connector event''s deliveries carry its ordering key, due now, never attempted'
);
select is(substr(:'ev_slack_general', 15, 1), '7', 'log_slack_message returns a version 7 UUID');

-- Enqueue rolls back with the caller's transaction ---------------------------------------------

savepoint before_enqueue;  -- noqa: PRS
select pg_temp.act_as(:'tenant_a', :'member_a');
select
    tenancy.track_event('rolled_back', 'user-9') as rb_analytics,
    tenancy.log_slack_message('alerts', 'never sent') as rb_slack
\gset
reset role;
select
    (
        select count(*) from tenancy.analytics_events
        where id = :'rb_analytics'
    ) + (
        select count(*) from tenancy.connector_events
        where id = :'rb_slack'
    ) as rb_events,
    (
        select count(*) from tenancy.deliveries
        where event_id in (:'rb_analytics', :'rb_slack')
    ) as rb_deliveries
\gset
rollback to savepoint before_enqueue;
select results_eq(
    format($$values (%s::bigint, %s::bigint)$$, :'rb_events', :'rb_deliveries'),
    $$values (2::bigint, 4::bigint)$$,
    'before the rollback: the two events and their four deliveries'
);
select results_eq(
    format(
        $$select (select count(*) from tenancy.analytics_events where id = %L)
            + (select count(*) from tenancy.connector_events where id = %L),
            (select count(*) from tenancy.deliveries where event_id in (%L, %L))$$,
        :'rb_analytics', :'rb_slack', :'rb_analytics', :'rb_slack'
    ),
    $$values (0::bigint, 0::bigint)$$,
    'rolled back with the caller''s (sub)transaction: no event, no delivery'
);

-- Enqueue: refused input, nothing written -------------------------------------------------------

select pg_temp.rows_of(:'tenant_a') as rows_before_errors \gset
select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.track_event(null, 'user-1')$$,
    '22023',
    'event name NULL is not 1 to 200 characters without control characters',
    'track_event refuses a NULL event name'
);
select throws_ok(
    $$select tenancy.track_event('', 'user-1')$$,
    '22023',
    'event name '''' is not 1 to 200 characters without control characters',
    'track_event refuses an empty event name'
);
select throws_ok(
    $$select tenancy.track_event(repeat('e', 201), 'user-1')$$,
    '22023',
    format('event name %L is not 1 to 200 characters without control characters', repeat('e', 100) || '...'),
    'track_event refuses an event name of 201 characters'
);
select throws_ok(
    $$select tenancy.track_event(E'sign\nup', 'user-1')$$,
    '22023',
    format('event name %L is not 1 to 200 characters without control characters', E'sign\nup'),
    'track_event refuses an event name with a control character'
);
select throws_ok(
    $$select tenancy.track_event('$groupidentify', 'user-1')$$,
    '22023',
    'event name ''$groupidentify'' is reserved: pgtenancy sends group and identity events itself',
    'track_event refuses $groupidentify'
);
select throws_ok(
    $$select tenancy.track_event('$identify', 'user-1')$$,
    '22023',
    'event name ''$identify'' is reserved: pgtenancy sends group and identity events itself',
    'track_event refuses $identify'
);
select throws_ok(
    $$select tenancy.track_event('$create_alias', 'user-1')$$,
    '22023',
    'event name ''$create_alias'' is reserved: pgtenancy sends group and identity events itself',
    'track_event refuses $create_alias'
);
select throws_ok(
    $$select tenancy.track_event('$merge_dangerously', 'user-1')$$,
    '22023',
    'event name ''$merge_dangerously'' is reserved: pgtenancy sends group and identity events itself',
    'track_event refuses $merge_dangerously'
);
select throws_ok(
    $$select tenancy.track_event('signup', null)$$,
    '22023',
    'distinct id NULL is not 1 to 200 characters without control characters',
    'track_event refuses a NULL distinct id'
);
select throws_ok(
    $$select tenancy.track_event('signup', repeat('d', 201))$$,
    '22023',
    format('distinct id %L is not 1 to 200 characters without control characters', repeat('d', 100) || '...'),
    'track_event refuses a distinct id of 201 characters'
);
select throws_ok(
    $$select tenancy.track_api_call('', '/v1/projects', 'get')$$,
    '22023',
    'distinct id '''' is not 1 to 200 characters without control characters',
    'track_api_call refuses an empty distinct id'
);
select throws_ok(
    $$select tenancy.track_event('signup', 'user-1', '[1, 2]')$$,
    '22023',
    'properties [1, 2] are not a JSON object',
    'track_event refuses properties that are an array'
);
select throws_ok(
    $$select tenancy.track_event('signup', 'user-1', '"plan"')$$,
    '22023',
    'properties "plan" are not a JSON object',
    'track_event refuses properties that are a string'
);
select throws_ok(
    $$select tenancy.track_event('big', 'user-1', jsonb_build_object('p', repeat('x', 32760)))$$,
    '22023',
    'properties of event ''big'' are 32769 bytes: at most 32768',
    'track_event refuses properties of 32 KB and one byte'
);
select throws_ok(
    $$select tenancy.track_events('{"event": "signup"}')$$,
    '22023',
    'events {"event": "signup"} are not a JSON array of at most 1000 events',
    'track_events refuses an object'
);
select throws_ok(
    $$select tenancy.track_events(null)$$,
    '22023',
    'events NULL are not a JSON array of at most 1000 events',
    'track_events refuses NULL'
);
select throws_like(
    $$select tenancy.track_events(
        (select jsonb_agg(jsonb_build_object('event', 'e', 'distinct_id', 'u')) from generate_series(1, 1001))
    )$$,
    '%are not a JSON array of at most 1000 events',
    'track_events refuses 1001 events'
);
select throws_ok(
    $$select tenancy.track_events('[{"event": "ok", "distinct_id": "u"}, {"event": "$identify", "distinct_id": "u"}]')$$,
    '22023',
    'event 2 of the batch is not {"event": name, "distinct_id": id, "properties": {…}} with a name and id of 1 to 200 characters (not a reserved name) and properties of at most 32768 bytes: {"event": "$identify", "distinct_id": "u"}',
    'track_events refuses a reserved name, naming the event''s position'
);
select throws_ok(
    $$select tenancy.track_events('[{"event": "ok", "distinct_id": "u"}, {"event": "ok"}, {"event": "ok", "distinct_id": ""}]')$$,
    '22023',
    'event 2 of the batch is not {"event": name, "distinct_id": id, "properties": {…}} with a name and id of 1 to 200 characters (not a reserved name) and properties of at most 32768 bytes: {"event": "ok"}',
    'track_events refuses an event without a distinct id, naming the first bad one'
);
select throws_like(
    $$select tenancy.track_events(jsonb_build_array(
        jsonb_build_object('event', 'big', 'distinct_id', 'u', 'properties', jsonb_build_object('p', repeat('x', 32760)))
    ))$$,
    'event 1 of the batch is not %',
    'track_events refuses properties of 32 KB and one byte'
);
select throws_like(
    $$select tenancy.track_events('[{"event": "ok", "distinct_id": "u", "properties": [1]}]')$$,
    'event 1 of the batch is not %',
    'track_events refuses properties that are not an object'
);
select throws_ok(
    $$select tenancy.log_connector_event(null, 'sync')$$,
    '22023',
    'connector NULL is not a lower-case name (a letter, then up to 62 letters, digits and underscores)',
    'log_connector_event refuses a NULL connector'
);
select throws_ok(
    $$select tenancy.log_connector_event('CRM', 'sync')$$,
    '22023',
    'connector ''CRM'' is not a lower-case name (a letter, then up to 62 letters, digits and underscores)',
    'log_connector_event refuses an upper-case connector'
);
select throws_ok(
    $$select tenancy.log_connector_event('crm.x', 'sync')$$,
    '22023',
    'connector ''crm.x'' is not a lower-case name (a letter, then up to 62 letters, digits and underscores)',
    'log_connector_event refuses a connector with a dot'
);
select throws_ok(
    $$select tenancy.log_connector_event('c' || repeat('x', 63), 'sync')$$,
    '22023',
    format('connector %L is not a lower-case name (a letter, then up to 62 letters, digits and underscores)', 'c' || repeat('x', 63)),
    'log_connector_event refuses a connector of 64 characters'
);
select throws_ok(
    $$select tenancy.log_connector_event('crm', '1sync')$$,
    '22023',
    'action ''1sync'' is not a lower-case name (a letter, then up to 62 letters, digits and underscores)',
    'log_connector_event refuses an action starting with a digit'
);
select throws_ok(
    $$select tenancy.log_connector_event('crm', null)$$,
    '22023',
    'action NULL is not a lower-case name (a letter, then up to 62 letters, digits and underscores)',
    'log_connector_event refuses a NULL action'
);
select throws_ok(
    $$select tenancy.log_connector_event('crm', 'sync', null)$$,
    '22023',
    'payload NULL is not a JSON object',
    'log_connector_event refuses a NULL payload'
);
select throws_ok(
    $$select tenancy.log_connector_event('crm', 'sync', '[1]')$$,
    '22023',
    'payload [1] is not a JSON object',
    'log_connector_event refuses a payload that is an array'
);
select throws_ok(
    $$select tenancy.log_connector_event('crm', 'sync', jsonb_build_object('p', repeat('x', 65528)))$$,
    '22023',
    'payload of crm.sync is 65537 bytes: at most 65536',
    'log_connector_event refuses a payload of 64 KB and one byte'
);
select throws_ok(
    $$select tenancy.log_connector_event('crm', 'sync', '{}', '')$$,
    '22023',
    'ordering key '''' is not 1 to 200 characters',
    'log_connector_event refuses an empty ordering key'
);
select throws_ok(
    $$select tenancy.log_connector_event('crm', 'sync', '{}', repeat('k', 201))$$,
    '22023',
    format('ordering key %L is not 1 to 200 characters', repeat('k', 100) || '...'),
    'log_connector_event refuses an ordering key of 201 characters'
);
select throws_ok(
    $$select tenancy.log_slack_message(null, 'hello')$$,
    '22023',
    'Slack channel NULL is not a channel name (lower-case letters, digits, - and _, at most 80)',
    'log_slack_message refuses a NULL channel'
);
select throws_ok(
    $$select tenancy.log_slack_message('#Alerts', 'hello')$$,
    '22023',
    'Slack channel ''#Alerts'' is not a channel name (lower-case letters, digits, - and _, at most 80)',
    'log_slack_message refuses an upper-case channel'
);
select throws_ok(
    $$select tenancy.log_slack_message('alerts', '')$$,
    '22023',
    'Slack message of 0 characters: 1 to 40000',
    'log_slack_message refuses an empty message'
);
select throws_ok(
    $$select tenancy.log_slack_message('alerts', null)$$,
    '22023',
    'Slack message of NULL characters: 1 to 40000',
    'log_slack_message refuses a NULL message'
);
select throws_ok(
    $$select tenancy.log_slack_message('alerts', repeat('m', 40001))$$,
    '22023',
    'Slack message of 40001 characters: 1 to 40000',
    'log_slack_message refuses a message of 40,001 characters'
);
reset role;
select is(pg_temp.rows_of(:'tenant_a'), :'rows_before_errors'::bigint, 'the refused calls wrote no event and no delivery');

select pg_temp.act_as(:'tenant_a', :'member_a');
select
    tenancy.track_event('big', 'user-1', jsonb_build_object('p', repeat('x', 32759))) as ev_big_props,
    tenancy.log_connector_event('crm', 'sync', jsonb_build_object('p', repeat('x', 65527))) as ev_big_payload,
    tenancy.log_slack_message('alerts', repeat('m', 40000)) as ev_long_message
\gset
reset role;
select results_eq(
    format(
        $$select (select octet_length(properties::text) from tenancy.analytics_events where id = %L),
            (select octet_length(payload::text) from tenancy.connector_events where id = %L),
            (select length(payload ->> 'text') from tenancy.connector_events where id = %L)$$,
        :'ev_big_props', :'ev_big_payload', :'ev_long_message'
    ),
    $$values (32768, 65536, 40000)$$,
    'properties of 32768 bytes, a payload of 65536 bytes and a Slack message of 40,000 characters are taken'
);

-- Secrets: rotation, and who reads them ---------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'admin_a');
select tenancy.rotate_webhook_secret('billing-hook', :'secret_2', '1 hour') is null as rotated_given_null \gset
reset role;
select ok(:'rotated_given_null'::boolean, 'rotate_webhook_secret returns NULL when the caller gave the secret');
select is(
    pg_temp.secrets(:'hook_billing'),
    array[:'secret_2', :'secret_1'],
    'after a rotation the relay signs with both secrets, the newest first'
);
select is(
    (
        select expires_at from tenancy.connector_secrets
        where endpoint_id = :'hook_billing' and signing_secret = :'secret_1'
    ),
    now() + interval '1 hour',
    'the previous secret expires after the overlap'
);
-- The overlap ends.
update tenancy.connector_secrets set expires_at = now() - interval '1 second'
where endpoint_id = :'hook_billing' and signing_secret = :'secret_1';
select is(pg_temp.secrets(:'hook_billing'), array[:'secret_2'], 'once the overlap ended, the previous secret no longer signs');

select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.rotate_webhook_secret('billing-hook') as rotated_new \gset
reset role;
select ok(:'rotated_new' ~ '^whsec_[A-Za-z0-9+/]+={0,2}$', 'rotate_webhook_secret returns a new whsec_ secret');
select is(
    pg_temp.secrets(:'hook_billing'),
    array[:'rotated_new', :'secret_2'],
    'a second rotation: the new secret and the previous one (the expired one is gone)'
);
select is(
    (
        select count(*)::integer from tenancy.connector_secrets
        where endpoint_id = :'hook_billing'
    ),
    2,
    'rotation forgets the expired secret'
);
select is(
    (
        select url from tenancy.connector_secrets
        where endpoint_id = :'hook_billing'
        order by secret_id desc limit 1
    ),
    'https://example.com/billing',
    'the new secret keeps the endpoint''s URL'
);
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.rotate_webhook_secret('usage-hook', :'secret_1', '0') is null as rotated_zero_null \gset
select throws_ok(
    $$select tenancy.rotate_webhook_secret('nope')$$,
    'P0002',
    format('webhook endpoint ''nope'' does not exist in tenant %s', :'tenant_a'),
    'rotate_webhook_secret of an unknown endpoint: P0002'
);
select throws_ok(
    $$select tenancy.rotate_webhook_secret('all-slack')$$,
    'P0002',
    format('webhook endpoint ''all-slack'' does not exist in tenant %s', :'tenant_a'),
    'rotate_webhook_secret of a Slack endpoint: P0002'
);
select throws_ok(
    $$select tenancy.rotate_webhook_secret('usage-hook', null, '-1 hour')$$,
    '22023',
    'overlap -01:00:00 is not between 0 and 30 days',
    'rotate_webhook_secret refuses a negative overlap'
);
select throws_ok(
    $$select tenancy.rotate_webhook_secret('usage-hook', null, '31 days')$$,
    '22023',
    'overlap 31 days is not between 0 and 30 days',
    'rotate_webhook_secret refuses an overlap of 31 days'
);
select throws_ok(
    $$select tenancy.rotate_webhook_secret('usage-hook', 'whsec_short')$$,
    '22023',
    'signing secret ''whsec_shor…'' is not whsec_ and the base64 of 24 to 64 bytes',
    'rotate_webhook_secret refuses a bad secret'
);
reset role;
select is(pg_temp.secrets(:'hook_usage'), array[:'secret_1'], 'a rotation without overlap: only the new secret signs');
select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.rotate_webhook_secret('usage-hook')$$,
    '42501',
    format('role member of tenant %s cannot configure connectors', :'tenant_a'),
    'a member cannot rotate a secret: 42501'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok(
    $$select tenancy.rotate_webhook_secret('usage-hook')$$,
    '42501',
    format('role viewer of tenant %s cannot configure connectors', :'tenant_a'),
    'a viewer cannot rotate a secret: 42501'
);
reset role;
select is(pg_temp.secrets(:'hook_usage'), array[:'secret_1'], 'the refused rotations changed no secret');

-- The application never reads a URL or a secret back.
select pg_temp.act_as(:'tenant_a', :'owner_a');
select throws_ok(
    $$select * from tenancy.connector_secrets$$,
    '42501',
    'permission denied for table connector_secrets',
    'the application role cannot read tenancy.connector_secrets, even as an owner'
);
select throws_ok(
    format($$select * from tenancy.relay_endpoints(array[%L]::uuid [])$$, :'hook_billing'),
    '42501',
    'permission denied for function relay_endpoints',
    'the application role cannot execute relay_endpoints'
);
select throws_ok(
    $$select * from tenancy.relay_claim('app', false)$$,
    '42501',
    'permission denied for function relay_claim',
    'the application role cannot execute relay_claim'
);
select throws_ok(
    $$select tenancy.relay_complete('app', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')$$,
    '42501',
    'permission denied for function relay_complete',
    'the application role cannot execute relay_complete'
);
select is(
    (
        select count(*)::integer from tenancy.connector_endpoints
        where url_display like '%SecretPath%'
    ),
    0,
    'no url_display of a Slack endpoint holds its path'
);
reset role;
set local role tenancy_service;
select throws_ok(
    $$select * from tenancy.connector_secrets$$,
    '42501',
    'permission denied for table connector_secrets',
    'the relay''s role reads no secret directly either: only through relay_endpoints'
);
reset role;

-- Members and viewers read no endpoint.
select pg_temp.act_as(:'tenant_a', :'member_a');
select is((select count(*)::integer from tenancy.connector_endpoints), 0, 'a member reads none of the tenant''s endpoints');
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select is((select count(*)::integer from tenancy.connector_endpoints), 0, 'a viewer reads none of the tenant''s endpoints');
reset role;

-- Enabling, disabling and removing endpoints ----------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.set_endpoint_enabled('all-hook', false)$$,
    '42501',
    format('role member of tenant %s cannot configure connectors', :'tenant_a'),
    'a member cannot disable an endpoint: 42501'
);
select throws_ok(
    $$select tenancy.remove_endpoint('all-hook')$$,
    '42501',
    format('role member of tenant %s cannot configure connectors', :'tenant_a'),
    'a member cannot remove an endpoint: 42501'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok(
    $$select tenancy.set_endpoint_enabled('all-hook', false)$$,
    '42501',
    format('role viewer of tenant %s cannot configure connectors', :'tenant_a'),
    'a viewer cannot disable an endpoint: 42501'
);
select throws_ok(
    $$select tenancy.remove_endpoint('all-hook')$$,
    '42501',
    format('role viewer of tenant %s cannot configure connectors', :'tenant_a'),
    'a viewer cannot remove an endpoint: 42501'
);
reset role;

select pg_temp.act_as(:'tenant_a', :'admin_a');
select throws_ok(
    $$select tenancy.set_endpoint_enabled('nope', false)$$,
    'P0002',
    format('endpoint ''nope'' does not exist in tenant %s', :'tenant_a'),
    'set_endpoint_enabled of an unknown endpoint: P0002'
);
select throws_ok(
    $$select tenancy.set_endpoint_enabled('all-hook', null)$$,
    '22023',
    'p_enabled is NULL: true or false',
    'set_endpoint_enabled refuses NULL'
);
select throws_ok(
    $$select tenancy.remove_endpoint('nope')$$,
    'P0002',
    format('endpoint ''nope'' does not exist in tenant %s', :'tenant_a'),
    'remove_endpoint of an unknown endpoint: P0002'
);
select lives_ok($$select tenancy.set_endpoint_enabled('general-slack', false)$$, 'an admin disables an endpoint');
select results_eq(
    $$select enabled, disabled_reason, disabled_at = now() from tenancy.connector_endpoints where name = 'general-slack'$$,
    format($$values (false, %L, true)$$, 'disabled by ' || :'admin_a'),
    'a disabled endpoint says who disabled it and when'
);
select tenancy.log_slack_message('general', 'while disabled') as ev_general_off \gset
select is(
    (
        select count(*)::integer from tenancy.delivery_status
        where event_id = :'ev_general_off' and destination = 'general-slack'
    ),
    0,
    'a disabled endpoint is given no new event'
);
select lives_ok($$select tenancy.set_endpoint_enabled('general-slack', true)$$, 'an admin enables it again');
select results_eq(
    $$select enabled, disabled_reason, disabled_at from tenancy.connector_endpoints where name = 'general-slack'$$,
    $$values (true, null::text, null::timestamptz)$$,
    'enabled again, without a reason'
);
select tenancy.log_slack_message('general', 'enabled again') as ev_general_on \gset
select is(
    (
        select count(*)::integer from tenancy.delivery_status
        where event_id = :'ev_general_on' and destination = 'general-slack'
    ),
    1,
    'an endpoint enabled again is given new events'
);

select lives_ok($$select tenancy.remove_endpoint('all-slack')$$, 'an admin removes an endpoint');
select is(
    (
        select count(*)::integer from tenancy.connector_endpoints
        where name = 'all-slack'
    ),
    0,
    'the removed endpoint is gone'
);
reset role;
select is(
    (
        select count(*)::integer from tenancy.connector_secrets
        where endpoint_id = :'slack_all'
    ),
    0,
    'its URL is gone with it'
);
select results_eq(
    format(
        $$select count(*)::integer, count(*) filter (where dead_at = now() and last_error = 'endpoint removed')::integer
        from tenancy.deliveries where destination_id = %L$$,
        :'slack_all'
    ),
    $$values (6, 6)$$,
    'its pending deliveries are dead-lettered: endpoint removed'
);
select is(
    (
        select count(*)::integer from tenancy.deliveries
        where tenant_id = :'tenant_a' and destination_id <> :'slack_all' and dead_at is not null
    ),
    0,
    'the deliveries to other endpoints stay pending'
);
select pg_temp.act_as(:'tenant_a', :'owner_a');
select results_eq(
    format($$select destination, kind, state from tenancy.delivery_status where event_id = %L order by 1$$, :'ev_slack_random'),
    $$values ('all-hook', 'webhook', 'pending'), (null, null, 'dead')$$,
    'delivery_status shows a removed endpoint''s delivery dead, without a destination or kind'
);
select tenancy.log_slack_message('random', 'after removal') as ev_after_removal \gset
reset role;
select is(pg_temp.destinations(:'ev_after_removal'), '{all-hook}', 'a removed endpoint is given no new event');

select * from finish();
rollback;
