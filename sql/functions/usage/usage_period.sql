-- tenancy.usage_period: the usage period holding an instant, for a reset period and an anchor.

-- Periods are counted from the anchor in UTC (the n-th period starts at anchor + n periods, so a
-- monthly anchor on the 31st gives the 30th, the 28th or 29th, and the 31st again: every
-- boundary comes from the anchor, never from the previous boundary). Without an anchor (a
-- customer without a subscription) the periods are the calendar's in UTC: days, weeks from
-- Monday, months, years. 'never' is one period from -infinity to infinity. Instants before the
-- anchor fall in the periods before it.
create or replace function tenancy.usage_period(
    p_reset text, p_anchor timestamptz, p_at timestamptz,
    out period_start timestamptz, out period_end timestamptz
)
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
    with a as (
        select
            pg_catalog.timezone('UTC', coalesce(
                p_anchor,
                case when p_reset = 'week' then '2000-01-03 00:00:00+00' else '2000-01-01 00:00:00+00' end::timestamptz
            )) as a,
            pg_catalog.timezone('UTC', p_at) as t
    ),
    n as (
        select
            a.a,
            case p_reset
                when 'day' then floor(extract(epoch from a.t - a.a) / 86400)::integer
                when 'week' then floor(extract(epoch from a.t - a.a) / 604800)::integer
                when 'month' then
                    ((extract(year from a.t) - extract(year from a.a)) * 12
                    + extract(month from a.t) - extract(month from a.a))::integer
                when 'year' then (extract(year from a.t) - extract(year from a.a))::integer
            end as n,
            a.t
        from a
    ),
    step as (
        select
            n.a,
            case p_reset
                when 'day' then interval '1 day'
                when 'week' then interval '7 days'
                when 'month' then interval '1 month'
                when 'year' then interval '1 year'
            end as unit,
            n.n,
            n.t
        from n
    ),
    k as (
        select s.a, s.unit, case when s.a + s.unit * s.n > s.t then s.n - 1 else s.n end as n
        from step as s
    )
    select
        case when p_reset = 'never' then '-infinity'::timestamptz else pg_catalog.timezone('UTC', k.a + k.unit * k.n) end,
        case when p_reset = 'never' then 'infinity'::timestamptz else pg_catalog.timezone('UTC', k.a + k.unit * (k.n + 1)) end
    from k
$$;

comment on function tenancy.usage_period(text, timestamptz, timestamptz) is
'pgtenancy internal: the start and end of the period of reset p_reset (day, week, month, year, '
'never) holding p_at, counted in UTC from p_anchor (a subscription''s period anchor), or calendar '
'periods in UTC when p_anchor is NULL.';

revoke all on function tenancy.usage_period(text, timestamptz, timestamptz) from public;
