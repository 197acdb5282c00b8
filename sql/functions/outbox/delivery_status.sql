-- tenancy.delivery_status: the current tenant's deliveries with their destination and state (owners and admins).

create or replace view tenancy.delivery_status
with (security_invoker = true)
as
select
    d.event_id,
    d.source,
    coalesce(
        e.name,
        case
            when d.destination_id operator (pg_catalog.=) '00000000-0000-0000-0000-000000000000'::pg_catalog.uuid  -- noqa: LT01
                then 'posthog'
        end
    ) as destination,
    case
        when d.destination_id operator (pg_catalog.=) '00000000-0000-0000-0000-000000000000'::pg_catalog.uuid  -- noqa: LT01
            then 'posthog'
        else e.kind
    end as kind,
    case
        when d.delivered_at is not null then 'delivered'
        when d.dead_at is not null then 'dead'
        when d.lease_until operator (pg_catalog.>) pg_catalog.now() then 'in_flight'  -- noqa: LT01
        else 'pending'
    end as state,
    d.attempts,
    d.next_attempt_at,
    d.last_status,
    d.last_error,
    d.delivered_at,
    d.dead_at,
    d.occurred_at,
    d.ordering_key
from tenancy.deliveries as d
left join tenancy.connector_endpoints as e
    on
        d.tenant_id operator (pg_catalog.=) e.tenant_id  -- noqa: LT01
        and d.destination_id operator (pg_catalog.=) e.id;  -- noqa: LT01

comment on view tenancy.delivery_status is
'pgtenancy: each delivery of the current tenant''s events (security_invoker: owners and admins '
'see their tenant''s rows): destination and kind (an endpoint''s name and kind, posthog, or NULL '
'for a removed endpoint), state pending, in_flight, delivered or dead, attempts, next attempt, last status and error.';

revoke all on tenancy.delivery_status from public;
grant select on tenancy.delivery_status to tenancy_app, tenancy_service;
