-- tenancy.set_endpoint_enabled: turn a connector endpoint of the current tenant off or back on.

create or replace function tenancy.set_endpoint_enabled(p_name text, p_enabled boolean)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'configure connectors');
begin
    if p_enabled is null then
        raise exception using errcode = '22023', message = 'p_enabled is NULL: true or false';
    end if;
    update tenancy.connector_endpoints as e
    set enabled = p_enabled,
        disabled_reason = case when p_enabled then null else 'disabled by ' || coalesce(tenancy.outbox_actor(tenancy.context_user_slot()), 'a service') end,
        disabled_at = case when p_enabled then null else now() end,
        updated_at = now()
    where e.tenant_id = v_tenant_id and e.name = p_name;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('endpoint %L does not exist in tenant %s', tenancy.token_excerpt(p_name, 100), v_tenant_id);
    end if;
end
$$;

comment on function tenancy.set_endpoint_enabled(text, boolean) is
'For owners and admins of the current tenant: enables or disables endpoint p_name (a disabled '
'endpoint is given no new events; the relay dead-letters what was queued for it). Re-enable an '
'endpoint the relay disabled after a 410, then replay its dead letters '
'(tenancy.replay_dead_letters). P0002 for an unknown endpoint; TN001, 42501.';

revoke all on function tenancy.set_endpoint_enabled(text, boolean) from public;
grant execute on function tenancy.set_endpoint_enabled(text, boolean) to tenancy_app, tenancy_service, tenancy_admin;
