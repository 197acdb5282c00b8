-- tenancy.require_usage_role: the current tenant when the context's role may do a usage operation; TN001 or 42501 otherwise.

create or replace function tenancy.require_usage_role(p_roles text[], p_what text)
returns uuid
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.context_tenant_id(p_roles);
begin
    if v_tenant_id is not null then
        return v_tenant_id;
    end if;
    v_tenant_id := tenancy.current_tenant_id();
    if v_tenant_id is null then
        raise exception using
            errcode = 'TN001',
            message = format('no tenant context: %s needs tenancy.authenticate() or tenancy.set_context() first', p_what);
    end if;
    raise exception using
        errcode = '42501',
        message = format('role %s of tenant %s cannot %s', tenancy.current_member_role(), v_tenant_id, p_what),
        hint = format('Roles allowed: %s.', array_to_string(p_roles, ', '));
end
$$;

comment on function tenancy.require_usage_role(text[], text) is
'pgtenancy internal: the current tenant when the context''s role is one of p_roles (a service '
'context passes); TN001 without a context, 42501 naming the role and p_what otherwise.';

revoke all on function tenancy.require_usage_role(text[], text) from public;
