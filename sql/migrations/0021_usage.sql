-- pgtenancy usage metering: a tenant's meters, customers, versioned tiers, subscriptions, usage log, counters, holds and alerts.
-- Every table is a tenant table (tenant_id leads every key; generated policies, sql/tenancy.toml)
-- written only by pgtenancy's functions (sql/functions/usage/). Counting is exact because every
-- count goes through one row of tenancy.usage_counters per (customer, meter, period start):
-- tenancy.track_usage checks a hard cap and adds to that row in one statement, under its row
-- lock, so concurrent calls take turns on it and never overshoot; a new period is a new row, so
-- nothing is ever reset. tenancy.usage_events keeps every counted event (partitioned by month of
-- occurred_at), from which tenancy.usage_summary recomputes what the counters hold.

create domain tenancy.usage_key as text
constraint usage_key_check check (
    pg_catalog.regexp_like(value, '^[a-z][a-z0-9_]{0,62}$')
);
comment on domain tenancy.usage_key is
'pgtenancy: a meter key or a feature name: a lower-case letter, then up to 62 lower-case '
'letters, digits and underscores (api_calls, custom_domain).';

create table tenancy.meters (
    tenant_id uuid not null,
    id uuid not null default pg_catalog.gen_random_uuid(),
    key tenancy.usage_key not null,
    name text not null,
    unit text not null default 'unit',
    aggregation text not null default 'sum',
    property text,
    reset_period text not null default 'month',
    backdate_grace interval not null default '24 hours',
    created_at timestamptz not null default pg_catalog.now(),
    updated_at timestamptz not null default pg_catalog.now(),
    constraint meters_pkey primary key (tenant_id, id),
    constraint meters_tenant_id_key_key unique (tenant_id, key),
    constraint meters_tenant_id_fkey foreign key (tenant_id)
    references tenancy.tenants (id) on delete cascade,
    constraint meters_aggregation_check check (
        aggregation operator (pg_catalog.=) any('{sum,count,max,unique_count,latest}'::pg_catalog.text[])  -- noqa: LT01
    ),
    constraint meters_property_check check (
        (aggregation operator (pg_catalog.=) 'unique_count') operator (pg_catalog.=) (property is not null)  -- noqa: LT01
    ),
    constraint meters_reset_period_check check (
        reset_period operator (pg_catalog.=) any('{day,week,month,year,never}'::pg_catalog.text[])  -- noqa: LT01
    ),
    constraint meters_backdate_grace_check check (
        backdate_grace operator (pg_catalog.>=) interval '0' and backdate_grace operator (pg_catalog.<=) interval '90 days'  -- noqa: LT01
    )
);
comment on table tenancy.meters is
'pgtenancy: what a tenant meters for its customers (tenancy.create_meter): a key such as '
'api_calls, an aggregation and the period its counters reset on. Tenant table.';
comment on column tenancy.meters.aggregation is
'sum of event values, count of events, max of event values, unique_count of the values of '
'property, or the latest value (by occurred_at) in each period.';
comment on column tenancy.meters.property is
'The event property whose distinct values unique_count counts; NULL for the other aggregations.';
comment on column tenancy.meters.reset_period is
'day, week, month, year (anchored on the customer''s subscription start; calendar periods in UTC '
'without a subscription) or never.';
comment on column tenancy.meters.backdate_grace is
'How far in the past an event''s occurred_at may be (default 24 hours); older events are refused, '
'TN018.';

