-- tenancy.enqueue_connector_event: write one connector event of a tenant and a delivery row for each endpoint it goes to.

-- A Slack endpoint receives slack.message events of its channel (or of every channel when it
-- names none); a webhook receives the event types its filters match (an exact type, or a prefix
-- and .*; no filter: every type). Disabled endpoints receive nothing. Callers check the tenant
-- and the arguments.
create or replace function tenancy.enqueue_connector_event(
    p_tenant_id uuid,
    p_connector text,
    p_action text,
    p_payload jsonb,
    p_ordering_key text,
    p_actor text
)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_id uuid := tenancy.uuid_v7();
    v_type text := p_connector || '.' || p_action;
begin
    insert into tenancy.connector_events (tenant_id, id, occurred_at, actor, connector, action, ordering_key, payload)
    values (p_tenant_id, v_id, now(), p_actor, p_connector, p_action, p_ordering_key, p_payload);
    insert into tenancy.deliveries (tenant_id, event_id, destination_id, source, occurred_at, ordering_key, next_attempt_at)
    select p_tenant_id, v_id, e.id, 'connector', now(), p_ordering_key, now()
    from tenancy.connector_endpoints as e
    where
        e.tenant_id = p_tenant_id
        and e.enabled
        and case e.kind
            when 'slack' then
                v_type = 'slack.message'
                and (e.channel is null or e.channel = p_payload ->> 'channel')
            else
                cardinality(e.event_types) = 0
                or v_type = any(e.event_types)
                or exists (
                    select from unnest(e.event_types) as f (pattern)
                    where f.pattern like '%.*' and starts_with(v_type, left(f.pattern, -1))
                )
        end;
    return v_id;
end
$$;

comment on function tenancy.enqueue_connector_event(uuid, text, text, jsonb, text, text) is
'pgtenancy internal: writes connector event p_connector.p_action of tenant p_tenant_id and one '
'delivery row per enabled endpoint it matches; returns the event id.';

revoke all on function tenancy.enqueue_connector_event(uuid, text, text, jsonb, text, text) from public;
