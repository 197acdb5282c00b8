-- tenancy.require_active_tenant: raise unless the tenant exists and is active.

create or replace function tenancy.require_active_tenant(p_tenant_id uuid)
returns void
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_status text;
begin
    select t.status into v_status from tenancy.tenants as t where t.id = p_tenant_id;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('tenant %s does not exist', coalesce(p_tenant_id::text, 'NULL'));
    end if;
    if v_status <> 'active' then
        raise exception using
            errcode = 'TN002',
            message = format('tenant %s is %s', p_tenant_id, v_status),
            hint = 'Only active tenants can be used; see tenancy.reactivate_tenant().';
    end if;
end
$$;

comment on function tenancy.require_active_tenant(uuid) is
'pgtenancy internal: P0002 when the tenant does not exist, TN002 when it is not active.';

revoke all on function tenancy.require_active_tenant(uuid) from public;
