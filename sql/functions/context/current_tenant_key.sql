-- tenancy.current_tenant_key: the key of this transaction's tenant, or NULL.

create or replace function tenancy.current_tenant_key()
returns text
language sql
stable
parallel restricted
as $$
    select tenancy.context_tenant_key(null::pg_catalog.text [])
$$;

comment on function tenancy.current_tenant_key() is
'The current tenant''s application key (tenancy.tenants.key, as given to create_tenant); NULL '
'when the tenant has none or there is no valid context. STABLE, so usable as a column default '
'and an index key.';

revoke all on function tenancy.current_tenant_key() from public;
grant execute on function tenancy.current_tenant_key()
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
