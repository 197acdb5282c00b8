-- tenancy.usage_summary: billing aggregates of the current tenant recomputed from the usage log.

-- Per customer, meter and counter period (and one event property's value when p_group_by names
-- it), over the events that occurred in [p_from, p_to): the meter's aggregation of the logged
-- events. Over whole periods it equals tenancy.usage_counters (used and events), which the tests
-- check after random workloads; partitions outside the range are not read.
create or replace function tenancy.usage_summary(
    p_from timestamptz, p_to timestamptz, p_group_by text default null
)
returns table (
    customer text, meter text, period_start timestamptz, group_value text, value numeric, events bigint
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'read usage summaries');
begin
    if p_from is null or p_to is null or p_from > p_to then
        raise exception using
            errcode = '22023',
            message = format('invalid summary range from %s to %s', coalesce(p_from::text, 'NULL'), coalesce(p_to::text, 'NULL'));
    end if;
    if p_group_by is not null and length(p_group_by) not between 1 and 100 then
        raise exception using
            errcode = '22023',
            message = format('invalid group-by property %L: 1 to 100 characters', tenancy.token_excerpt(p_group_by, 100));
    end if;
    return query
    select c.external_id, m.key::text, e.period_start, e.properties ->> p_group_by,
        case m.aggregation
            when 'sum' then sum(e.value)
            when 'count' then count(*)::numeric
            when 'max' then max(e.value)
            when 'unique_count' then count(distinct e.properties ->> m.property)::numeric
            else (array_agg(e.value order by e.occurred_at desc, e.value desc))[1]
        end,
        count(*)
    from tenancy.usage_events as e
    join tenancy.meters as m on m.tenant_id = v_tenant_id and m.id = e.meter_id
    join tenancy.customers as c on c.tenant_id = v_tenant_id and c.id = e.customer_id
    where e.tenant_id = v_tenant_id and e.occurred_at >= p_from and e.occurred_at < p_to
    group by c.external_id, m.key, m.aggregation, m.property, e.period_start, e.properties ->> p_group_by
    order by 1, 2, 3, 4;
end
$$;

comment on function tenancy.usage_summary(timestamptz, timestamptz, text) is
'For owners and admins of the current tenant (and service contexts): recomputes from the usage '
'log, for the events that occurred from p_from to before p_to, each customer''s value of each '
'meter per counter period (its aggregation: sum, count, max, unique_count, latest) and number of '
'events, grouped also by the value of event property p_group_by when given. Over whole periods it '
'agrees with the counters. TN001, 42501, 22023 for a bad range.';

revoke all on function tenancy.usage_summary(timestamptz, timestamptz, text) from public;
grant execute on function tenancy.usage_summary(timestamptz, timestamptz, text) to tenancy_app, tenancy_service;
