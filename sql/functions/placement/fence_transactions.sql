-- tenancy.fence_transactions and tenancy.fence_pending: the transactions a fence waits for, and which of them still run.

-- Called after tenancy.fence_tenant has committed: every client transaction of this database
-- running now may have set a context of the tenant before the fence, and may still write; those
-- that begin later see the fence. Virtual transaction ids, as tenancy.offboard_tenant watches them.
create or replace function tenancy.fence_transactions()
returns text[]
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
    select coalesce(array(
        select l.virtualxid
        from pg_locks as l
        inner join pg_stat_activity as a on a.pid = l.pid
        where
            l.locktype = 'virtualxid'
            and l.mode = 'ExclusiveLock'
            and l.granted
            and l.pid <> pg_backend_pid()
            and a.usesysid is not null  -- client sessions (backend_type is hidden from tenancy_owner)
            and a.datid = (select d.oid from pg_database as d where d.datname = current_database())
        order by l.virtualxid
    ), '{}')
$$;

comment on function tenancy.fence_transactions() is
'For tenancy_admin (tenant moves): the virtual transaction ids of the client transactions of this '
'database running now; called once tenancy.fence_tenant has committed, they are the ones that may '
'still write in a context set before the fence.';

revoke all on function tenancy.fence_transactions() from public;
grant execute on function tenancy.fence_transactions() to tenancy_admin;

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
