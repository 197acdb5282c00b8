-- tenancy.customer_usage: every meter of the current tenant for one customer: used, cap, remaining, period.

create or replace function tenancy.customer_usage(p_customer text)
returns table (
    meter text, aggregation text, unit text, used numeric, reserved numeric, cap numeric, hard boolean,
    remaining numeric, period_start timestamptz, period_end timestamptz
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    v_tenant_id uuid := tenancy.context_tenant_id(null);
begin
    if v_tenant_id is null then
        v_tenant_id := tenancy.require_usage_role(null, 'read usage');
    end if;
    return query
    with cust as (
        select c.id, s.period_anchor, s.cap_overrides, t.usage_caps, t.soft_caps
        from tenancy.customers as c
        left join tenancy.subscriptions as s on s.tenant_id = c.tenant_id and s.customer_id = c.id
        left join tenancy.tiers as t on t.tenant_id = s.tenant_id and t.id = s.tier_id
        where c.tenant_id = v_tenant_id and c.external_id = p_customer
    ),
    m as (
        select m.id, m.key::text as key, m.aggregation, m.unit, p.period_start, p.period_end, cust.id as customer_id,
            case when cust.cap_overrides ? m.key then (cust.cap_overrides ->> m.key)::numeric
                else (cust.usage_caps ->> m.key)::numeric end as cap,
            not coalesce(m.key = any(cust.soft_caps), false) as hard
        from tenancy.meters as m
        left join cust on true
        cross join lateral tenancy.usage_period(m.reset_period, cust.period_anchor, now()) as p
        where m.tenant_id = v_tenant_id
    )
    select m.key, m.aggregation, m.unit, coalesce(c.used, 0),
        case when m.aggregation in ('sum', 'count', 'unique_count') then coalesce(h.amount, 0) else 0 end,
        m.cap, m.hard and m.cap is not null,
        case when m.cap is not null then greatest(m.cap - coalesce(c.used, 0)
            - case when m.aggregation in ('sum', 'count', 'unique_count') then coalesce(h.amount, 0) else 0 end, 0) end,
        m.period_start, m.period_end
    from m
    left join tenancy.usage_counters as c
        on c.tenant_id = v_tenant_id and c.customer_id = m.customer_id and c.meter_id = m.id
        and c.period_start = m.period_start
    left join lateral (
        select case when c.holds_expire_at > now() then c.reserved else (
            select coalesce(sum(r.amount), 0)
            from tenancy.usage_reservations as r
            where r.tenant_id = v_tenant_id and r.customer_id = m.customer_id and r.meter_id = m.id
                and r.period_start = m.period_start and r.state = 'held' and r.expires_at > now()
        ) end as amount
    ) as h on true
    order by m.key;
end
$$;

comment on function tenancy.customer_usage(text) is
'For every member role of the current tenant (API keys and service contexts too): one row per '
'meter of the tenant for customer p_customer in the current period: used, live holds, cap '
'(NULL: none), whether it is hard, remaining and the period. An unknown customer has used '
'nothing. TN001 without a context.';

revoke all on function tenancy.customer_usage(text) from public;
grant execute on function tenancy.customer_usage(text) to tenancy_app, tenancy_service;
