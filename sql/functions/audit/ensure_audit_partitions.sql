-- tenancy.ensure_audit_partitions: the monthly partitions of tenancy.audit_logs, from this month to some months ahead.
-- migrate: as-role tenancy_audit_owner

-- Names and bounds are migration 0019's: tenancy.audit_logs_YYYY_MM holds the rows logged from
-- the first day of the month (midnight in the session's TimeZone, as for 0019's partitions: run
-- it with the server's default, as the migrations do) to the first day of the next. A month is
-- skipped, with a NOTICE, when the default partition already holds rows of it (PostgreSQL cannot
-- create the partition then: they stay in the default partition, which is never dropped) or when
-- another partition already covers part of it; an existing partition of the name counts as
-- created. Each new partition gets the guards of tg_audit_immutable.sql: the BEFORE TRUNCATE
-- trigger (TRUNCATE triggers are not inherited) and, checked, the row trigger PostgreSQL clones
-- from the parent, both ENABLE ALWAYS; and a comment.
-- Creating one locks the singleton row of tenancy.audit_seal_state (as tenancy.seal_audit and
-- tenancy.drop_audit_before do, so they never interleave) and, for the CREATE, tenancy.audit_logs
-- and its default partition in ACCESS EXCLUSIVE mode until the transaction ends: audit writers
-- wait for that moment. When every partition exists already, nothing is locked.
create or replace function tenancy.ensure_audit_partitions(p_months_ahead integer default 3)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_first date := date_trunc('month', now())::date;
    v_month date;
    v_name text;
    v_table regclass;
    v_enabled "char";
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
        v_name := 'audit_logs_' || to_char(v_month, 'YYYY_MM');
        continue when to_regclass(format('tenancy.%I', v_name)) is not null;
        if not v_locked then
            -- Check, lock, check again: a concurrent call may have created it meanwhile.
            perform from tenancy.audit_seal_state as s where s.singleton for update;
            v_locked := true;
            continue when to_regclass(format('tenancy.%I', v_name)) is not null;
        end if;
        begin
            execute format(
                'create table tenancy.%I partition of tenancy.audit_logs for values from (%L) to (%L)',
                v_name, v_month::timestamptz, (v_month + interval '1 month')::timestamptz
            );
        exception
            when check_violation then
                raise notice using
                    message = format(
                        'partition tenancy.%I not created: tenancy.audit_logs_default holds rows logged in %s',
                        v_name, to_char(v_month, 'YYYY-MM')
                    ),
                    detail = sqlerrm,
                    hint = 'Those rows stay in the default partition, which tenancy.drop_audit_before never drops.';
                continue;
            when invalid_object_definition then
                raise notice using
                    message = format(
                        'partition tenancy.%I not created: another partition covers part of %s',
                        v_name, to_char(v_month, 'YYYY-MM')
                    ),
                    detail = sqlerrm,
                    hint = 'Partitions are months in the session''s TimeZone: use the one the others were made in.';
                continue;
        end;
        v_table := format('tenancy.%I', v_name)::regclass;
        execute format(
            'comment on table %s is %L', v_table,
            format(
                'pgtenancy: the rows of tenancy.audit_logs logged in %s (a partition, made by '
                'tenancy.ensure_audit_partitions; dropped whole by tenancy.drop_audit_before).',
                to_char(v_month, 'YYYY-MM')
            )
        );
        execute format(
            'create trigger tenancy_audit_no_truncate before truncate on %s '
            'for each statement execute function tenancy.tg_audit_immutable()', v_table
        );
        execute format('alter table %s enable always trigger tenancy_audit_no_truncate', v_table);
        execute format(
            'comment on trigger tenancy_audit_no_truncate on %s is %L', v_table,
            'Refuses (TN016) TRUNCATE of the audit trail, superusers'' too.'
        );
        select t.tgenabled into v_enabled
        from pg_trigger as t
        where t.tgrelid = v_table and t.tgname = 'tenancy_audit_immutable';
        if not found then
            raise exception using
                errcode = 'XX000',
                message = format(
                    'partition %s has no trigger tenancy_audit_immutable: tenancy.audit_logs lost its row trigger',
                    v_table
                ),
                hint = 'Apply sql/functions/audit/tg_audit_immutable.sql again (pgtenancy migrate).';
        end if;
        if v_enabled <> 'A' then
            execute format('alter table %s enable always trigger tenancy_audit_immutable', v_table);
        end if;
        v_created := v_created + 1;
    end loop;
    return v_created;
end
$$;

comment on function tenancy.ensure_audit_partitions(integer) is
'For tenancy_service and tenancy_admin (and tenancy.seal_audit): creates the monthly partitions '
'tenancy.audit_logs_YYYY_MM from the current month to p_months_ahead (0 to 24, else 22023) '
'months ahead that do not exist yet, with their ENABLE ALWAYS immutability triggers; returns how '
'many it created. A month whose rows the default partition already holds is skipped with a NOTICE.';

revoke all on function tenancy.ensure_audit_partitions(integer) from public;
grant execute on function tenancy.ensure_audit_partitions(integer) to tenancy_service, tenancy_admin;
