-- tenancy.context_tenant_id: the policy key, the current tenant when the member role is allowed.

create or replace function tenancy.context_tenant_id(p_roles text[])
returns uuid
language sql
stable
parallel restricted
as $$
    select pg_catalog.split_part(tenancy.context_checked(p_roles), '|', 2)::pg_catalog.uuid
$$;

comment on function tenancy.context_tenant_id(text[]) is
'The current tenant id when the context is valid and its role is one of p_roles (a service '
'context passes any role list); NULL otherwise. Generated policies call it as '
'(select tenancy.context_tenant_id(array[...])) so it runs once per statement.';

revoke all on function tenancy.context_tenant_id(text[]) from public;
grant execute on function tenancy.context_tenant_id(text[])
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