create table tenancy.customers (
    tenant_id uuid not null,
    id uuid not null default pg_catalog.gen_random_uuid(),
    external_id text not null,
    name text,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default pg_catalog.now(),
    constraint customers_pkey primary key (tenant_id, id),
    constraint customers_tenant_id_external_id_key unique (tenant_id, external_id),
    constraint customers_tenant_id_fkey foreign key (tenant_id)
    references tenancy.tenants (id) on delete cascade,
    constraint customers_external_id_check check (
        pg_catalog.length(external_id) operator (pg_catalog.>=) 1 and pg_catalog.length(external_id) operator (pg_catalog.<=) 255  -- noqa: LT01
    ),
    constraint customers_metadata_check check (pg_catalog.jsonb_typeof(metadata) operator (pg_catalog.=) 'object')  -- noqa: LT01
);
comment on table tenancy.customers is
'pgtenancy: a tenant''s own customers, named by the tenant''s external id (tenancy.create_customer, '
'or on their first tenancy.track_usage or tenancy.subscribe). Tenant table.';

create table tenancy.tiers (
    tenant_id uuid not null,
    id uuid not null default pg_catalog.gen_random_uuid(),
    name text not null,
    version integer not null default 1,
    is_current boolean not null default true,
    price numeric not null default 0,
    currency text not null default 'USD',
    usage_caps jsonb not null default '{}',
    soft_caps text[] not null default '{}',
    overage_prices jsonb not null default '{}',
    feature_entitlements text[] not null default '{}',
    alert_thresholds numeric[] not null default '{0.8,1}',
    created_at timestamptz not null default pg_catalog.now(),
    superseded_at timestamptz,
    constraint tiers_pkey primary key (tenant_id, id),
    constraint tiers_tenant_id_name_version_key unique (tenant_id, name, version),
    constraint tiers_tenant_id_fkey foreign key (tenant_id)
    references tenancy.tenants (id) on delete cascade,
    constraint tiers_name_check check (pg_catalog.length(name) operator (pg_catalog.>=) 1 and pg_catalog.length(name) operator (pg_catalog.<=) 100),  -- noqa: LT01
    constraint tiers_price_check check (price operator (pg_catalog.>=) 0),  -- noqa: LT01
    constraint tiers_currency_check check (pg_catalog.regexp_like(currency, '^[A-Z]{3}$')),
    constraint tiers_usage_caps_check check (pg_catalog.jsonb_typeof(usage_caps) operator (pg_catalog.=) 'object'),  -- noqa: LT01
    constraint tiers_overage_prices_check check (pg_catalog.jsonb_typeof(overage_prices) operator (pg_catalog.=) 'object'),  -- noqa: LT01
    constraint tiers_current_check check (is_current operator (pg_catalog.=) (superseded_at is null))
);
create unique index tiers_current_name_idx on tenancy.tiers (tenant_id, name) where is_current;
comment on table tenancy.tiers is
'pgtenancy: a tenant''s tiers (tenancy.create_tier), versioned: tenancy.update_tier of a tier with '
'subscribers adds a version and leaves them on theirs until tenancy.change_tier moves them. '
'Tenant table.';
comment on column tenancy.tiers.usage_caps is
'Meter key to cap (a number): hard unless the meter is in soft_caps.';
comment on column tenancy.tiers.soft_caps is
'Meter keys whose caps are soft: never refused, alerted and billed as overage.';
comment on column tenancy.tiers.overage_prices is
'Meter key to the price of each unit over its cap (soft caps).';
comment on column tenancy.tiers.alert_thresholds is
'Fractions of each cap whose crossing writes one tenancy.usage_alerts row per period (default '
'80 % and 100 %).';
comment on column tenancy.tiers.is_current is
'The version new subscriptions and tenancy.change_tier take; earlier versions keep their '
'subscribers.';

