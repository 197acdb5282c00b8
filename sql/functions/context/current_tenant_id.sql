-- tenancy.current_tenant_id: the tenant of this transaction's valid context, or NULL.

create or replace function tenancy.current_tenant_id()
returns uuid
language sql
stable
parallel restricted
as $$
    select tenancy.context_tenant_id(null::pg_catalog.text [])
$$;

comment on function tenancy.current_tenant_id() is
'The current tenant id; NULL when there is no valid context. STABLE, so usable as an index key.';

revoke all on function tenancy.current_tenant_id() from public;
grant execute on function tenancy.current_tenant_id()
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
