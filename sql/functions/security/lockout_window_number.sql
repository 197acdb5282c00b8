-- tenancy.lockout_window_number: which lockout window the present moment falls in.
-- No SET clause so that the planner may inline it; every name is schema-qualified instead.

create or replace function tenancy.lockout_window_number(p_window interval)
returns bigint
language sql
volatile
parallel safe
as $$
    -- Windows are fixed: window n runs from n * p_window to (n + 1) * p_window after 1970. The
    -- counters store this number with their count; every reader and writer of them uses this.
    select pg_catalog.floor(
        pg_catalog.date_part('epoch', pg_catalog.clock_timestamp())
        operator(pg_catalog./) pg_catalog.date_part('epoch', p_window)
    )::pg_catalog.int8
$$;

comment on function tenancy.lockout_window_number(interval) is
'pgtenancy internal: the number of the fixed lockout window of length p_window that holds the '
'present moment (seconds since 1970 divided by the window''s seconds, rounded down).';

revoke all on function tenancy.lockout_window_number(interval) from public;
