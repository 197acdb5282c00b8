-- tenancy.track_usage_batch: record up to 10,000 usage events in one call, each with its own outcome.

-- Each event is an object {meter, customer, value (default 1), properties, idempotency_key,
-- occurred_at (ISO 8601 with an offset, default now), enforce (default false)}. An invalid event
-- (its SQLSTATE and message are returned: 22023, 22007, P0002 for an unknown meter, TN018 outside
-- the time window, TN019 for a reused key) and a duplicate count nothing and do not stop the
-- others.
-- Events are counted set-wise, in one statement whose data-modifying parts chain through
-- RETURNING: the idempotency keys claimed, the distinct values of unique_count meters, one
-- counter upsert per customer, meter and period (in key order, so concurrent batches lock shared
-- counters in the same order; the counters of enforced events are locked too, nothing added),
-- the log, the alerts. Customers seen for the first time are created by valid events only (an
-- invalid event writes nothing). Events to be enforced against a hard cap are then counted one by
-- one in batch order, like tenancy.track_usage(p_enforce => true), each in its own
-- subtransaction so that a failure leaves no part of it; within a batch, enforced events see
-- every unenforced one as earlier. So are the rare events whose new customer another session
-- created while this statement ran (invisible to its snapshot).
-- Within a batch the first event of an idempotency key (per customer) counts and the later ones
-- are its duplicates. A key first used by a batch that committed while this one ran is a
-- duplicate whose first outcome is not known here (first_outcome NULL). used, cap and remaining
-- are the counter's after the whole batch.
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
    v_item tenancy.usage_batch_item;
    v_meter tenancy.meters;
    v_result record;
    v_i integer;
    v_enforced tenancy.usage_batch_item[] := '{}'::tenancy.usage_batch_item[];
