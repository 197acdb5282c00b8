-- tenancy.require_clean_session: refuse a context in a session shaped by an earlier borrower.

-- A pooled connection carries whatever the previous borrower left: temporary objects (a
-- temporary domain or view can shadow names that unqualified SQL resolves) and holdable cursors
-- (still readable after their transaction, with the rows of the tenant that opened them), and
-- statements prepared in SQL (a name the driver uses, redefined to run attacker SQL under the next
-- tenant's context).
-- Cheap when the session is clean: pg_my_temp_schema() is 0 until the session first creates a
-- temporary object, and pg_cursors lists only the session's own named cursors.
create or replace function tenancy.require_clean_session()
returns void
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_temp_schema oid := pg_my_temp_schema();
    v_objects bigint := 0;
    v_cursors text[];
    v_prepared text[];
begin
    if v_temp_schema <> 0 then
        -- Every object created in a schema depends on it.
        select count(*) into v_objects
        from pg_depend as d
        where d.refclassid = 'pg_namespace'::regclass and d.refobjid = v_temp_schema;
    end if;
    select array_agg(c.name order by c.name) into v_cursors
    from pg_cursors as c
    where c.is_holdable;
    -- PREPARE made in SQL (drivers prepare at the protocol level: from_sql is false): an earlier
    -- borrower could have redefined a statement name the driver is about to execute.
    select array_agg(p.name order by p.name) into v_prepared
    from pg_prepared_statements as p
    where p.from_sql;
    if v_objects = 0 and v_cursors is null and v_prepared is null then
        return;
    end if;
    -- Opted in (applications that use temporary tables on purpose), or a superuser session.
    if pg_has_role(session_user, 'tenancy_session_objects', 'member')
        or exists (select 1 from pg_roles as r where r.rolname = session_user and r.rolsuper) then
        return;
    end if;
    raise exception using
        errcode = 'TN008',
        message = format(
            'session of %s is not clean: %s temporary object(s) in %s, holdable cursor(s) %s, '
            'prepared statement(s) %s',
            session_user,
            v_objects,
            coalesce(v_temp_schema::regnamespace::text, 'no temporary schema'),
            coalesce(array_to_string(v_cursors, ', '), 'none'),
            coalesce(array_to_string(v_prepared, ', '), 'none')
        ),
        hint = 'A tenant context is not set in a session an earlier borrower may have shaped. Reset '
            'pooled connections with DISCARD ALL (pgtenancy.reset_session, or pgbouncer '
            'server_reset_query_always = 1), or grant tenancy_session_objects to this login.';
end
$$;

comment on function tenancy.require_clean_session() is
'pgtenancy internal: TN008 when the session holds temporary objects, open holdable cursors or '
'statements prepared with PREPARE, unless the session user is a member of '
'tenancy_session_objects or a superuser.';

revoke all on function tenancy.require_clean_session() from public;