create table tenancy.subscriptions (
    tenant_id uuid not null,
    customer_id uuid not null,
    tier_id uuid not null,
    started_at timestamptz not null default pg_catalog.now(),
    period_anchor timestamptz not null default pg_catalog.now(),
    cap_overrides jsonb not null default '{}',
    extra_entitlements text[] not null default '{}',
    revoked_entitlements text[] not null default '{}',
    updated_at timestamptz not null default pg_catalog.now(),
    constraint subscriptions_pkey primary key (tenant_id, customer_id),
    constraint subscriptions_customer_fkey foreign key (tenant_id, customer_id)
    references tenancy.customers (tenant_id, id) on delete cascade,
    constraint subscriptions_tier_fkey foreign key (tenant_id, tier_id)
    references tenancy.tiers (tenant_id, id),
    constraint subscriptions_cap_overrides_check check (pg_catalog.jsonb_typeof(cap_overrides) operator (pg_catalog.=) 'object')  -- noqa: LT01
);
comment on table tenancy.subscriptions is
'pgtenancy: each customer''s tier version (tenancy.subscribe, tenancy.change_tier), the anchor of '
'its usage periods and its own overrides of caps and entitlements. Tenant table.';
comment on column tenancy.subscriptions.cap_overrides is
'Meter key to this customer''s cap, over the tier''s; JSON null removes the cap.';

create sequence tenancy.usage_events_id_seq as bigint cache 64;
comment on sequence tenancy.usage_events_id_seq is
'pgtenancy: numbers tenancy.usage_events (cached: ids increase per session, not globally).';

create table tenancy.usage_events (
    tenant_id uuid not null,
    id bigint not null default pg_catalog.nextval('tenancy.usage_events_id_seq'::pg_catalog.regclass),
    customer_id uuid not null,
    meter_id uuid not null,
    period_start timestamptz not null,
    value numeric not null,
    properties jsonb not null default '{}',
    occurred_at timestamptz not null,
    received_at timestamptz not null default pg_catalog.now(),
    idempotency_key text,
    reservation_id uuid,
    constraint usage_events_pkey primary key (tenant_id, occurred_at, id)
) partition by range (occurred_at);
alter sequence tenancy.usage_events_id_seq owned by tenancy.usage_events.id;
create table tenancy.usage_events_default partition of tenancy.usage_events default;
alter table tenancy.usage_events_default enable row level security;
alter table tenancy.usage_events_default force row level security;
comment on table tenancy.usage_events is
'pgtenancy: every counted usage event (refused ones are not), partitioned by month of occurred_at '
'(tenancy.ensure_usage_partitions). tenancy.usage_summary recomputes the counters from it. Tenant '
'table; append-only.';
comment on table tenancy.usage_events_default is
'pgtenancy: usage events of months without a partition of their own.';
comment on column tenancy.usage_events.period_start is
'The start of the counter period the event counted in.';

create table tenancy.usage_counters (
    tenant_id uuid not null,
    customer_id uuid not null,
    meter_id uuid not null,
    period_start timestamptz not null,
    period_end timestamptz not null,
    used numeric not null default 0,
    reserved numeric not null default 0,
    holds_expire_at timestamptz,
    events bigint not null default 0,
    latest_at timestamptz,
    updated_at timestamptz not null default pg_catalog.now(),
    constraint usage_counters_pkey primary key (tenant_id, customer_id, meter_id, period_start)
);
comment on table tenancy.usage_counters is
'pgtenancy: the enforcement counter of each customer, meter and period: checked and changed in '
'one statement by tenancy.track_usage, read with one index lookup by '
'tenancy.check_usage_enforcement. Tenant table.';
comment on column tenancy.usage_counters.reserved is
'Quota held by reservations (tenancy.reserve_usage) as of their last sweep; expired holds are '
'swept when they would refuse an event, and ignored by readers.';
comment on column tenancy.usage_counters.holds_expire_at is
'The earliest expiry among the holds counted in reserved.';
comment on column tenancy.usage_counters.latest_at is
'latest meters: occurred_at of the event whose value used holds.';

