-- tenancy.reactivate_tenant: make a suspended tenant active again.

create or replace function tenancy.reactivate_tenant(p_tenant_id uuid)
returns void
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
    select tenancy.set_tenant_status(p_tenant_id, 'active', array['suspended'])
$$;

comment on function tenancy.reactivate_tenant(uuid) is
'For tenancy_admin and tenancy_service: makes a suspended tenant active again.';

revoke all on function tenancy.reactivate_tenant(uuid) from public;
grant execute on function tenancy.reactivate_tenant(uuid) to tenancy_admin, tenancy_service;
