-- tenancy.check_usage_enforcement: would a customer's usage of a meter be allowed now (read only).

-- One index lookup each: the meter, the customer with its subscription and tier, the counter of
-- the current period (whatever the size of tenancy.usage_events). Holds count while live; when
-- the counter's earliest hold has expired, the live ones are summed from their partial index.
create or replace function tenancy.check_usage_enforcement(
    p_customer text,
    p_meter text,
    p_requested numeric default 1,
    out allowed boolean,
    out used numeric,
    out cap numeric,
    out remaining numeric,
    out period_end timestamptz,
    out period_start timestamptz,
    out hard boolean,
    out reserved numeric
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    v_tenant_id uuid := tenancy.context_tenant_id(null);
    v_meter tenancy.meters;
    v_customer uuid;
    v_anchor timestamptz;
    v_expire timestamptz;
begin
    if v_tenant_id is null then
        v_tenant_id := tenancy.require_usage_role(null, 'check usage');
    end if;
    select m.* into v_meter from tenancy.meters as m where m.tenant_id = v_tenant_id and m.key = p_meter;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('meter %L does not exist in tenant %s', tenancy.token_excerpt(p_meter, 100), v_tenant_id);
    end if;
    if p_requested is null or p_requested < 0 or p_requested in ('NaN', 'Infinity') then
        raise exception using
            errcode = '22023',
            message = format('invalid requested amount %s for meter %L: a finite number from 0', coalesce(p_requested::text, 'NULL'), p_meter);
    end if;
    select c.id, s.period_anchor,
        case when s.cap_overrides ? v_meter.key then (s.cap_overrides ->> v_meter.key)::numeric else (t.usage_caps ->> v_meter.key)::numeric end,
        not v_meter.key = any(t.soft_caps)
    into v_customer, v_anchor, cap, hard
    from tenancy.customers as c
    left join tenancy.subscriptions as s on s.tenant_id = c.tenant_id and s.customer_id = c.id
    left join tenancy.tiers as t on t.tenant_id = s.tenant_id and t.id = s.tier_id
    where c.tenant_id = v_tenant_id and c.external_id = p_customer;
    select p.period_start, p.period_end into period_start, period_end
    from tenancy.usage_period(v_meter.reset_period, v_anchor, now()) as p;
    select c.used, c.reserved, c.holds_expire_at into used, reserved, v_expire
    from tenancy.usage_counters as c
    where c.tenant_id = v_tenant_id and c.customer_id = v_customer and c.meter_id = v_meter.id
        and c.period_start = check_usage_enforcement.period_start;
    used := coalesce(used, 0);
    reserved := coalesce(reserved, 0);
    if v_expire <= now() then
        select coalesce(sum(r.amount), 0) into reserved
        from tenancy.usage_reservations as r
        where r.tenant_id = v_tenant_id and r.customer_id = v_customer and r.meter_id = v_meter.id
            and r.period_start = check_usage_enforcement.period_start and r.state = 'held' and r.expires_at > now();
    end if;
    if v_meter.aggregation not in ('sum', 'count', 'unique_count') then
        reserved := 0;
    end if;
    hard := coalesce(hard, false);
    if cap is null then
        allowed := true;
        return;
    end if;
    remaining := greatest(cap - used - reserved, 0);
    allowed := not hard or case
        when v_meter.aggregation in ('sum', 'count', 'unique_count') then p_requested = 0 or used + reserved + p_requested <= cap
        else greatest(case when v_meter.aggregation = 'max' then used else 0 end, p_requested) <= cap
    end;
end
$$;

comment on function tenancy.check_usage_enforcement(text, text, numeric) is
'For every member role of the current tenant (API keys and service contexts too), read only: '
'whether p_requested more of meter p_meter (events for count, new values for unique_count, the '
'value for max and latest) by customer p_customer would be allowed now, with the counter of the '
'current period (used, live holds in reserved, cap, remaining, its end and start) and whether the '
'cap is hard (a soft cap always allows). No cap (no subscription, or none on this meter): '
'allowed. TN001, P0002 for an unknown meter, 22023 for a bad amount.';

revoke all on function tenancy.check_usage_enforcement(text, text, numeric) from public;
grant execute on function tenancy.check_usage_enforcement(text, text, numeric) to tenancy_app, tenancy_service;
