-- tenancy.delivery_retry_delay: how long a delivery waits after its n-th failed attempt: exponential, capped, with jitter.

create or replace function tenancy.delivery_retry_delay(p_attempts integer)
returns interval
language sql
volatile
parallel safe
set search_path = pg_catalog, pg_temp
as $$
    -- 5 s times 3^(n-1), at most 6 hours, then between 75 % and 125 % of it.
    select pg_catalog.make_interval(
        secs => least(21600.0, 5.0 * pg_catalog.power(3.0, greatest(p_attempts, 1) - 1))
        * (0.75 + pg_catalog.random() / 2)
    )
$$;

comment on function tenancy.delivery_retry_delay(integer) is
'pgtenancy internal: the wait after failed attempt p_attempts: 5 s × 3^(p_attempts − 1), at most '
'6 hours, times a random factor between 0.75 and 1.25 (so retries of many events spread out).';

revoke all on function tenancy.delivery_retry_delay(integer) from public;
