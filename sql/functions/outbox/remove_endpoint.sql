-- tenancy.remove_endpoint: delete a connector endpoint of the current tenant and its secrets.

create or replace function tenancy.remove_endpoint(p_name text)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'configure connectors');
    v_id uuid;
begin
    delete from tenancy.connector_endpoints as e
    where e.tenant_id = v_tenant_id and e.name = p_name
    returning e.id into v_id;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('endpoint %L does not exist in tenant %s', tenancy.token_excerpt(p_name, 100), v_tenant_id);
    end if;
    delete from tenancy.connector_secrets as s where s.endpoint_id = v_id;
    update tenancy.deliveries as d
    set dead_at = now(), last_error = 'endpoint removed', lease_until = null, leased_by = null
    where d.tenant_id = v_tenant_id and d.destination_id = v_id and d.delivered_at is null and d.dead_at is null;
end
$$;

comment on function tenancy.remove_endpoint(text) is
'For owners and admins of the current tenant: deletes endpoint p_name with its URL and secrets; '
'its pending deliveries are dead-lettered (endpoint removed). P0002 for an unknown endpoint; TN001, 42501.';

revoke all on function tenancy.remove_endpoint(text) from public;
grant execute on function tenancy.remove_endpoint(text) to tenancy_app, tenancy_service, tenancy_admin;
