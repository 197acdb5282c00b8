-- tenancy.tenant_id_for_key: the tenant an application key names, for trusted backends.

create or replace function tenancy.tenant_id_for_key(p_key text)
returns uuid
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
    select t.id from tenancy.tenants as t where t.key operator(pg_catalog.=) p_key
$$;

comment on function tenancy.tenant_id_for_key(text) is
'For tenancy_admin and tenancy_service: the id of the tenant whose application key is p_key, or '
'NULL when none has it (whatever its status).';

revoke all on function tenancy.tenant_id_for_key(text) from public;
grant execute on function tenancy.tenant_id_for_key(text) to tenancy_admin, tenancy_service;
