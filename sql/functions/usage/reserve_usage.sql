-- tenancy.reserve_usage: hold quota of a customer's meter for a long operation, until committed, released or expired.

create or replace function tenancy.reserve_usage(
    p_customer text,
    p_meter text,
    p_amount numeric,
    p_ttl interval default '15 minutes',
    out reservation_id uuid,
    out allowed boolean,
    out used numeric,
    out reserved numeric,
    out cap numeric,
    out remaining numeric,
    out expires_at timestamptz
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    v_tenant_id uuid := tenancy.context_tenant_id(array['owner', 'admin', 'member']);
    v_meter tenancy.meters;
    v_customer uuid;
    v_anchor timestamptz;
    v_hard boolean;
    v_check boolean;
    v_start timestamptz;
    v_end timestamptz;
    v_expire timestamptz;
begin
    if v_tenant_id is null then
        v_tenant_id := tenancy.require_usage_role(array['owner', 'admin', 'member'], 'reserve usage');
    end if;
    select m.* into v_meter from tenancy.meters as m where m.tenant_id = v_tenant_id and m.key = p_meter;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('meter %L does not exist in tenant %s', tenancy.token_excerpt(p_meter, 100), v_tenant_id);
    end if;
    -- A hold is an amount of a sum: for a count meter, whose events count 1 whatever their value,
    -- committing one would not count what was held.
    if v_meter.aggregation <> 'sum' then
        raise exception using
            errcode = '22023',
            message = format('meter %L aggregates with %s: only sum meters take reservations', p_meter, v_meter.aggregation);
    end if;
    if p_amount is null or p_amount <= 0 or p_amount > 1e18 or p_amount = 'NaN' then
        raise exception using
            errcode = '22023',
            message = format('invalid reservation amount %s for meter %L: a number above 0, at most 1e18', coalesce(p_amount::text, 'NULL'), p_meter);
    end if;
    if p_ttl is null or p_ttl <= interval '0' or p_ttl > interval '24 hours' then
        raise exception using
            errcode = '22023',
            message = format('invalid reservation lifetime %s: above 0 and at most 24 hours', coalesce(p_ttl::text, 'NULL'));
    end if;
    v_customer := tenancy.usage_customer_id(v_tenant_id, p_customer);
    select s.period_anchor,
        case when s.cap_overrides ? v_meter.key then (s.cap_overrides ->> v_meter.key)::numeric else (t.usage_caps ->> v_meter.key)::numeric end,
        not v_meter.key = any(t.soft_caps)
    into v_anchor, cap, v_hard
    from tenancy.subscriptions as s
    join tenancy.tiers as t on t.tenant_id = s.tenant_id and t.id = s.tier_id
    where s.tenant_id = v_tenant_id and s.customer_id = v_customer;
    select p.period_start, p.period_end into v_start, v_end
    from tenancy.usage_period(v_meter.reset_period, v_anchor, now()) as p;
    v_check := cap is not null and v_hard;
    expires_at := now() + p_ttl;
    for attempt in 1..2 loop
        insert into tenancy.usage_counters as c (
            tenant_id, customer_id, meter_id, period_start, period_end, reserved, holds_expire_at
        )
        select v_tenant_id, v_customer, v_meter.id, v_start, v_end, p_amount, reserve_usage.expires_at
        where not v_check or p_amount <= cap
        on conflict (tenant_id, customer_id, meter_id, period_start) do update
        set reserved = c.reserved + excluded.reserved,
            holds_expire_at = least(c.holds_expire_at, excluded.holds_expire_at),
            updated_at = excluded.updated_at
        where not v_check or c.used + c.reserved + excluded.reserved <= cap
        returning c.used, c.reserved into used, reserved;
        allowed := found;
        exit when allowed;
        select c.used, c.reserved, c.holds_expire_at into used, reserved, v_expire
        from tenancy.usage_counters as c
        where c.tenant_id = v_tenant_id and c.customer_id = v_customer and c.meter_id = v_meter.id
            and c.period_start = v_start;
        exit when attempt = 2 or not (reserved > 0 and v_expire <= now());
        perform tenancy.sweep_usage_holds(v_tenant_id, v_customer, v_meter.id, v_start);
    end loop;
    used := coalesce(used, 0);
    reserved := coalesce(reserved, 0);
    remaining := case when cap is not null then greatest(cap - used - reserved, 0) end;
    if not allowed then
        expires_at := null;
        return;
    end if;
    insert into tenancy.usage_reservations as r (tenant_id, customer_id, meter_id, period_start, amount, expires_at)
    values (v_tenant_id, v_customer, v_meter.id, v_start, p_amount, reserve_usage.expires_at)
    returning r.id into reservation_id;
end
$$;

comment on function tenancy.reserve_usage(text, text, numeric, interval) is
'For owners, admins and members of the current tenant (API keys and service contexts too): holds '
'p_amount of sum meter p_meter for customer p_customer for p_ttl (default 15 minutes, '
'at most 24 hours), counted against a hard cap like usage until tenancy.commit_reservation, '
'tenancy.release_reservation or its expiry (an expired hold frees itself). Returns the hold''s '
'id and expiry, or allowed false (no hold) when the cap has no room. TN001, 42501 (viewers), '
'P0002 for an unknown meter, 22023 for a bad amount or lifetime or a meter that is not a sum.';

revoke all on function tenancy.reserve_usage(text, text, numeric, interval) from public;
grant execute on function tenancy.reserve_usage(text, text, numeric, interval) to tenancy_app, tenancy_service;
