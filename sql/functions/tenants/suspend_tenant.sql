-- tenancy.suspend_tenant: refuse every context of a tenant, keeping its data.

create or replace function tenancy.suspend_tenant(p_tenant_id uuid)
returns void
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
    select tenancy.set_tenant_status(p_tenant_id, 'suspended', array['active'])
$$;

comment on function tenancy.suspend_tenant(uuid) is
'For tenancy_admin and tenancy_service: suspends a tenant. Its contexts are refused from the '
'next statement on, including contexts set earlier in open transactions.';

revoke all on function tenancy.suspend_tenant(uuid) from public;
grant execute on function tenancy.suspend_tenant(uuid) to tenancy_admin, tenancy_service;
