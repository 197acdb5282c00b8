-- tenancy.require_member_manager: lock the current tenant for a change of its members (or domains); the caller's current role.

-- How membership changes stay correct under concurrency, in every isolation level:
-- 1. Every change of a tenant's memberships first locks the tenant row (FOR UPDATE), so the
--    managers of one tenant take turns. Under READ COMMITTED each later statement takes a fresh
--    snapshot, so it sees every change committed before the lock was granted.
-- 2. Every fact a change relies on is then read from a locked row: the caller's own membership
--    here (FOR SHARE), the target's in the caller (FOR UPDATE or FOR SHARE), and, for the
--    last-owner rule, another owner's (FOR SHARE, tenancy.require_another_owner). Under
--    REPEATABLE READ and SERIALIZABLE the snapshot is older than the lock, and a plain read
--    would still show rows another manager has deleted or changed since; locking such a row
--    raises 40001 instead, so whatever locks without error is current and stays so until this
--    transaction ends.
-- The tenant row is locked, not written: were every change to update it, any two changes in a
-- tenant would conflict under REPEATABLE READ (40001), even an owner removing a viewer while
-- an admin adds someone; with row locks only changes that touch the same members collide.
-- The context is read before the lock only to refuse, without taking it, roles that never
-- manage members; whether the caller may act is decided by the membership read after the lock.
-- The domain functions take turns the same way: p_what names what is managed in the messages.
-- Every 42501 goes through tenancy.member_management_refused, which numbers the refusal from
-- tenancy.auth_failures_total (never rolled back) and records a member_management.refused event
-- that the error rolls back: the number stays, as a gap in tenancy.security_events.attempt.
-- A read-only transaction (a support context's) is refused first, 25006.
create or replace function tenancy.require_member_manager(
    p_what text default 'members',
    out tenant_id uuid, out user_id text, out role text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    tenant_id := tenancy.current_tenant_id();
    user_id := tenancy.current_user_id();
    role := tenancy.current_member_role();
    if tenant_id is null or role is null then
        raise exception using
            errcode = 'TN001',
            message = 'no tenant context: call tenancy.authenticate() or tenancy.set_context() first';
    end if;
    -- Refusals are numbered and recorded (member_management_refused), which needs a read-write
    -- transaction; so does every change this guards.
    if current_setting('transaction_read_only') = 'on' then
        raise exception using
            errcode = '25006',
            message = format('managing %s of tenant %s needs a read-write transaction', p_what, tenant_id);
    end if;
    if role not in ('owner', 'admin', 'service') then
        perform tenancy.member_management_refused(
            tenant_id, user_id, role, p_what,
            format('role %s of tenant %s cannot manage %s', role, tenant_id, p_what),
            format('Only owners and admins manage %s.', p_what)
        );
    end if;
    -- A context set with an API key has no user: a key, whatever its role, manages neither
    -- members, domains nor keys (a leaked key could otherwise outlive its revocation in a key or
    -- a member it made). A member role without a user is otherwise only a value written by hand.
    if user_id is null and role <> 'service' then
        raise exception using
            errcode = '42501',
            message = format(
                '%s of tenant %s cannot manage %s',
                coalesce('API key ' || tenancy.current_api_key_id(), 'a context without a user'), tenant_id, p_what
            ),
            hint = format('Owners and admins manage %s as users (tenancy.authenticate), not with an API key.', p_what);
    end if;
    perform 1 from tenancy.tenants as t where t.id = tenant_id for update;
    -- A service context (set_context without a user) has no membership to read again.
    if role = 'service' and user_id is null then
        return;
    end if;
    select m.role into role
    from tenancy.memberships as m
    where m.tenant_id = require_member_manager.tenant_id and m.user_id = require_member_manager.user_id
    for share;
    if not found then
        perform tenancy.member_management_refused(
            tenant_id, user_id, null, p_what,
            format('user %L is no longer a member of tenant %s', user_id, tenant_id),
            'The membership was removed after the context was set.'
        );
    end if;
    if role not in ('owner', 'admin') then
        perform tenancy.member_management_refused(
            tenant_id, user_id, role, p_what,
            format('role %s of tenant %s cannot manage %s', role, tenant_id, p_what),
            format('Only owners and admins manage %s.', p_what)
        );
    end if;
end
$$;

comment on function tenancy.require_member_manager(text) is
'pgtenancy internal: TN001 without a context, 25006 in a read-only transaction; 42501 for a '
'context set with an API key; locks the tenant row, then 42501 (numbered from '
'tenancy.auth_failures_total, logged) unless the caller''s membership, read again and locked, '
'is owner or admin (or the context is a service '
'one); 40001 under REPEATABLE READ or SERIALIZABLE when that membership changed after the '
'snapshot. Returns the tenant, the user and the current role.';

revoke all on function tenancy.require_member_manager(text) from public;
