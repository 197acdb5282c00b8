-- tenancy.maintain_outbox: create the outbox's daily partitions ahead and drop the drained ones past their retention.

-- For tenancy.analytics_events, tenancy.connector_events and tenancy.deliveries, each day (UTC)
-- from today to p_days_ahead days ahead gets a partition TABLE_pYYYYMMDD (row level security
-- forced, no grant: reachable only through its parent, whose generated policies apply). A day
-- whose rows the default partition already holds is skipped with a NOTICE. A day's partition is
-- dropped once the day ended longer ago than the table's retention (tenancy.outbox_retention) and
-- no delivery of that day is pending: the day's deliveries partition is locked first, so a
-- replay cannot make one pending meanwhile. Nothing is deleted row by row. A partition is
-- created under lock_timeout 2 s and dropped under 200 ms (a drop locks the parent, and writers
-- would queue behind it): one some transaction holds is left for the next run (NOTICE). Run it every few
-- minutes: the relay does, and so can pg_cron.
create or replace function tenancy.maintain_outbox(p_days_ahead integer default 3)
returns table (action text, partition_name text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'
as $$
#variable_conflict use_column
declare
    v_today date := (now() at time zone 'UTC')::date;
    v_day date;
    v_table text;
    v_name text;
    v_part regclass;
    v_pending boolean;
begin
    if p_days_ahead is null or p_days_ahead not between 0 and 60 then
        raise exception using
            errcode = '22023',
            message = format('days ahead %s is out of range: 0 to 60', coalesce(p_days_ahead::text, 'NULL'));
    end if;
    foreach v_table in array array['analytics_events', 'connector_events', 'deliveries'] loop
        for i in 0..p_days_ahead loop
            v_day := v_today + i;
            v_name := v_table || '_p' || to_char(v_day, 'YYYYMMDD');
            continue when to_regclass(format('tenancy.%I', v_name)) is not null;
            execute format('lock table tenancy.%I in share update exclusive mode', v_table);
            continue when to_regclass(format('tenancy.%I', v_name)) is not null;
            execute format('create table tenancy.%I (like tenancy.%I including defaults including constraints)', v_name, v_table);
            v_part := format('tenancy.%I', v_name)::regclass;
            execute format('alter table %s enable row level security', v_part);
            execute format('alter table %s force row level security', v_part);
            execute format('revoke all on %s from public', v_part);
            execute format(
                'comment on table %s is %L', v_part,
                format('pgtenancy: the rows of tenancy.%s of %s UTC (a partition made by tenancy.maintain_outbox; '
                    'reachable only through its parent).', v_table, to_char(v_day, 'YYYY-MM-DD'))
            );
            begin
                execute format(
                    'alter table tenancy.%I attach partition %s for values from (%L) to (%L)',
                    v_table, v_part, to_char(v_day, 'YYYY-MM-DD') || ' 00:00:00+00',
                    to_char(v_day + 1, 'YYYY-MM-DD') || ' 00:00:00+00'
                );
            exception
                when check_violation or invalid_object_definition then
                    raise notice using
                        message = format('partition tenancy.%I not attached: %s', v_name, sqlerrm),
                        hint = 'The default partition holds rows of that day: they stay there.';
                    execute format('drop table %s', v_part);
                    continue;
            end;
            action := 'created';
            partition_name := 'tenancy.' || v_name;
            return next;
        end loop;
    end loop;
    -- A drop locks the parent table: waiting long for it would queue every writer behind it.
    perform set_config('lock_timeout', '200ms', true);
    -- Drops: every daily partition (by its name) whose day is past its table's retention.
    for v_name, v_day in
        select c.relname, to_date(right(c.relname, 8), 'YYYYMMDD')
        from (values ('analytics_events'), ('connector_events'), ('deliveries')) as p (relname_parent)
        inner join tenancy.outbox_retention as r on r.table_name = p.relname_parent
        inner join pg_inherits as i on i.inhparent = format('tenancy.%I', p.relname_parent)::regclass
        inner join pg_class as c on c.oid = i.inhrelid
        where c.relname ~ '_p[0-9]{8}$'
            and to_date(right(c.relname, 8), 'YYYYMMDD') + 1 <= (now() at time zone 'UTC')::date - r.retain
        order by 2, 1
    loop
        begin
            if to_regclass(format('tenancy.deliveries_p%s', to_char(v_day, 'YYYYMMDD'))) is not null then
                execute format('lock table tenancy.deliveries_p%s in access exclusive mode', to_char(v_day, 'YYYYMMDD'));
                execute format(
                    'select exists (select from tenancy.deliveries_p%s where delivered_at is null and dead_at is null)',
                    to_char(v_day, 'YYYYMMDD')
                ) into v_pending;
                if v_pending then
                    raise notice 'partition tenancy.% kept past its retention: deliveries of % are pending', v_name, v_day;
                    continue;
                end if;
            end if;
            execute format('drop table tenancy.%I', v_name);
        exception
            when lock_not_available then
                raise notice 'partition tenancy.% not dropped now: a lock was not granted within 200 ms', v_name;
                continue;
        end;
        action := 'dropped';
        partition_name := 'tenancy.' || v_name;
        return next;
    end loop;
end
$$;

comment on function tenancy.maintain_outbox(integer) is
'For tenancy_service and tenancy_admin (the relay runs it every minute): creates the daily '
'partitions (UTC) of the outbox tables from today to p_days_ahead (0 to 60, default 3, else '
'22023) days ahead, and drops each day''s partitions once the day is past the table''s retention '
'(tenancy.outbox_retention) and none of its deliveries is pending; never deletes row by row. '
'Returns each partition created or dropped. A partition whose lock is not granted within 2 s is '
'left for the next run (NOTICE).';

revoke all on function tenancy.maintain_outbox(integer) from public;
grant execute on function tenancy.maintain_outbox(integer) to tenancy_service, tenancy_admin;
