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
language plpgsql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    v_a timestamp;
    v_t timestamp := timezone('UTC', p_at);
    v_unit interval;
    v_n integer;
begin
    if p_reset is null or p_at is null then
        return;  -- NULL period (an event that names no meter, or no time)
    end if;
    if p_reset = 'never' then
        period_start := '-infinity';
        period_end := 'infinity';
        return;
    end if;
    v_a := timezone('UTC', coalesce(
        p_anchor,
        case when p_reset = 'week' then '2000-01-03 00:00:00+00' else '2000-01-01 00:00:00+00' end::timestamptz
    ));
    case p_reset
        when 'day' then
            v_unit := interval '1 day';
            v_n := floor(extract(epoch from v_t - v_a) / 86400);
        when 'week' then
            v_unit := interval '7 days';
            v_n := floor(extract(epoch from v_t - v_a) / 604800);
        when 'month' then
            v_unit := interval '1 month';
            v_n := (extract(year from v_t) - extract(year from v_a)) * 12 + extract(month from v_t) - extract(month from v_a);
        when 'year' then
            v_unit := interval '1 year';
            v_n := extract(year from v_t) - extract(year from v_a);
        else
            raise exception using
                errcode = '22023',
                message = format('invalid reset period %L: day, week, month, year or never', p_reset);
    end case;
    -- the count of whole units from the anchor: one less when the instant is before the boundary
    if v_a + v_unit * v_n > v_t then
        v_n := v_n - 1;
    end if;
    period_start := timezone('UTC', v_a + v_unit * v_n);
    period_end := timezone('UTC', v_a + v_unit * (v_n + 1));
end
$$;

comment on function tenancy.usage_period(text, timestamptz, timestamptz) is
'pgtenancy internal: the start and end of the period of reset p_reset (day, week, month, year, '
'never) holding p_at, counted in UTC from p_anchor (a subscription''s period anchor), or calendar '
'periods in UTC when p_anchor is NULL.';

revoke all on function tenancy.usage_period(text, timestamptz, timestamptz) from public;
