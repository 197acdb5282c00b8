-- tenancy.ensure_usage_partitions: the monthly partitions of tenancy.usage_events, from this month to some months ahead.

-- tenancy.usage_events_YYYY_MM holds the events that occurred from the first day of the month
-- (midnight UTC) to the first day of the next. A partition gets row level security ENABLEd and
-- FORCEd, no policy and no grant: it is reachable only through tenancy.usage_events, whose
-- generated policies apply (sql/tenancy.toml: partitions = "runtime"). A month whose events the
-- default partition already holds is skipped with a NOTICE (PostgreSQL cannot attach the
-- partition then; the events stay in tenancy.usage_events_default and count as before), so run
-- it ahead of time: from a job (pg_cron, daily), never in request transactions.
-- Writers are not stopped: each partition is created apart and then attached, which takes SHARE
-- UPDATE EXCLUSIVE on tenancy.usage_events (concurrent calls take turns on it; no application
-- role may take that lock) and ACCESS EXCLUSIVE only on the new table and, briefly, the default
-- partition, for a scan of it. lock_timeout (2 s) keeps a long reader of the default partition
-- from queueing every other session behind the attach: the call fails with 55P03, to be tried
-- again later. Bounds are written as text in UTC, whatever the session's TimeZone or DateStyle.
create or replace function tenancy.ensure_usage_partitions(p_months_ahead integer default 3)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'
as $$
declare
    v_first date := date_trunc('month', now() at time zone 'UTC')::date;
    v_month date;
    v_name text;
    v_table regclass;
    v_created integer := 0;
    v_locked boolean := false;
begin
    if p_months_ahead is null or p_months_ahead not between 0 and 24 then
        raise exception using
            errcode = '22023',
            message = format(
                'months ahead %s is out of range: 0 to 24 months after the current one',
                coalesce(p_months_ahead::text, 'NULL')
            );
    end if;
    for i in 0..p_months_ahead loop
        v_month := (v_first + make_interval(months => i))::date;
        v_name := 'usage_events_' || to_char(v_month, 'YYYY_MM');
        continue when to_regclass(format('tenancy.%I', v_name)) is not null;
        if not v_locked then
            -- Check, lock, check again: a concurrent call may have made it meanwhile.
            lock table tenancy.usage_events in share update exclusive mode;
            v_locked := true;
            continue when to_regclass(format('tenancy.%I', v_name)) is not null;
        end if;
        execute format('create table tenancy.%I (like tenancy.usage_events including defaults)', v_name);
        v_table := format('tenancy.%I', v_name)::regclass;
        execute format('alter table %s enable row level security', v_table);
        execute format('alter table %s force row level security', v_table);
        execute format('revoke all on %s from public', v_table);
        execute format(
            'comment on table %s is %L', v_table,
            format(
                'pgtenancy: the usage events that occurred in %s UTC (a partition of tenancy.usage_events, '
                'made by tenancy.ensure_usage_partitions; reachable only through it).',
                to_char(v_month, 'YYYY-MM')
            )
        );
        begin
            execute format(
                'alter table tenancy.usage_events attach partition %s for values from (%L) to (%L)',
                v_table, to_char(v_month, 'YYYY-MM-DD') || ' 00:00:00+00',
                to_char(v_month + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00'
            );
        exception
            when check_violation then
                raise notice using
                    message = format(
                        'partition tenancy.%I not attached: tenancy.usage_events_default holds events of %s',
                        v_name, to_char(v_month, 'YYYY-MM')
                    ),
                    detail = sqlerrm,
                    hint = 'Those events stay in the default partition; create partitions months ahead.';
                execute format('drop table %s', v_table);
                continue;
            when invalid_object_definition then
                raise notice using
                    message = format('partition tenancy.%I not attached: another partition covers part of %s', v_name, to_char(v_month, 'YYYY-MM')),
                    detail = sqlerrm;
                execute format('drop table %s', v_table);
                continue;
        end;
        v_created := v_created + 1;
    end loop;
    return v_created;
end
$$;

comment on function tenancy.ensure_usage_partitions(integer) is
'For tenancy_service and tenancy_admin (a daily job): creates the monthly partitions '
'tenancy.usage_events_YYYY_MM (UTC months) from the current month to p_months_ahead (0 to 24, '
'else 22023) months ahead that do not exist yet, with row level security forced and no grant; '
'returns how many it created. A month the default partition already holds events of is skipped '
'with a NOTICE; 55P03 when a lock is not granted within 2 seconds (try again later).';

revoke all on function tenancy.ensure_usage_partitions(integer) from public;
grant execute on function tenancy.ensure_usage_partitions(integer) to tenancy_service, tenancy_admin;
