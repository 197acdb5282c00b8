-- tenancy.require_endpoint_room: refuse (22023) a new connector endpoint of a tenant that has 100 already.

create or replace function tenancy.require_endpoint_room(p_tenant_id uuid, p_name text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_count integer;
begin
    -- Replacing an endpoint of that name takes no room.
    if exists (
        select from tenancy.connector_endpoints as e where e.tenant_id = p_tenant_id and e.name = p_name
    ) then
        return;
    end if;
    select count(*) into v_count from tenancy.connector_endpoints as e where e.tenant_id = p_tenant_id;
    if v_count >= 100 then
        raise exception using
            errcode = '22023',
            message = format('tenant %s has %s connector endpoints: at most 100 (endpoint %L not created)',
                p_tenant_id, v_count, tenancy.token_excerpt(p_name, 100)),
            hint = 'Remove one with tenancy.remove_endpoint, or filter event types on an existing webhook.';
    end if;
end
$$;

comment on function tenancy.require_endpoint_room(uuid, text) is
'pgtenancy internal: 22023 when tenant p_tenant_id has 100 connector endpoints and p_name is not '
'one of them: every connector event is a request per matching endpoint, so the fan-out of one '
'tenant''s events is bounded.';

revoke all on function tenancy.require_endpoint_room(uuid, text) from public;
