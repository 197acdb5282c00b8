-- tenancy.record_usage: count one usage event of a tenant (idempotency, cap, counter, log, alerts): the body of tenancy.track_usage.

-- Exactness under concurrency rests on one statement: the INSERT ... ON CONFLICT DO UPDATE of the
-- customer's counter row for the event's period. It locks that row, and its WHERE clause, which
-- checks a hard cap against the row as it is when the lock is granted (READ COMMITTED re-reads
-- it; REPEATABLE READ and SERIALIZABLE raise 40001 when it changed after the snapshot), decides
-- whether the event counts: concurrent events of one customer and meter take turns on the row
-- and the cap is never exceeded. The event is logged (tenancy.usage_events) only when it counted,
-- in the same transaction, so the log and the counters agree.
-- An idempotency key is claimed first (INSERT ... ON CONFLICT DO NOTHING into
-- tenancy.usage_idempotency_keys: a concurrent claim of the same key waits for the first to
-- commit or roll back); a key already claimed returns the first event's outcome and counts
-- nothing, and a key reused for another meter or value is refused (TN019).
-- Holds (tenancy.reserve_usage) count against a cap as tenancy.usage_counters.reserved; when an
-- event would be refused while holds have expired, they are swept (tenancy.sweep_usage_holds)
-- and the event tried once more.
create or replace function tenancy.record_usage(
    p_tenant_id uuid,
    p_meter tenancy.meters,
    p_customer text,
    p_value numeric,
    p_properties jsonb,
    p_idempotency_key text,
    p_occurred_at timestamptz,
    p_enforce boolean,
    p_reservation_id uuid default null,
    out outcome text,
    out event_id bigint,
    out used numeric,
    out cap numeric,
    out remaining numeric,
    out period_start timestamptz,
    out period_end timestamptz,
    out first_outcome text
)
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    v_at timestamptz := coalesce(p_occurred_at, now());
    v_agg text := p_meter.aggregation;
    v_additive boolean := p_meter.aggregation in ('sum', 'count', 'unique_count');
    v_customer uuid;
    v_anchor timestamptz;
    v_hard boolean;
    v_thresholds numeric[];
    v_check boolean;
    v_delta numeric;
    v_unique text;
    v_reserved numeric;
    v_expire timestamptz;
    v_key record;
    v_counted boolean := false;
    v_duplicate boolean := false;  -- v_key holds the key's first use (a record IS NULL only when every field is)