create table tenancy.usage_idempotency_keys (
    tenant_id uuid not null,
    customer_id uuid not null,
    key text not null,
    meter_id uuid not null,
    outcome text not null,
    event_id bigint,
    value numeric not null,
    created_at timestamptz not null default pg_catalog.now(),
    constraint usage_idempotency_keys_pkey primary key (tenant_id, customer_id, key),
    constraint usage_idempotency_keys_outcome_check check (outcome operator (pg_catalog.=) any('{recorded,refused}'::pg_catalog.text[])),  -- noqa: LT01
    constraint usage_idempotency_keys_key_check check (pg_catalog.length(key) operator (pg_catalog.>=) 1 and pg_catalog.length(key) operator (pg_catalog.<=) 255)  -- noqa: LT01
);
comment on table tenancy.usage_idempotency_keys is
'pgtenancy: the outcome of every usage event sent with an idempotency key, per tenant and '
'customer: a retry with the key gets this outcome back and counts nothing. Tenant table.';

create table tenancy.usage_unique_values (
    tenant_id uuid not null,
    customer_id uuid not null,
    meter_id uuid not null,
    period_start timestamptz not null,
    value text not null,
    constraint usage_unique_values_pkey primary key (tenant_id, customer_id, meter_id, period_start, value)
);
comment on table tenancy.usage_unique_values is
'pgtenancy: the distinct property values a unique_count meter has counted in each period. Tenant '
'table.';

create table tenancy.usage_reservations (
    tenant_id uuid not null,
    id uuid not null default pg_catalog.gen_random_uuid(),
    customer_id uuid not null,
    meter_id uuid not null,
    period_start timestamptz not null,
    amount numeric not null,
    state text not null default 'held',
    expires_at timestamptz not null,
    created_at timestamptz not null default pg_catalog.now(),
    settled_at timestamptz,
    committed_value numeric,
    constraint usage_reservations_pkey primary key (tenant_id, id),
    constraint usage_reservations_state_check check (
        state operator (pg_catalog.=) any('{held,committed,released,expired}'::pg_catalog.text[])  -- noqa: LT01
    ),
    constraint usage_reservations_amount_check check (amount operator (pg_catalog.>) 0)
);
create index usage_reservations_held_idx on tenancy.usage_reservations (
    tenant_id, customer_id, meter_id, period_start, expires_at
) where state operator (pg_catalog.=) 'held';  -- noqa: LT01
comment on table tenancy.usage_reservations is
'pgtenancy: quota held for a long operation (tenancy.reserve_usage) until it is committed, '
'released or expires. Tenant table.';

create table tenancy.usage_alerts (
    tenant_id uuid not null,
    customer_id uuid not null,
    meter_id uuid not null,
    period_start timestamptz not null,
    threshold numeric not null,
    used numeric not null,
    cap numeric not null,
    created_at timestamptz not null default pg_catalog.now(),
    constraint usage_alerts_pkey primary key (tenant_id, customer_id, meter_id, period_start, threshold)
);
comment on table tenancy.usage_alerts is
'pgtenancy: one row each time a customer''s usage of a meter crosses a threshold of its cap '
'(tenancy.tiers.alert_thresholds) in a period. Tenant table.';

revoke all on tenancy.meters, tenancy.customers, tenancy.tiers, tenancy.subscriptions,
tenancy.usage_events, tenancy.usage_events_default, tenancy.usage_counters,
tenancy.usage_idempotency_keys, tenancy.usage_unique_values, tenancy.usage_reservations,
tenancy.usage_alerts from public;

create type tenancy.usage_batch_item as (
    idx integer,
    meter_id uuid,
    meter_key text,
    aggregation text,
    property text,
    customer text,
    customer_id uuid,
    value numeric,
    properties jsonb,
    idempotency_key text,
    occurred_at timestamptz,
    enforce boolean,
    period_start timestamptz,
    period_end timestamptz,
    cap numeric,
    hard boolean,
    thresholds numeric[],  -- noqa: LT01
    delta numeric,
    event_id bigint,
    outcome text,
    first_outcome text,
    error_code text,
    error text
);
comment on type tenancy.usage_batch_item is
'pgtenancy internal: one event of a tenancy.track_usage_batch call as it is worked through.';
