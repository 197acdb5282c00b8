-- pgtenancy outbox: analytics and connector events enqueued in the application's transaction, their endpoints, secrets and delivery state.
-- An event row and its delivery rows are written by the same statement as the change they
-- describe, so they exist if and only if that transaction commits. The relay (pgtenancy relay, a
-- tenancy_service login) claims due deliveries with FOR UPDATE SKIP LOCKED under leases that
-- expire, and records each outcome. Events and deliveries live in daily partitions (UTC) that
-- tenancy.maintain_outbox creates ahead and drops once they are past their retention and hold
-- no pending delivery: rows are never deleted one by one. Nothing here issues NOTIFY.

create table tenancy.connector_endpoints (
    tenant_id uuid not null,
    id uuid not null default pg_catalog.gen_random_uuid(),
    kind text not null,
    name text not null,
    url_display text not null,
    channel text,
    event_types text[] not null default '{}',
    enabled boolean not null default true,
    disabled_reason text,
    disabled_at timestamptz,
    created_at timestamptz not null default pg_catalog.now(),
    updated_at timestamptz not null default pg_catalog.now(),
    constraint connector_endpoints_pkey primary key (tenant_id, id),
    constraint connector_endpoints_name_key unique (tenant_id, name),
    constraint connector_endpoints_kind_check check (
        kind operator (pg_catalog.=) any('{slack,webhook}'::pg_catalog.text[])  -- noqa: LT01
    )
);
comment on table tenancy.connector_endpoints is
'pgtenancy: a tenant''s Slack incoming webhooks and generic webhook endpoints '
'(tenancy.configure_slack, tenancy.configure_webhook). The URL is shown without its secret part; '
'URLs and signing secrets live in tenancy.connector_secrets, readable by the relay alone. Tenant table.';
comment on column tenancy.connector_endpoints.event_types is
'Connector event types (connector.action) a webhook receives: exact names or a prefix '
'followed by .* (usage.*); empty: every type. A Slack endpoint receives slack.message events.';

create table tenancy.connector_secrets (
    endpoint_id uuid not null,
    secret_id integer not null,
    url text not null,
    signing_secret text,
    created_at timestamptz not null default pg_catalog.now(),
    expires_at timestamptz,
    constraint connector_secrets_pkey primary key (endpoint_id, secret_id)
);
comment on table tenancy.connector_secrets is
'pgtenancy: the URL and Standard Webhooks signing secret (whsec_) of each connector endpoint, '
'one row per secret: after a rotation the previous secret stays valid until expires_at. Platform '
'table: no application role may read it; the relay reads it through tenancy.relay_endpoints.';

create table tenancy.analytics_events (
    tenant_id uuid not null,
    id uuid not null,
    occurred_at timestamptz not null,
    actor text,
    event text not null,
    distinct_id text not null,
    ordering_key text not null,
    properties jsonb not null default '{}',
    constraint analytics_events_pkey primary key (tenant_id, id, occurred_at)
) partition by range (occurred_at);
create table tenancy.analytics_events_default partition of tenancy.analytics_events default;
alter table tenancy.analytics_events_default enable row level security;
alter table tenancy.analytics_events_default force row level security;
comment on table tenancy.analytics_events is
'pgtenancy: the analytics outbox (tenancy.track_event), relayed to PostHog with the tenant as a '
'group. Partitioned by day of occurred_at (tenancy.maintain_outbox). Tenant table; append-only.';
comment on table tenancy.analytics_events_default is
'pgtenancy: analytics events of days without a partition of their own.';

create table tenancy.connector_events (
    tenant_id uuid not null,
    id uuid not null,
    occurred_at timestamptz not null,
    actor text,
    connector text not null,
    action text not null,
    ordering_key text not null,
    payload jsonb not null default '{}',
    constraint connector_events_pkey primary key (tenant_id, id, occurred_at)
) partition by range (occurred_at);
create table tenancy.connector_events_default partition of tenancy.connector_events default;
alter table tenancy.connector_events_default enable row level security;
alter table tenancy.connector_events_default force row level security;
comment on table tenancy.connector_events is
'pgtenancy: the log of every external integration call of a tenant (tenancy.log_connector_event), '
'relayed to its matching endpoints. Partitioned by day of occurred_at. Tenant table; append-only.';
comment on table tenancy.connector_events_default is
'pgtenancy: connector events of days without a partition of their own.';

create table tenancy.deliveries (
    tenant_id uuid not null,
    event_id uuid not null,
    destination_id uuid not null,
    source text not null,
    occurred_at timestamptz not null,
    ordering_key text not null,
    attempts integer not null default 0,
    next_attempt_at timestamptz not null,
    lease_until timestamptz,
    leased_by text,
    last_status integer,
    last_error text,
    delivered_at timestamptz,
    dead_at timestamptz,
    constraint deliveries_pkey primary key (tenant_id, event_id, destination_id, occurred_at),
    constraint deliveries_source_check check (
        source operator (pg_catalog.=) any('{analytics,connector}'::pg_catalog.text[])  -- noqa: LT01
    )
) partition by range (occurred_at);
create table tenancy.deliveries_default partition of tenancy.deliveries default;
alter table tenancy.deliveries_default enable row level security;
alter table tenancy.deliveries_default force row level security;
-- The pending deliveries of a destination and ordering key in event order: the relay's claim
-- finds each key's head here, and a later event waits while an earlier one is pending.
create index deliveries_pending_idx on tenancy.deliveries (
    tenant_id, destination_id, ordering_key, event_id
) where delivered_at is null and dead_at is null;
-- Dead letters per destination, for tenancy.replay_dead_letters and the relay's counts.
create index deliveries_dead_idx on tenancy.deliveries (
    tenant_id, destination_id, dead_at
) where dead_at is not null;
comment on table tenancy.deliveries is
'pgtenancy: the delivery state of each event at each destination (the nil uuid: the platform''s '
'PostHog project; else a tenancy.connector_endpoints id): attempts, next attempt, lease, last '
'status and error, delivered_at or dead_at. Partitioned by day of the event''s occurred_at. Tenant table.';
comment on table tenancy.deliveries_default is
'pgtenancy: deliveries of events of days without a partition of their own.';

create table tenancy.outbox_retention (
    table_name text not null,
    retain interval not null,
    constraint outbox_retention_pkey primary key (table_name),
    constraint outbox_retention_table_check check (
        table_name operator (pg_catalog.=) any(  -- noqa: LT01
            '{analytics_events,connector_events,deliveries}'::pg_catalog.text[]
        )
    ),
    constraint outbox_retention_retain_check check (
        retain operator (pg_catalog.>=) interval '1 day'  -- noqa: LT01
        and retain operator (pg_catalog.<=) interval '10 years'  -- noqa: LT01
    )
);
comment on table tenancy.outbox_retention is
'pgtenancy: how long each outbox table keeps a day''s partition once every delivery of it is '
'final (tenancy.set_outbox_retention). Platform table.';
insert into tenancy.outbox_retention (table_name, retain) values
('analytics_events', interval '7 days'),
('connector_events', interval '30 days'),
('deliveries', interval '30 days');

revoke all on tenancy.connector_endpoints, tenancy.connector_secrets, tenancy.analytics_events,
tenancy.analytics_events_default, tenancy.connector_events, tenancy.connector_events_default,
tenancy.deliveries, tenancy.deliveries_default, tenancy.outbox_retention from public;
grant select on tenancy.outbox_retention to tenancy_service, tenancy_admin;
