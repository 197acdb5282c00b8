-- tenancy.track_usage_batch: record up to 10,000 usage events in one call, each with its own outcome.

-- Each event is an object {meter, customer, value (default 1), properties, idempotency_key,
-- occurred_at (ISO 8601 with an offset, default now), enforce (default false)}. An invalid event
-- (its SQLSTATE and message are returned: 22023, P0002 for an unknown meter, TN018 outside the
-- time window, TN019 for a reused key) and a duplicate count nothing and do not stop the others.
-- Events are counted set-wise: a few statements for the whole batch (idempotency keys, distinct
-- values, one counter upsert per customer, meter and period, the log, the alerts). Events to be
-- enforced against a hard cap are then counted one by one in batch order, like
-- tenancy.track_usage(p_enforce => true), each in its own subtransaction so that a failure
-- leaves no part of it; so within a batch, enforced events see every unenforced one as earlier.
-- Within a batch the first event of an idempotency key (per customer) counts and the later ones
-- are its duplicates. used, cap and remaining are the counter's after the whole batch.
create or replace function tenancy.track_usage_batch(p_events jsonb)
returns table (
    event_index integer,
    outcome text,
    event_id bigint,
    used numeric,
    cap numeric,
    remaining numeric,
    first_outcome text,
    error_code text,
    error text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    v_tenant_id uuid := tenancy.context_tenant_id(array['owner', 'admin', 'member']);
    v_items tenancy.usage_batch_item[];
    v_claimed bigint[];
    v_item tenancy.usage_batch_item;
    v_meter tenancy.meters;
    v_result record;
    v_new_values integer[];
    v_i integer;
    v_enforced tenancy.usage_batch_item[] := '{}'::tenancy.usage_batch_item[];
begin
    if v_tenant_id is null then
        v_tenant_id := tenancy.require_usage_role(array['owner', 'admin', 'member'], 'track usage');
    end if;
    if jsonb_typeof(p_events) is distinct from 'array' or jsonb_array_length(p_events) > 10000 then
        raise exception using
            errcode = '22023',
            message = format(
                'usage batch must be a JSON array of at most 10000 events, got %s',
                coalesce(jsonb_typeof(p_events) || case when jsonb_typeof(p_events) = 'array'
                    then ' of ' || jsonb_array_length(p_events) || ' events' else '' end, 'NULL')
            );
    end if;

    -- Customers seen for the first time, for events naming a meter of the tenant.
    insert into tenancy.customers as c (tenant_id, external_id)
    select distinct v_tenant_id, e.doc ->> 'customer'
    from jsonb_array_elements(p_events) as e (doc)
    where jsonb_typeof(e.doc -> 'customer') = 'string'
        and length(e.doc ->> 'customer') between 1 and 255
        and exists (select from tenancy.meters as m where m.tenant_id = v_tenant_id and m.key = e.doc ->> 'meter')
    on conflict (tenant_id, external_id) do nothing;

    -- Parse, check and resolve every event.
    v_items := array(
        select row(
            e.ord::integer - 1, m.id, m.key, m.aggregation, m.property,
            e.doc ->> 'customer', c.id, p.value, p.properties, p.idempotency_key, p.occurred_at, p.enforce,
            per.period_start, per.period_end,
            case when s.cap_overrides ? m.key then (s.cap_overrides ->> m.key)::numeric else (t.usage_caps ->> m.key)::numeric end,
            not m.key = any(t.soft_caps), t.alert_thresholds,
            case m.aggregation when 'count' then 1 when 'unique_count' then 1 else p.value end,
            null, null, null,
            chk.code, chk.message
        )::tenancy.usage_batch_item
        from jsonb_array_elements(p_events) with ordinality as e (doc, ord)
        left join tenancy.meters as m
            on jsonb_typeof(e.doc) = 'object' and m.tenant_id = v_tenant_id and m.key = e.doc ->> 'meter'
        left join tenancy.customers as c
            on jsonb_typeof(e.doc) = 'object' and c.tenant_id = v_tenant_id and c.external_id = e.doc ->> 'customer'
        left join tenancy.subscriptions as s on s.tenant_id = v_tenant_id and s.customer_id = c.id
        left join tenancy.tiers as t on t.tenant_id = v_tenant_id and t.id = s.tier_id
        cross join lateral (
            select
                case when jsonb_typeof(e.doc -> 'value') = 'number' then (e.doc ->> 'value')::numeric
                    when e.doc -> 'value' is null then 1 end as value,
                case when e.doc -> 'properties' is null then '{}'::jsonb else e.doc -> 'properties' end as properties,
                case when jsonb_typeof(e.doc -> 'idempotency_key') = 'string' then e.doc ->> 'idempotency_key' end
                    as idempotency_key,
                case when e.doc -> 'occurred_at' is null then now()
                    when jsonb_typeof(e.doc -> 'occurred_at') = 'string'
                        then tenancy.usage_timestamp(e.doc ->> 'occurred_at') end as occurred_at,
                case when jsonb_typeof(e.doc -> 'enforce') = 'boolean' then (e.doc -> 'enforce')::boolean
                    when e.doc -> 'enforce' is null then false end as enforce
        ) as p
        cross join lateral (
            select
                case
                    when jsonb_typeof(e.doc) <> 'object' then '22023'
                    when jsonb_typeof(e.doc -> 'meter') is distinct from 'string' then '22023'
                    when m.id is null then 'P0002'
                    when jsonb_typeof(e.doc -> 'customer') is distinct from 'string'
                        or length(e.doc ->> 'customer') not between 1 and 255 then '22023'
                    when p.value is null or p.value < 0 then '22023'
                    when jsonb_typeof(p.properties) <> 'object' or octet_length(p.properties::text) > 16384 then '22023'
                    when m.aggregation = 'unique_count' and p.properties ->> m.property is null then '22023'
                    when e.doc -> 'idempotency_key' is not null
                        and (p.idempotency_key is null or length(p.idempotency_key) not between 1 and 255) then '22023'
                    when p.enforce is null then '22023'
                    when p.occurred_at is null then '22007'
                    when p.occurred_at < now() - m.backdate_grace or p.occurred_at > now() + interval '5 minutes' then 'TN018'
                end as code
        ) as k
        cross join lateral (
            select
                k.code,
                case
                    when k.code is null then null
                    when jsonb_typeof(e.doc) <> 'object' then format('usage event is not a JSON object: %s', tenancy.token_excerpt(e.doc::text, 100))
                    when jsonb_typeof(e.doc -> 'meter') is distinct from 'string' then 'usage event has no meter (a string)'
                    when m.id is null then format('meter %L does not exist in tenant %s', tenancy.token_excerpt(e.doc ->> 'meter', 100), v_tenant_id)
                    when jsonb_typeof(e.doc -> 'customer') is distinct from 'string'
                        or length(e.doc ->> 'customer') not between 1 and 255
                        then format('invalid customer id %s: a string of 1 to 255 characters', tenancy.token_excerpt(coalesce(e.doc -> 'customer', 'null')::text, 100))
                    when p.value is null or p.value < 0
                        then format('invalid usage value %s for meter %L: a finite number from 0', tenancy.token_excerpt((e.doc -> 'value')::text, 100), m.key)
                    when jsonb_typeof(p.properties) <> 'object' or octet_length(p.properties::text) > 16384
                        then format('invalid usage properties for meter %L: a JSON object of at most 16 KB', m.key)
                    when m.aggregation = 'unique_count' and p.properties ->> m.property is null
                        then format('usage event of meter %L has no property %L, whose distinct values it counts', m.key, m.property)
                    when e.doc -> 'idempotency_key' is not null
                        and (p.idempotency_key is null or length(p.idempotency_key) not between 1 and 255)
                        then format('invalid idempotency key %s: a string of 1 to 255 characters', tenancy.token_excerpt((e.doc -> 'idempotency_key')::text, 100))
                    when p.enforce is null then format('invalid enforce %s: true or false', tenancy.token_excerpt((e.doc -> 'enforce')::text, 100))
                    when p.occurred_at is null
                        then format('invalid occurred_at %s: an ISO 8601 timestamp with an offset', tenancy.token_excerpt((e.doc -> 'occurred_at')::text, 100))
                    else format(
                        'usage event of meter %L at %s is outside the accepted window: from %s (%s ago) to %s (5 minutes ahead)',
                        m.key, p.occurred_at, now() - m.backdate_grace, m.backdate_grace, now() + interval '5 minutes'
                    )
                end as message
        ) as chk
        left join lateral tenancy.usage_period(m.reset_period, s.period_anchor, p.occurred_at) as per
            on k.code is null or k.code = 'TN018'
        order by e.ord
    );

    -- Idempotency keys: the first event of each (customer, key) in the batch claims it; later
    -- ones, and keys claimed before, are duplicates (TN019 when the event differs). An event
    -- outside the time window whose key was recorded in time is a duplicate too.
    v_items := array(
        select row(
            i.idx, i.meter_id, i.meter_key, i.aggregation, i.property, i.customer, i.customer_id, i.value,
            i.properties, i.idempotency_key, i.occurred_at, i.enforce, i.period_start, i.period_end, i.cap,
            i.hard, i.thresholds, i.delta,
            case when i.error_code is null and not (i.enforce and i.cap is not null and i.hard)
                then nextval('tenancy.usage_events_id_seq'::regclass) end,
            null, null, i.error_code, i.error
        )::tenancy.usage_batch_item
        from unnest(v_items) as i
        order by i.idx
    );
    with claim as (
        select distinct on (i.customer_id, i.idempotency_key) i.*
        from unnest(v_items) as i
        where i.event_id is not null and i.idempotency_key is not null
        order by i.customer_id, i.idempotency_key, i.idx
    ),
    ins as (
        insert into tenancy.usage_idempotency_keys as k (tenant_id, customer_id, key, meter_id, outcome, event_id, value)
        select v_tenant_id, claim.customer_id, claim.idempotency_key, claim.meter_id, 'recorded', claim.event_id, claim.value
        from claim
        on conflict (tenant_id, customer_id, key) do nothing
        returning k.event_id
    )
    select coalesce(array_agg(ins.event_id), '{}') into v_claimed from ins;
    v_items := array(
        select case
            when i.idempotency_key is null or i.customer_id is null then i
            when i.event_id is not null and i.event_id = any(v_claimed) then i
            when i.event_id is null and i.error_code is distinct from 'TN018' then i
            when k.key is null then row(
                i.idx, i.meter_id, i.meter_key, i.aggregation, i.property, i.customer, i.customer_id, i.value,
                i.properties, i.idempotency_key, i.occurred_at, i.enforce, i.period_start, i.period_end, i.cap,
                i.hard, i.thresholds, i.delta, null, null, null, i.error_code, i.error
            )::tenancy.usage_batch_item
            when k.meter_id <> i.meter_id or k.value <> i.value then row(
                i.idx, i.meter_id, i.meter_key, i.aggregation, i.property, i.customer, i.customer_id, i.value,
                i.properties, i.idempotency_key, i.occurred_at, i.enforce, i.period_start, i.period_end, i.cap,
                i.hard, i.thresholds, i.delta, null, null, null, 'TN019',
                format(
                    'idempotency key %L of customer %L was used for another event (value %s), not meter %L with value %s',
                    tenancy.token_excerpt(i.idempotency_key, 100), i.customer, k.value, i.meter_key, i.value
                )
            )::tenancy.usage_batch_item
            else row(
                i.idx, i.meter_id, i.meter_key, i.aggregation, i.property, i.customer, i.customer_id, i.value,
                i.properties, i.idempotency_key, i.occurred_at, i.enforce, i.period_start, i.period_end, i.cap,
                i.hard, i.thresholds, i.delta, k.event_id, 'duplicate', k.outcome, null, null
            )::tenancy.usage_batch_item
        end
        from unnest(v_items) as i
        left join tenancy.usage_idempotency_keys as k
            on k.tenant_id = v_tenant_id and k.customer_id = i.customer_id and k.key = i.idempotency_key
            and i.idempotency_key is not null
        order by i.idx
    );

    -- Distinct values of unique_count meters: the first event of a new value counts 1.
    with v as (
        select distinct on (i.customer_id, i.meter_id, i.period_start, i.properties ->> i.property)
            i.idx, i.customer_id, i.meter_id, i.period_start, i.properties ->> i.property as value
        from unnest(v_items) as i
        where i.aggregation = 'unique_count' and i.error_code is null and i.outcome is null and i.event_id is not null
        order by i.customer_id, i.meter_id, i.period_start, i.properties ->> i.property, i.idx
    ),
    ins as (
        insert into tenancy.usage_unique_values as u (tenant_id, customer_id, meter_id, period_start, value)
        select v_tenant_id, v.customer_id, v.meter_id, v.period_start, v.value from v
        on conflict do nothing
        returning u.customer_id, u.meter_id, u.period_start, u.value
    )
    select coalesce(array_agg(v.idx), '{}') into v_new_values
    from v join ins using (customer_id, meter_id, period_start, value);
    v_items := array(
        select case when i.aggregation = 'unique_count' and not i.idx = any(v_new_values) then row(
                i.idx, i.meter_id, i.meter_key, i.aggregation, i.property, i.customer, i.customer_id, i.value,
                i.properties, i.idempotency_key, i.occurred_at, i.enforce, i.period_start, i.period_end, i.cap,
                i.hard, i.thresholds, 0, i.event_id, i.outcome, i.first_outcome, i.error_code, i.error
            )::tenancy.usage_batch_item else i end
        from unnest(v_items) as i
        order by i.idx
    );

    -- The counters: one upsert per customer, meter and period.
    insert into tenancy.usage_counters as c (
        tenant_id, customer_id, meter_id, period_start, period_end, used, events, latest_at
    )
    select v_tenant_id, i.customer_id, i.meter_id, i.period_start, min(i.period_end),
        case min(i.aggregation)
            when 'max' then max(i.delta)
            when 'latest' then (array_agg(i.delta order by i.occurred_at desc, i.delta desc))[1]
            else sum(i.delta)
        end,
        count(*), max(i.occurred_at)
    from unnest(v_items) as i
    where i.event_id is not null and i.outcome is null and i.error_code is null
    group by i.customer_id, i.meter_id, i.period_start
    on conflict (tenant_id, customer_id, meter_id, period_start) do update
    set used = case (select m.aggregation from tenancy.meters as m where m.tenant_id = c.tenant_id and m.id = c.meter_id)
            when 'max' then greatest(c.used, excluded.used)
            when 'latest' then
                case when (excluded.latest_at, excluded.used) > (c.latest_at, c.used) then excluded.used else c.used end
            else c.used + excluded.used
        end,
        latest_at = greatest(c.latest_at, excluded.latest_at),
        events = c.events + excluded.events,
        updated_at = excluded.updated_at;

    -- The log.
    insert into tenancy.usage_events (
        tenant_id, id, customer_id, meter_id, period_start, value, properties, occurred_at, idempotency_key
    )
    select v_tenant_id, i.event_id, i.customer_id, i.meter_id, i.period_start, i.value, i.properties, i.occurred_at,
        i.idempotency_key
    from unnest(v_items) as i
    where i.event_id is not null and i.outcome is null and i.error_code is null;

    -- Alerts of the counters this batch reached a threshold of (one per threshold and period).
    insert into tenancy.usage_alerts (tenant_id, customer_id, meter_id, period_start, threshold, used, cap)
    select v_tenant_id, c.customer_id, c.meter_id, c.period_start, t.t, c.used, g.cap
    from (
        select distinct i.customer_id, i.meter_id, i.period_start, i.cap, i.thresholds
        from unnest(v_items) as i
        where i.event_id is not null and i.outcome is null and i.error_code is null and i.cap > 0
    ) as g
    join tenancy.usage_counters as c
        on c.tenant_id = v_tenant_id and c.customer_id = g.customer_id and c.meter_id = g.meter_id
        and c.period_start = g.period_start
    cross join lateral unnest(g.thresholds) as t (t)
    where c.used >= g.cap * t.t
    on conflict do nothing;

    -- Enforced events, one by one in batch order; their outcomes join the others' below.
    for v_i in
        select i.idx from unnest(v_items) as i
        where i.error_code is null and i.outcome is null and i.enforce and i.cap is not null and i.hard
        order by i.idx
    loop
        v_item := v_items[v_i + 1];
        select m.* into v_meter from tenancy.meters as m where m.tenant_id = v_tenant_id and m.id = v_item.meter_id;
        begin
            select r.* into v_result
            from tenancy.record_usage(
                v_tenant_id, v_meter, v_item.customer, v_item.value, v_item.properties, v_item.idempotency_key,
                v_item.occurred_at, true
            ) as r;
            v_enforced := v_enforced || row(
                v_i, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
                null, null, v_result.event_id, v_result.outcome, v_result.first_outcome, null, null
            )::tenancy.usage_batch_item;
        exception
            when others then
                v_enforced := v_enforced || row(
                    v_i, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
                    null, null, null, null, null, sqlstate, sqlerrm
                )::tenancy.usage_batch_item;
        end;
    end loop;

    return query
    with e as (
        select
            i.idx, i.meter_id, i.aggregation, i.customer_id, i.period_start, i.cap,
            coalesce(f.event_id, i.event_id) as event_id,
            coalesce(f.outcome, i.outcome) as outcome,
            coalesce(f.first_outcome, i.first_outcome) as first_outcome,
            coalesce(f.error_code, i.error_code) as error_code,
            coalesce(f.error, i.error) as error
        from unnest(v_items) as i
        left join unnest(v_enforced) as f on f.idx = i.idx
    )
    select i.idx,
        case when i.error_code is not null then 'invalid' else coalesce(i.outcome, 'recorded') end,
        case when i.error_code is null then i.event_id end,
        case when i.error_code is null then coalesce(c.used, 0) end,
        case when i.error_code is null then i.cap end,
        case when i.error_code is null and i.cap is not null then greatest(
            i.cap - coalesce(c.used, 0)
            - case when i.aggregation in ('sum', 'count', 'unique_count') then coalesce(c.reserved, 0) else 0 end, 0
        ) end,
        i.first_outcome, i.error_code, i.error
    from e as i
    left join tenancy.usage_counters as c
        on i.error_code is null and c.tenant_id = v_tenant_id and c.customer_id = i.customer_id
        and c.meter_id = i.meter_id and c.period_start = i.period_start
    order by i.idx;
end
$$;

comment on function tenancy.track_usage_batch(jsonb) is
'For owners, admins and members of the current tenant (API keys and service contexts too): '
'records up to 10,000 usage events, a JSON array of {meter, customer, value, properties, '
'idempotency_key, occurred_at, enforce}, as tenancy.track_usage would, returning one row per event '
'(event_index from 0): outcome recorded, duplicate, refused (enforced, at a hard cap) or invalid '
'(error_code and error say why: 22023, 22007, P0002, TN018, TN019); invalid events and duplicates '
'count nothing and do not stop the others. Enforced events are counted after the others, in '
'order. used, cap and remaining are the counter''s after the batch. TN001, 42501 (viewers), '
'22023 for a batch that is not an array of at most 10,000 events.';

revoke all on function tenancy.track_usage_batch(jsonb) from public;
grant execute on function tenancy.track_usage_batch(jsonb) to tenancy_app, tenancy_service;