begin
    if p_value is null or p_value < 0 or p_value > 1e18 or p_value = 'NaN' then
        raise exception using
            errcode = '22023',
            message = format(
                'invalid usage value %s for meter %L: a number from 0 to 1e18',
                coalesce(tenancy.token_excerpt(p_value::text, 40), 'NULL'), p_meter.key
            );
    end if;
    if p_properties is null or jsonb_typeof(p_properties) <> 'object' or octet_length(p_properties::text) > 16384 then
        raise exception using
            errcode = '22023',
            message = format(
                'invalid usage properties for meter %L: a JSON object of at most 16 KB, got %s',
                p_meter.key, coalesce(jsonb_typeof(p_properties) || ' of ' || octet_length(p_properties::text) || ' bytes', 'NULL')
            );
    end if;
    if v_agg = 'unique_count' then
        v_unique := p_properties ->> p_meter.property;
        if v_unique is null or octet_length(v_unique) > 1000 then
            raise exception using
                errcode = '22023',
                message = format(
                    'usage event of meter %L needs property %L, whose distinct values it counts, of at most 1000 bytes',
                    p_meter.key, p_meter.property
                );
        end if;
    end if;
    if p_idempotency_key is not null and length(p_idempotency_key) not between 1 and 255 then
        raise exception using
            errcode = '22023',
            message = format('invalid idempotency key %L: 1 to 255 characters', tenancy.token_excerpt(p_idempotency_key, 100));
    end if;

    select c.id, s.period_anchor,
        case when s.cap_overrides ? p_meter.key then (s.cap_overrides ->> p_meter.key)::numeric else (t.usage_caps ->> p_meter.key)::numeric end,
        not p_meter.key = any(t.soft_caps),
        t.alert_thresholds
    into v_customer, v_anchor, cap, v_hard, v_thresholds
    from tenancy.customers as c
    left join tenancy.subscriptions as s on s.tenant_id = c.tenant_id and s.customer_id = c.id
    left join tenancy.tiers as t on t.tenant_id = s.tenant_id and t.id = s.tier_id
    where c.tenant_id = p_tenant_id and c.external_id = p_customer;

    -- Backdating: a retry of an event recorded in time is still a duplicate. A committed hold
    -- counts at the time it was taken (tenancy.commit_reservation), which was in time.
    if p_reservation_id is null
        and (v_at < now() - p_meter.backdate_grace or v_at > now() + interval '5 minutes') then
        if v_customer is not null and p_idempotency_key is not null then
            select k.outcome, k.event_id, k.meter_id, k.value into v_key
            from tenancy.usage_idempotency_keys as k
            where k.tenant_id = p_tenant_id and k.customer_id = v_customer and k.key = p_idempotency_key;
            v_duplicate := found;
        end if;
        if not v_duplicate then
            raise exception using
                errcode = 'TN018',
                message = format(
                    'usage event of meter %L at %s is outside the accepted window: from %s (%s ago) to %s (5 minutes ahead)',
                    p_meter.key, v_at, now() - p_meter.backdate_grace, p_meter.backdate_grace, now() + interval '5 minutes'
                );
        end if;
    end if;
    if v_customer is null then
        v_customer := tenancy.usage_customer_id(p_tenant_id, p_customer);
    end if;
    select p.period_start, p.period_end into period_start, period_end
    from tenancy.usage_period(p_meter.reset_period, v_anchor, v_at) as p;

    if p_idempotency_key is not null and not v_duplicate then
        event_id := nextval('tenancy.usage_events_id_seq'::regclass);
        insert into tenancy.usage_idempotency_keys (tenant_id, customer_id, key, meter_id, outcome, event_id, value)
        values (p_tenant_id, v_customer, p_idempotency_key, p_meter.id, 'recorded', event_id, p_value)
        on conflict (tenant_id, customer_id, key) do nothing;
        if not found then
            select k.outcome, k.event_id, k.meter_id, k.value into v_key
            from tenancy.usage_idempotency_keys as k
            where k.tenant_id = p_tenant_id and k.customer_id = v_customer and k.key = p_idempotency_key;
            v_duplicate := true;
        end if;
    end if;
    if v_duplicate then
        if v_key.meter_id <> p_meter.id or v_key.value <> p_value then
            raise exception using
                errcode = 'TN019',
                message = format(
                    'idempotency key %L of customer %L was used for another event (meter %s, value %s), not meter %L with value %s',
                    tenancy.token_excerpt(p_idempotency_key, 100), p_customer,
                    (select m.key from tenancy.meters as m where m.tenant_id = p_tenant_id and m.id = v_key.meter_id),
                    v_key.value, p_meter.key, p_value
                );
        end if;
        outcome := 'duplicate';
        first_outcome := v_key.outcome;
        event_id := v_key.event_id;
        select c.used, c.reserved into used, v_reserved
        from tenancy.usage_counters as c
        where c.tenant_id = p_tenant_id and c.customer_id = v_customer and c.meter_id = p_meter.id
            and c.period_start = record_usage.period_start;
        used := coalesce(used, 0);
        remaining := case when cap is not null then greatest(cap - used - case when v_additive then coalesce(v_reserved, 0) else 0 end, 0) end;
        return;
    end if;

    v_check := p_enforce and cap is not null and v_hard;
    v_delta := case v_agg when 'count' then 1 when 'unique_count' then 1 else p_value end;
    if v_agg = 'unique_count' then
        insert into tenancy.usage_unique_values (tenant_id, customer_id, meter_id, period_start, value)
        values (p_tenant_id, v_customer, p_meter.id, period_start, v_unique)
        on conflict do nothing;
        if not found then
            v_delta := 0;
        end if;
    end if;
    for attempt in 1..2 loop
        insert into tenancy.usage_counters as c (
            tenant_id, customer_id, meter_id, period_start, period_end, used, events, latest_at
        )
        select p_tenant_id, v_customer, p_meter.id, record_usage.period_start, record_usage.period_end, v_delta, 1, v_at
        where not v_check or v_delta <= cap
        on conflict (tenant_id, customer_id, meter_id, period_start) do update
        set used = case
                when v_agg = 'max' then greatest(c.used, excluded.used)
                when v_agg = 'latest' then
                    case when c.latest_at is null or (excluded.latest_at, excluded.used) > (c.latest_at, c.used)
                        then excluded.used else c.used end
                else c.used + excluded.used
            end,
            latest_at = greatest(c.latest_at, excluded.latest_at),
            events = c.events + 1,
            updated_at = excluded.updated_at
        where not v_check
            or case
                when v_additive then excluded.used <= 0 or c.used + c.reserved + excluded.used <= cap
                when v_agg = 'max' then greatest(c.used, excluded.used) <= cap
                else (
                    case when c.latest_at is null or (excluded.latest_at, excluded.used) > (c.latest_at, c.used)
                        then excluded.used else c.used end
                ) <= cap
            end
        returning c.used, c.reserved into used, v_reserved;
        v_counted := found;
        exit when v_counted;
        -- Refused: unless expired holds are in the way, that is final.
        select c.used, c.reserved, c.holds_expire_at into used, v_reserved, v_expire
        from tenancy.usage_counters as c
        where c.tenant_id = p_tenant_id and c.customer_id = v_customer and c.meter_id = p_meter.id
            and c.period_start = record_usage.period_start;
        exit when attempt = 2 or not (v_reserved > 0 and v_expire <= now());
        perform tenancy.sweep_usage_holds(p_tenant_id, v_customer, p_meter.id, period_start);
    end loop;
    used := coalesce(used, 0);
    v_reserved := coalesce(v_reserved, 0);
    remaining := case when cap is not null then greatest(cap - used - case when v_additive then v_reserved else 0 end, 0) end;

    if not v_counted then
        outcome := 'refused';
        if v_agg = 'unique_count' and v_delta = 1 then
            delete from tenancy.usage_unique_values as u
            where u.tenant_id = p_tenant_id and u.customer_id = v_customer and u.meter_id = p_meter.id
                and u.period_start = record_usage.period_start and u.value = v_unique;
        end if;
        if p_idempotency_key is not null then
            update tenancy.usage_idempotency_keys as k set outcome = 'refused', event_id = null
            where k.tenant_id = p_tenant_id and k.customer_id = v_customer and k.key = p_idempotency_key;
        end if;
        event_id := null;
        return;
    end if;

    outcome := 'recorded';
    if event_id is null then
        event_id := nextval('tenancy.usage_events_id_seq'::regclass);
    end if;
    insert into tenancy.usage_events (
        tenant_id, id, customer_id, meter_id, period_start, value, properties, occurred_at, idempotency_key,
        reservation_id
    )
    values (
        p_tenant_id, event_id, v_customer, p_meter.id, period_start, p_value, p_properties, v_at, p_idempotency_key,
        p_reservation_id
    );
    -- One alert per threshold crossed, per period (the primary key keeps it to one).
    if cap > 0 and used >= cap * v_thresholds[1] then
        insert into tenancy.usage_alerts (tenant_id, customer_id, meter_id, period_start, threshold, used, cap)
        select p_tenant_id, v_customer, p_meter.id, period_start, t.t, used, cap
        from unnest(v_thresholds) as t (t)
        where used >= cap * t.t and (not v_additive or used - v_delta < cap * t.t)
        on conflict do nothing;
    end if;
end
$$;

comment on function tenancy.record_usage(
    uuid, tenancy.meters, text, numeric, jsonb, text, timestamptz, boolean, uuid
) is
'pgtenancy internal: counts one usage event of tenant p_tenant_id for meter p_meter and customer '
'p_customer (the body of tenancy.track_usage; the caller has checked the context).';

revoke all on function tenancy.record_usage(
    uuid, tenancy.meters, text, numeric, jsonb, text, timestamptz, boolean, uuid
) from public;
