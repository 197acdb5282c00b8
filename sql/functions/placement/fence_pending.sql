-- tenancy.fence_pending: which of the transactions a fence waits for still run.

-- Polled by pgtenancy tenant move with the list tenancy.fence_transactions gave once the fence had
-- committed: the fence is complete when none is left.
-- Runs as the caller: pg_stat_activity shows a transaction's start only to roles that may read
-- its statistics (a superuser, as the move runs, or a member of pg_read_all_stats), never to
-- tenancy_owner; pg_locks and the pids are public.
create or replace function tenancy.fence_pending(p_watched text[])
returns table (pid integer, xact_start timestamptz, application_name text)
language sql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
    select l.pid, a.xact_start, a.application_name::text
    from pg_locks as l
    inner join pg_stat_activity as a on a.pid = l.pid
    where
        l.locktype = 'virtualxid'
        and l.mode = 'ExclusiveLock'
        and l.granted
        and l.virtualxid = any(p_watched)
    order by l.pid
$$;

comment on function tenancy.fence_pending(text[]) is
'For tenancy_admin (tenant moves): which of the transactions p_watched (tenancy.fence_transactions) '
'still run: their pid, start (NULL unless the caller may read the session''s statistics: a '
'superuser, pg_read_all_stats) and application name. None: the fence is complete.';

revoke all on function tenancy.fence_pending(text[]) from public;
grant execute on function tenancy.fence_pending(text[]) to tenancy_admin;
