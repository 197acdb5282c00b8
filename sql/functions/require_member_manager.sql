-- tenancy.require_member_manager: the caller's context, when it may manage members.

create or replace function tenancy.require_member_manager(
    out tenant_id uuid, out user_id uuid, out role text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_context text := tenancy.context_checked(null);
begin
    if v_context is null then
        raise exception using
            errcode = 'TN001',
            message = 'no tenant context: call tenancy.authenticate() or tenancy.set_context() first';
    end if;
    tenant_id := split_part(v_context, '|', 2)::uuid;
    user_id := nullif(split_part(v_context, '|', 3), '')::uuid;
    role := split_part(v_context, '|', 4);
    if role not in ('owner', 'admin', 'service') then
        raise exception using
            errcode = '42501',
            message = format('role %s of tenant %s cannot manage members', role, tenant_id),
            hint = 'Only owners and admins manage members.';
    end if;
    -- Serialise membership changes per tenant so the last-owner rule holds under concurrency.
    perform 1 from tenancy.tenants as t where t.id = tenant_id for update;
end
$$;

comment on function tenancy.require_member_manager() is
'pgtenancy internal: TN001 without a context, 42501 unless the role is owner, admin or service; '
'locks the tenant row.';

revoke all on function tenancy.require_member_manager() from public;
