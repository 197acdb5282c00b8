-- tenancy.drop_audit_before: retention: drop the partitions of tenancy.audit_logs that end by a month.
-- migrate: as-role tenancy_audit_owner

-- Whole partitions only: rows are never deleted one by one (the immutability trigger refuses it),
-- and the default partition is never dropped, even when it holds rows of old months. Every
-- partition whose range ends on or before p_month goes, all or nothing:
-- - nothing when a tenant under legal hold has rows in one of them (TN017, naming up to ten);
-- - nothing when one of them holds rows tenancy.seal_audit has not sealed yet (55000): their
--   digests would be lost and tenancy.verify_audit could not tell a dropped row from a deleted
--   one. Seals stay; tenancy.audit_retention records the drop (verify_audit reads its
--   max(before_month) to know which sealed rows are gone).
-- Months are those of the session's TimeZone, like the partitions' bounds (ensure_audit_partitions).
-- Locks, in this order, all until the transaction ends: the singleton row of
-- tenancy.audit_seal_state (FOR UPDATE, as tenancy.seal_audit does: no seal and no other drop
-- runs meanwhile), tenancy.audit_legal_holds (SHARE: a hold being set waits, or is seen), the
-- partitions to drop (SHARE: no row enters them between the checks and the drop), then DROP TABLE
-- takes tenancy.audit_logs in ACCESS EXCLUSIVE mode for the moment the drop needs: audit writers
-- wait for the transaction to end. A hold committed after a REPEATABLE READ or SERIALIZABLE
-- transaction took its snapshot would go unseen: those are refused (55000).
create or replace function tenancy.drop_audit_before(p_month date)
returns table (partition_name text, row_count bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
set datestyle = 'ISO, YMD'
as $$
declare
    v_latest date := (date_trunc('month', now()) - interval '1 month')::date;
    v_names text[];
    v_name text;
    v_frontier bigint;
    v_held uuid[] := '{}'::uuid[];
    v_tenants uuid[];
    v_unsealed bigint;
    v_first_unsealed bigint;
    v_count bigint;
    v_counts bigint[] := '{}'::bigint[];
    v_total bigint := 0;
begin
    if p_month is null or p_month <> date_trunc('month', p_month)::date or p_month > v_latest then
        raise exception using
            errcode = '22023',
            message = format(
                'month %s is not valid: the first day of a month, %s (the previous month) or earlier, is required',
                coalesce(p_month::text, 'NULL'), v_latest
            );
    end if;
    if current_setting('transaction_isolation') <> 'read committed' then
        raise exception using
            errcode = '55000',
            message = format(
                'tenancy.drop_audit_before needs a READ COMMITTED transaction, not %s',
                upper(current_setting('transaction_isolation'))
            ),
            hint = 'A legal hold set after this transaction''s snapshot would go unseen. Call it on its own, in autocommit.';
    end if;

    select s.frontier into v_frontier from tenancy.audit_seal_state as s where s.singleton for update;
    v_frontier := coalesce(v_frontier, 0);  -- no state row: nothing counts as sealed
    lock table tenancy.audit_legal_holds in share mode;

    -- The partitions whose upper bound is on or before the month (the default has none).
    select coalesce(array_agg(c.relname::text order by c.relname), '{}'::text[]) into v_names
    from pg_inherits as i
    inner join pg_class as c on c.oid = i.inhrelid
    where i.inhparent = 'tenancy.audit_logs'::regclass
        and substring(pg_get_expr(c.relpartbound, c.oid) from $re$ TO \('([^']+)'\)$re$)::timestamptz
        <= p_month::timestamptz;

    foreach v_name in array v_names loop
        execute format('lock table only tenancy.%I in share mode', v_name);
    end loop;

    foreach v_name in array v_names loop
        execute format(
            'select array_agg(h.tenant_id) from tenancy.audit_legal_holds as h '
            'where exists (select from tenancy.%I as a where a.tenant_id = h.tenant_id)', v_name
        ) into v_tenants;
        v_held := v_held || coalesce(v_tenants, '{}'::uuid[]);
    end loop;
    if cardinality(v_held) > 0 then
        select array_agg(distinct t order by t) into v_held from unnest(v_held) as t;
        raise exception using
            errcode = 'TN017',
            message = format(
                'audit partitions before %s are kept: %s tenant(s) under legal hold have rows in them: %s%s',
                p_month, cardinality(v_held), array_to_string(v_held[1:10], ', '),
                case when cardinality(v_held) > 10 then format(' and %s more', cardinality(v_held) - 10) else '' end
            ),
            detail = format('Partitions: %s.', array_to_string(v_names, ', ')),
            hint = 'Release the holds (tenancy.set_legal_hold(tenant, false)) or choose an earlier month.';
    end if;

    foreach v_name in array v_names loop
        execute format(
            'select count(*), min(a.txid) from tenancy.%I as a where a.txid >= $1', v_name
        ) into v_unsealed, v_first_unsealed using v_frontier;
        if v_unsealed > 0 then
            raise exception using
                errcode = '55000',
                message = format(
                    'partition tenancy.%I holds %s audit row(s) not sealed yet (transactions from %s; the seals reach %s): seal first',
                    v_name, v_unsealed, v_first_unsealed, v_frontier
                ),
                hint = 'Run tenancy.seal_audit(), then drop again.';
        end if;
    end loop;

    foreach v_name in array v_names loop
        execute format('select count(*) from tenancy.%I', v_name) into v_count;
        v_counts := v_counts || v_count;
        v_total := v_total + v_count;
    end loop;
    if cardinality(v_names) > 0 then
        insert into tenancy.audit_retention (before_month, partitions, row_count)
        values (p_month, v_names, v_total);
        foreach v_name in array v_names loop
            execute format('drop table tenancy.%I', v_name);
        end loop;
        raise log 'pgtenancy: audit partitions % (% rows) dropped by %', v_names, v_total, session_user;
    end if;
    return query select u.name, u.n from unnest(v_names, v_counts) as u (name, n);
end
$$;

comment on function tenancy.drop_audit_before(date) is
'For tenancy_admin: drops every partition of tenancy.audit_logs whose range ends on or before '
'p_month (the first day of a month, the previous one at the latest, else 22023), never the '
'default one, and records it in tenancy.audit_retention; returns each partition dropped with its '
'row count. Nothing is dropped when a tenant under legal hold has rows in them (TN017) or when '
'they hold rows not sealed yet (55000: run tenancy.seal_audit first). READ COMMITTED only (55000).';

revoke all on function tenancy.drop_audit_before(date) from public;
grant execute on function tenancy.drop_audit_before(date) to tenancy_admin;
