-- tenancy.context_preconditions: a clean session, then a tenant's status and a user's role in it.

-- authenticate and set_context call this once, before setting a context.
-- A session holding what an earlier borrower left (temporary objects, holdable cursors, statements
-- prepared in SQL) is refused by tenancy.require_clean_session (TN008 unless allowed); the common
-- clean case costs one catalog function and a look at the session's cursors and statements.

-- Under READ COMMITTED each statement sees every change committed before it. Under REPEATABLE
-- READ and SERIALIZABLE the transaction's snapshot may be older than a suspension or a removed
-- membership that has since committed; locking the rows (FOR SHARE) then raises 40001 instead of
-- trusting the old snapshot, so a context is never set from data revoked before it was set (a
-- change still in progress is waited for). Not called by policies: the exception block (a
-- subtransaction) is allowed here.
create or replace function tenancy.context_preconditions(
    p_tenant_id uuid, p_user_id text, out status text, out role text, out key text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if (pg_my_temp_schema() <> 0 and exists (
        select 1 from pg_depend as d
        where d.refclassid = 'pg_namespace'::regclass and d.refobjid = pg_my_temp_schema()
    )) or exists (select 1 from pg_cursors as c where c.is_holdable)
    or exists (select 1 from pg_prepared_statements as p where p.from_sql) then
        perform tenancy.require_clean_session();
    end if;
    if current_setting('transaction_isolation') = 'read committed' then
        select t.status, m.role, t.key into status, role, key
        from tenancy.tenants as t
        left join tenancy.memberships as m on m.tenant_id = t.id and m.user_id = p_user_id
        where t.id = p_tenant_id;
        return;
    end if;
    -- The locks only serve the check: they are released at once (the block's subtransaction is
    -- rolled back on purpose), so a context does not hold row locks that member management in the
    -- same transaction would have to upgrade (two such transactions would deadlock).
    begin
        -- The JWT configuration too: a secret rotated, or an issuer, audience or lifetime
        -- changed, after the snapshot must not let the old one verify a token.
        perform 1 from tenancy.jwt_config as j where j.singleton for share;
        select t.status, t.key into status, key
        from tenancy.tenants as t
        where t.id = p_tenant_id
        for share;
        if p_user_id is not null then
            select m.role into role
            from tenancy.memberships as m
            where m.tenant_id = p_tenant_id and m.user_id = p_user_id
            for share;
        end if;
        raise exception using errcode = 'TN000', message = 'release the row locks';
    exception when sqlstate 'TN000' then
        null;  -- status and role keep the values read above
    end;
end
$$;

comment on function tenancy.context_preconditions(uuid, text) is
'pgtenancy internal: TN008 unless the session is clean; then the tenant''s status (NULL when '
'it does not exist), its key and the user''s role (NULL when not a member); under REPEATABLE READ or SERIALIZABLE the rows (and the JWT '
'configuration) are locked, so a change committed after the snapshot raises 40001.';

revoke all on function tenancy.context_preconditions(uuid, text) from public;
