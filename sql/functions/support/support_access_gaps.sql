-- tenancy.support_access_gaps: support accesses whose event is missing (their transaction rolled back).

-- Every support access draws a number from tenancy.support_accesses before its event is written
-- in the same transaction (tenancy.open_support_access); the sequence is never rolled back, the
-- event is. A number listed here is an access whose transaction rolled back, or is still open
-- (it leaves the list when that transaction commits); the server log has a LOG line for each
-- number. After a crash PostgreSQL may skip up to 32 numbers of a sequence, which show here too:
-- the server log tells them apart (they have no line).
create or replace function tenancy.support_access_gaps()
returns table (access_number bigint)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
    select n.n
    from generate_series(1::bigint, coalesce(pg_sequence_last_value('tenancy.support_accesses'::regclass), 0)) as n (n)
    where not exists (
        select from tenancy.security_events as e
        where e.kind = 'support_access.begun' and e.attempt = n.n
    )
    order by n.n
$$;

comment on function tenancy.support_access_gaps() is
'For tenancy_auditor: the numbers of support accesses (tenancy.support_accesses) without a '
'support_access.begun event in tenancy.security_events: accesses whose transaction rolled back '
'(or is still open). The server log has a line for each.';

revoke all on function tenancy.support_access_gaps() from public;
grant execute on function tenancy.support_access_gaps() to tenancy_auditor;
