-- tenancy.relay_counts: the outbox's backlog across tenants: pending, in flight and dead deliveries per source and kind.

create or replace function tenancy.relay_counts()
returns table (
    source text,
    kind text,
    pending bigint,
    in_flight bigint,
    dead bigint,
    oldest_pending timestamptz
)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
    select d.source,
        case when d.destination_id operator (pg_catalog.=) '00000000-0000-0000-0000-000000000000'::uuid
            then 'posthog' else coalesce(e.kind, 'removed') end,
        pg_catalog.count(*) filter (
            where d.dead_at is null and (d.lease_until is null or d.lease_until operator (pg_catalog.<=) pg_catalog.now())
        ),
        pg_catalog.count(*) filter (where d.dead_at is null and d.lease_until operator (pg_catalog.>) pg_catalog.now()),
        pg_catalog.count(*) filter (where d.dead_at is not null),
        pg_catalog.min(d.occurred_at) filter (where d.dead_at is null)
    from (
        select p.tenant_id, p.destination_id, p.source, p.occurred_at, p.lease_until, p.dead_at
        from tenancy.deliveries as p
        where p.delivered_at is null and p.dead_at is null
        union all
        select p.tenant_id, p.destination_id, p.source, p.occurred_at, p.lease_until, p.dead_at
        from tenancy.deliveries as p
        where p.dead_at is not null
    ) as d
    left join tenancy.connector_endpoints as e
        on e.tenant_id operator (pg_catalog.=) d.tenant_id and e.id operator (pg_catalog.=) d.destination_id
    group by 1, 2
$$;

comment on function tenancy.relay_counts() is
'For tenancy_service and tenancy_admin: over every tenant, the deliveries pending (due or '
'backing off), in flight (leased) and dead-lettered (kept for the retention), and the oldest '
'pending event, per source (analytics, connector) and destination kind (posthog, slack, webhook).';

revoke all on function tenancy.relay_counts() from public;
grant execute on function tenancy.relay_counts() to tenancy_service, tenancy_admin;

create or replace view tenancy.relay_status
with (security_barrier = true)
as
select
    c.source,
    c.kind,
    c.pending,
    c.in_flight,
    c.dead,
    c.oldest_pending
from tenancy.relay_counts() as c;

comment on view tenancy.relay_status is
'pgtenancy: the outbox backlog over every tenant (tenancy.relay_counts), for the relay''s '
'operators (tenancy_service, tenancy_admin); pgtenancy relay status prints it.';

revoke all on tenancy.relay_status from public;
grant select on tenancy.relay_status to tenancy_service, tenancy_admin;
