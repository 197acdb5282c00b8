-- tenancy.replay_dead_letters: queue again the dead-lettered deliveries of the current tenant, to one destination or all.

create or replace function tenancy.replay_dead_letters(
    p_destination text default null,
    p_since timestamptz default null
)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'replay events');
    v_destination uuid;
    v_count integer;
begin
    if p_destination = 'posthog' then
        v_destination := '00000000-0000-0000-0000-000000000000';
    elsif p_destination is not null then
        select e.id into v_destination
        from tenancy.connector_endpoints as e
        where e.tenant_id = v_tenant_id and e.name = p_destination;
        if not found then
            raise exception using
                errcode = 'P0002',
                message = format('endpoint %L does not exist in tenant %s', tenancy.token_excerpt(p_destination, 100), v_tenant_id),
                hint = 'Name an endpoint, or posthog for analytics events.';
        end if;
    end if;
    update tenancy.deliveries as d
    set attempts = 0, next_attempt_at = now(), lease_until = null, leased_by = null,
        last_error = null, dead_at = null
    where d.tenant_id = v_tenant_id
        and d.dead_at is not null
        and (v_destination is null or d.destination_id = v_destination)
        and (p_since is null or d.dead_at >= p_since);
    get diagnostics v_count = row_count;
    return v_count;
end
$$;

comment on function tenancy.replay_dead_letters(text, timestamptz) is
'For owners and admins of the current tenant: queues again, with a fresh attempt schedule, the '
'dead-lettered deliveries to endpoint p_destination (posthog: the analytics events; NULL: every '
'destination) dead-lettered since p_since (NULL: any time); returns how many. Deliveries to a '
'disabled endpoint die again: enable it first. P0002 for an unknown endpoint; TN001, 42501.';

revoke all on function tenancy.replay_dead_letters(text, timestamptz) from public;
grant execute on function tenancy.replay_dead_letters(text, timestamptz) to tenancy_app, tenancy_service, tenancy_admin;
