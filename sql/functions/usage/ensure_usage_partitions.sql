-- tenancy.ensure_usage_partitions: the monthly partitions of tenancy.usage_events, from this month to some months ahead.

-- tenancy.usage_events_YYYY_MM holds the events that occurred from the first day of the month
-- (midnight UTC) to the first day of the next. A partition gets row level security ENABLEd and
-- FORCEd, no policy and no grant: it is reachable only through tenancy.usage_events, whose
-- generated policies apply (sql/tenancy.toml: partitions = "runtime"). A month whose events the
-- default partition already holds is skipped with a NOTICE (PostgreSQL cannot create the
-- partition then; the events stay in tenancy.usage_events_default and count as before).
-- Creating a partition locks tenancy.usage_events until the transaction ends: run it from a job
-- (pg_cron, monthly or daily), not in request transactions; tenancy.create_meter runs it too.
create or replace function tenancy.ensure_usage_partitions(p_months_ahead integer default 3)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_first timestamp := date_trunc('month', now() at time zone 'UTC');
    v_month timestamp;
    v_name text;
    v_table regclass;
    v_created integer := 0;
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
        v_month := v_first + make_interval(months => i);
        v_name := 'usage_events_' || to_char(v_month, 'YYYY_MM');
        continue when to_regclass(format('tenancy.%I', v_name)) is not null;
        -- concurrent calls take turns here; the second finds the partition made
        perform pg_advisory_xact_lock('tenancy.usage_events'::regclass::oid::bigint);
        continue when to_regclass(format('tenancy.%I', v_name)) is not null;
        begin
            execute format(
                'create table tenancy.%I partition of tenancy.usage_events for values from (%L) to (%L)',
                v_name, v_month at time zone 'UTC', (v_month + interval '1 month') at time zone 'UTC'
            );
        exception
            when check_violation then
                raise notice using
                    message = format(
                        'partition tenancy.%I not created: tenancy.usage_events_default holds events of %s',
                        v_name, to_char(v_month, 'YYYY-MM')
                    ),
                    detail = sqlerrm;
                continue;
            when invalid_object_definition then
                raise notice using
                    message = format('partition tenancy.%I not created: another partition covers part of %s', v_name, to_char(v_month, 'YYYY-MM')),
                    detail = sqlerrm;
                continue;
        end;
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
        v_created := v_created + 1;
    end loop;
    return v_created;
end
$$;

comment on function tenancy.ensure_usage_partitions(integer) is
'For tenancy_service and tenancy_admin (and tenancy.create_meter): creates the monthly partitions '
'tenancy.usage_events_YYYY_MM (UTC months) from the current month to p_months_ahead (0 to 24, '
'else 22023) months ahead that do not exist yet, with row level security forced and no grant; '
'returns how many it created. A month the default partition already holds events of is skipped '
'with a NOTICE.';

revoke all on function tenancy.ensure_usage_partitions(integer) from public;
grant execute on function tenancy.ensure_usage_partitions(integer) to tenancy_service, tenancy_admin;