begin
    if v_tenant_id is null then
        v_tenant_id := tenancy.require_usage_role(array['owner', 'admin', 'member'], 'track usage');
    end if;
    if jsonb_typeof(p_events) is distinct from 'array' or jsonb_array_length(p_events) > 10000
        or pg_column_size(p_events) > 16777216 then
        raise exception using
            errcode = '22023',
            message = format(
                'usage batch must be a JSON array of at most 10000 events and 16 MB, got %s',
                coalesce(jsonb_typeof(p_events) || case when jsonb_typeof(p_events) = 'array'
                    then ' of ' || jsonb_array_length(p_events) || ' events, ' || pg_column_size(p_events) || ' bytes'
                    else '' end, 'NULL')
            );
    end if;

    -- Every event parsed, checked, resolved and, unless it is invalid, a duplicate or enforced,
    -- counted.
    with ev as materialized (
        select
            e.ord::integer - 1 as idx, m.id as meter_id, m.key::text as meter_key, m.aggregation, m.property,
            m.reset_period, s.period_anchor, e.doc ->> 'customer' as customer, c.id as customer_id,
            p.value, p.properties, p.idempotency_key, p.occurred_at, p.enforce,
            case when s.cap_overrides ? m.key then (s.cap_overrides ->> m.key)::numeric else (t.usage_caps ->> m.key)::numeric end
                as cap,
            not m.key = any(t.soft_caps) as hard,
            t.alert_thresholds as thresholds,
            case m.aggregation when 'count' then 1 when 'unique_count' then 1 else p.value end as delta,
            chk.code, chk.message
            from jsonb_array_elements(p_events) with ordinality as e (doc, ord)
            left join tenancy.meters as m
                on jsonb_typeof(e.doc) = 'object' and m.tenant_id = v_tenant_id and m.key = e.doc ->> 'meter'
            -- One probe of each unique key per event (LIMIT 1 keeps these lookups per event: a plan
            -- that reads a whole tenant's customers to join them is never chosen, whatever the
            -- statistics say of a tenant).
            left join lateral (
                select c.id from tenancy.customers as c
                where c.tenant_id = v_tenant_id and c.external_id = e.doc ->> 'customer'
                limit 1
            ) as c on jsonb_typeof(e.doc) = 'object'
            left join lateral (
                select s.period_anchor, s.cap_overrides, s.tier_id from tenancy.subscriptions as s
                where s.tenant_id = v_tenant_id and s.customer_id = c.id
                limit 1
            ) as s on true
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
                        when p.value is null or p.value < 0 or p.value > 1e18 then '22023'
                        when jsonb_typeof(p.properties) <> 'object' or octet_length(p.properties::text) > 16384 then '22023'
                        when m.aggregation = 'unique_count'
                            and (p.properties ->> m.property is null or octet_length(p.properties ->> m.property) > 1000)
                            then '22023'
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
                        when p.value is null or p.value < 0 or p.value > 1e18
                            then format('invalid usage value %s for meter %L: a number from 0 to 1e18', tenancy.token_excerpt((e.doc -> 'value')::text, 40), m.key)
                        when jsonb_typeof(p.properties) <> 'object' or octet_length(p.properties::text) > 16384
                            then format('invalid usage properties for meter %L: a JSON object of at most 16 KB', m.key)
                        when m.aggregation = 'unique_count'
                            and (p.properties ->> m.property is null or octet_length(p.properties ->> m.property) > 1000)
                            then format(
                                'usage event of meter %L needs property %L, whose distinct values it counts, of at most 1000 bytes',
                                m.key, m.property
                            )
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
    ),
    -- Customers seen for the first time, created by valid events (in key order).
    newcust as (
        insert into tenancy.customers as c (tenant_id, external_id)
        select distinct v_tenant_id, ev.customer
        from ev
        where ev.code is null and ev.customer_id is null
        order by 2
        on conflict (tenant_id, external_id) do nothing
        returning c.id, c.external_id
    ),
    resolved as materialized (
        select
            ev.idx, ev.meter_id, ev.meter_key, ev.aggregation, ev.property, ev.reset_period, ev.period_anchor,
            ev.customer, coalesce(ev.customer_id, n.id) as customer_id, ev.value, ev.properties, ev.idempotency_key,
            ev.occurred_at, ev.enforce, ev.cap, ev.hard, ev.thresholds, ev.delta, ev.code, ev.message
        from ev
        left join newcust as n on ev.customer_id is null and n.external_id = ev.customer
    ),
    items as materialized (
        select
            r.*, per.period_start, per.period_end,
            -- counted one by one below: enforced at a hard cap, or a customer created meanwhile
            r.code is null and (r.enforce and r.cap is not null and r.hard or r.customer_id is null) as enforced,
            case when r.code is null and r.customer_id is not null and not (r.enforce and r.cap is not null and r.hard)
                then nextval('tenancy.usage_events_id_seq'::regclass) end as event_id
        from resolved as r
        left join lateral tenancy.usage_period(r.reset_period, r.period_anchor, r.occurred_at) as per
            on r.code is null or r.code = 'TN018'
    ),
    -- The first event of each (customer, key) in the batch claims the key.
    firsts as materialized (
        select distinct on (i.customer_id, i.idempotency_key) i.idx, i.customer_id, i.idempotency_key, i.meter_id,
            i.value, i.event_id
        from items as i
        where i.event_id is not null and i.idempotency_key is not null
        order by i.customer_id, i.idempotency_key, i.idx
    ),
    claim as (
        insert into tenancy.usage_idempotency_keys as k (tenant_id, customer_id, key, meter_id, outcome, event_id, value)
        select v_tenant_id, f.customer_id, f.idempotency_key, f.meter_id, 'recorded', f.event_id, f.value
        from firsts as f
        order by f.customer_id, f.idempotency_key
        on conflict (tenant_id, customer_id, key) do nothing
        returning k.event_id
    ),
    -- outcome NULL: to be counted (or, enforced, decided one by one below)
    cls as materialized (
        select i.*,
            case
                when i.idempotency_key is null or i.customer_id is null or i.code is not null and i.code <> 'TN018'
                    or i.enforced then 'keep'
                when i.event_id in (select claim.event_id from claim) then 'keep'
                when k.key is not null and (k.meter_id <> i.meter_id or k.value <> i.value) then 'mismatch'
                when k.key is not null then 'stored'
                when f.idx < i.idx and (f.meter_id <> i.meter_id or f.value <> i.value) then 'mismatch'
                when f.idx < i.idx and f.event_id in (select claim.event_id from claim) then 'batch'
                when i.code = 'TN018' then 'keep'
                else 'unknown'
            end as dup,
            k.outcome as k_outcome, k.event_id as k_event_id, k.value as k_value, f.event_id as f_event_id,
            f.value as f_value
        from items as i
        left join lateral (
            select k.meter_id, k.value, k.outcome, k.event_id, k.key
            from tenancy.usage_idempotency_keys as k
            where k.tenant_id = v_tenant_id and k.customer_id = i.customer_id and k.key = i.idempotency_key
            limit 1
        ) as k on i.idempotency_key is not null
        left join firsts as f on f.customer_id = i.customer_id and f.idempotency_key = i.idempotency_key
    ),
    counted as materialized (
        select cls.*,
            cls.dup = 'keep' and cls.code is null and not cls.enforced as counts,
            case when cls.aggregation = 'unique_count' then cls.properties ->> cls.property end as unique_value
        from cls
    ),
    -- Distinct values of unique_count meters: the first event of a value new to the period counts 1.
    uv_firsts as (
        select distinct on (u.customer_id, u.meter_id, u.period_start, u.unique_value)
            u.idx, u.customer_id, u.meter_id, u.period_start, u.unique_value
        from counted as u
        where u.counts and u.aggregation = 'unique_count'
        order by u.customer_id, u.meter_id, u.period_start, u.unique_value, u.idx
    ),
    uv as (
        insert into tenancy.usage_unique_values as u (tenant_id, customer_id, meter_id, period_start, value)
        select v_tenant_id, f.customer_id, f.meter_id, f.period_start, f.unique_value
        from uv_firsts as f
        order by f.customer_id, f.meter_id, f.period_start, f.unique_value
        on conflict do nothing
        returning u.customer_id, u.meter_id, u.period_start, u.value
    ),
    deltas as materialized (
        select c.*,
            case
                when c.aggregation <> 'unique_count' then c.delta
                when exists (
                    select from uv_firsts as f
                    join uv on uv.customer_id = f.customer_id and uv.meter_id = f.meter_id
                        and uv.period_start = f.period_start and uv.value = f.unique_value
                    where f.idx = c.idx
                ) then 1
                else 0
            end as d
        from counted as c
        where c.counts or c.enforced and c.customer_id is not null
    ),
    additive as (
        insert into tenancy.usage_counters as c (
            tenant_id, customer_id, meter_id, period_start, period_end, used, events, latest_at
        )
        select v_tenant_id, d.customer_id, d.meter_id, d.period_start, min(d.period_end),
            coalesce(sum(d.d) filter (where d.counts), 0),
            count(*) filter (where d.counts),
            max(d.occurred_at) filter (where d.counts)
        from deltas as d
        where d.aggregation in ('sum', 'count', 'unique_count')
        group by d.customer_id, d.meter_id, d.period_start
        order by d.customer_id, d.meter_id, d.period_start
        on conflict (tenant_id, customer_id, meter_id, period_start) do update
        set used = c.used + excluded.used,
            latest_at = greatest(c.latest_at, excluded.latest_at),
            events = c.events + excluded.events,
            updated_at = excluded.updated_at
        returning c.customer_id, c.meter_id, c.period_start, c.used
    ),
    -- max and latest meters: the largest value, or the value of the latest event (ties: the
    -- largest), as tenancy.record_usage keeps them one event at a time.
    extreme as (
        insert into tenancy.usage_counters as c (
            tenant_id, customer_id, meter_id, period_start, period_end, used, events, latest_at
        )
        select v_tenant_id, d.customer_id, d.meter_id, d.period_start, min(d.period_end),
            coalesce(case min(d.aggregation)
                when 'max' then max(d.d) filter (where d.counts)
                else (array_agg(d.d order by d.occurred_at desc, d.d desc) filter (where d.counts))[1]
            end, 0),
            count(*) filter (where d.counts),
            max(d.occurred_at) filter (where d.counts)
        from deltas as d
        where d.aggregation in ('max', 'latest')
        group by d.customer_id, d.meter_id, d.period_start
        order by d.customer_id, d.meter_id, d.period_start
        on conflict (tenant_id, customer_id, meter_id, period_start) do update
        set used = case
                when excluded.events = 0 then c.used
                when (select m.aggregation from tenancy.meters as m where m.tenant_id = c.tenant_id and m.id = c.meter_id) = 'max'
                    then greatest(c.used, excluded.used)
                when c.latest_at is null or (excluded.latest_at, excluded.used) > (c.latest_at, c.used) then excluded.used
                else c.used
            end,
            latest_at = greatest(c.latest_at, excluded.latest_at),
            events = c.events + excluded.events,
            updated_at = excluded.updated_at
        returning c.customer_id, c.meter_id, c.period_start, c.used
    ),
    logged as (
        insert into tenancy.usage_events (
            tenant_id, id, customer_id, meter_id, period_start, value, properties, occurred_at, idempotency_key
        )
        select v_tenant_id, d.event_id, d.customer_id, d.meter_id, d.period_start, d.value, d.properties, d.occurred_at,
            d.idempotency_key
        from deltas as d
        where d.counts
    ),
    -- One alert per threshold a counter reached, per period (the primary key keeps it to one).
    alerted as (
        insert into tenancy.usage_alerts (tenant_id, customer_id, meter_id, period_start, threshold, used, cap)
        select v_tenant_id, g.customer_id, g.meter_id, g.period_start, t.t, r.used, g.cap
        from (
            select distinct d.customer_id, d.meter_id, d.period_start, d.cap, d.thresholds
            from deltas as d
            where d.counts and d.cap > 0
        ) as g
        join (select * from additive union all select * from extreme) as r
            on r.customer_id = g.customer_id and r.meter_id = g.meter_id and r.period_start = g.period_start
        cross join lateral unnest(g.thresholds) as t (t)
        where r.used >= g.cap * t.t
        on conflict do nothing
    )
    select array_agg(row(
        c.idx, c.meter_id, c.meter_key, c.aggregation, c.property, c.customer, c.customer_id, c.value, c.properties,
        c.idempotency_key, c.occurred_at, c.enforce, c.period_start, c.period_end, c.cap, c.hard, c.thresholds, c.delta,
        case c.dup
            when 'keep' then c.event_id
            when 'stored' then c.k_event_id
            when 'batch' then c.f_event_id
        end,
        case when c.dup in ('stored', 'batch', 'unknown') then 'duplicate' end,
        case c.dup when 'stored' then c.k_outcome when 'batch' then 'recorded' end,
        case when c.dup = 'mismatch' then 'TN019' when c.dup = 'keep' then c.code end,
        case
            when c.dup = 'mismatch' then format(
                'idempotency key %L of customer %L was used for another event (value %s), not meter %L with value %s',
                tenancy.token_excerpt(c.idempotency_key, 100), c.customer, coalesce(c.k_value, c.f_value), c.meter_key,
                c.value
            )
            when c.dup = 'keep' then c.message
        end
    )::tenancy.usage_batch_item order by c.idx)
    into v_items
    from cls as c;

    -- Enforced events, one by one in batch order; their outcomes join the others' below.
    for v_i in
        select i.idx from unnest(v_items) as i
        where i.error_code is null and i.outcome is null
            and (i.enforce and i.cap is not null and i.hard or i.customer_id is null)
        order by i.idx
    loop
        v_item := v_items[v_i + 1];
        select m.* into v_meter from tenancy.meters as m where m.tenant_id = v_tenant_id and m.id = v_item.meter_id;
        begin
            select r.* into v_result
            from tenancy.record_usage(
                v_tenant_id, v_meter, v_item.customer, v_item.value, v_item.properties, v_item.idempotency_key,
                v_item.occurred_at, v_item.enforce
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
    left join lateral (
        select c.used, c.reserved from tenancy.usage_counters as c
        where c.tenant_id = v_tenant_id and c.customer_id = i.customer_id and c.meter_id = i.meter_id
            and c.period_start = i.period_start
        limit 1
    ) as c on i.error_code is null
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
