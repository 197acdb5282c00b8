-- tenancy.require_domain_manager: lock the current tenant for a change of its domains; the caller's current role.

-- Domain changes of one tenant take turns on the tenant row, and whether the caller may act is
-- decided by its membership read again, and locked, after that lock: the same rules as
-- tenancy.require_member_manager (see there), with the domain functions' wording.
create or replace function tenancy.require_domain_manager(
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
    if role not in ('owner', 'admin', 'service') then
        raise exception using
            errcode = '42501',
            message = format('role %s of tenant %s cannot manage domains', role, tenant_id),
            hint = 'Only owners and admins manage domains.';
    end if;
    perform 1 from tenancy.tenants as t where t.id = tenant_id for update;
    -- A service context (set_context without a user) has no membership to read again.
    if role = 'service' and user_id is null then
        return;
    end if;
    select m.role into role
    from tenancy.memberships as m
    where m.tenant_id = require_domain_manager.tenant_id and m.user_id = require_domain_manager.user_id
    for share;
    if not found then
        raise exception using
            errcode = '42501',
            message = format('user %L is no longer a member of tenant %s', user_id, tenant_id),
            hint = 'The membership was removed after the context was set.';
    end if;
    if role not in ('owner', 'admin') then
        raise exception using
            errcode = '42501',
            message = format('role %s of tenant %s cannot manage domains', role, tenant_id),
            hint = 'Only owners and admins manage domains.';
    end if;
end
$$;

comment on function tenancy.require_domain_manager() is
'pgtenancy internal, for the domain functions: TN001 without a context; locks the tenant row, '
'then 42501 unless the '
'caller''s membership, read again and locked, is owner or admin (or the context is a service '
'one); 40001 under REPEATABLE READ or SERIALIZABLE when that membership changed after the '
'snapshot. Returns the tenant, the user and the current role.';

revoke all on function tenancy.require_domain_manager() from public;
