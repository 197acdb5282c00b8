-- tenancy.relay_claim: lease a batch of due deliveries, the head of each ordering key only, round-robin across tenants.

-- Tenants are visited in id order from the one after p_after_tenant, wrapping around, each
-- giving at most p_per_tenant deliveries, until p_limit are leased: a tenant's backlog cannot
-- starve the others. Within a tenant and destination only the earliest pending delivery of each
-- ordering key may be leased, and only when it is due and not leased: a later event waits while
-- an earlier one is pending, in flight or backing off, and other keys go on. Keys are walked
-- with a skip scan of tenancy.deliveries_pending_idx (one index probe per key). Rows another
-- relay holds locked are skipped (FOR UPDATE SKIP LOCKED); a lease is a committed
-- lease_until, so a relay that dies leaves its deliveries to be claimed again once it passes.
-- The lease counts as an attempt.
create or replace function tenancy.relay_claim(
    p_relay text,
    p_analytics boolean,
    p_limit integer default 500,
    p_per_tenant integer default 50,
    p_lease_seconds integer default 30,
    p_after_tenant uuid default null,
    p_per_key integer default 1
)
returns table (
    tenant_id uuid,
    event_id uuid,
    destination_id uuid,
    occurred_at timestamptz,
    attempts integer,
    ordering_key text,
    payload jsonb
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    v_nil constant uuid := '00000000-0000-0000-0000-000000000000'::uuid;
    v_tenant uuid := p_after_tenant;
    v_next uuid;
    v_wrapped boolean := p_after_tenant is null;
    v_destination uuid;
    v_left integer := p_limit;
    v_tenant_left integer;
    v_got integer;
    v_lease interval := make_interval(secs => p_lease_seconds);
begin
    if p_relay is null or length(p_relay) not between 1 and 200 then
        raise exception using errcode = '22023', message = format('relay name %L is not 1 to 200 characters', p_relay);
    end if;
    if p_limit is null or p_limit not between 1 and 10000 or p_per_tenant is null or p_per_tenant not between 1 and 10000
        or p_lease_seconds is null or p_lease_seconds not between 1 and 3600 or p_analytics is null
        or p_per_key is null or p_per_key not between 1 and 1000 then
        raise exception using
            errcode = '22023',
            message = format('claim of %s deliveries, %s per tenant, %s per key, leased for %s s: 1 to 10000, 1 to 10000, 1 to 1000, 1 to 3600 s',
                coalesce(p_limit::text, 'NULL'), coalesce(p_per_tenant::text, 'NULL'), coalesce(p_per_key::text, 'NULL'),
                coalesce(p_lease_seconds::text, 'NULL'));
    end if;
    <<tenants>>
    loop
        -- Only tenants with pending deliveries of this claim's kind: PostHog's (the nil
        -- destination) or the endpoints' (every other destination sorts after it). The lower
        -- bound is an index condition in the generic plan too (no "v_tenant is null or").
        if p_analytics then
            select d.tenant_id into v_next
            from tenancy.deliveries as d
            where d.delivered_at is null and d.dead_at is null
                and d.tenant_id >= coalesce(v_tenant, v_nil) and d.tenant_id is distinct from v_tenant
                and d.destination_id = v_nil
            order by d.tenant_id
            limit 1;
        else
            select d.tenant_id into v_next
            from tenancy.deliveries as d
            where d.delivered_at is null and d.dead_at is null
                and d.tenant_id >= coalesce(v_tenant, v_nil) and d.tenant_id is distinct from v_tenant
                and d.destination_id > v_nil
            order by d.tenant_id
            limit 1;
        end if;
        if not found then
            exit tenants when v_wrapped;
            v_wrapped := true;
            v_tenant := null;
            continue tenants;
        end if;
        -- Once around: the tenant after which this claim started is visited last.
        exit tenants when v_wrapped and p_after_tenant is not null and v_next > p_after_tenant;
        v_tenant := v_next;
        v_tenant_left := least(p_per_tenant, v_left);
        v_destination := case when p_analytics then v_nil end;
        <<destinations>>
        loop
            if not p_analytics then
                select d.destination_id into v_destination
                from tenancy.deliveries as d
                where d.tenant_id = v_tenant and d.delivered_at is null and d.dead_at is null
                    and d.destination_id > coalesce(v_destination, v_nil)
                order by d.destination_id
                limit 1;
                exit destinations when not found;
            end if;
            return query
            with recursive heads as (
                (
                    select p.ordering_key, p.event_id, p.occurred_at
                    from tenancy.deliveries as p
                    where p.tenant_id = v_tenant and p.destination_id = v_destination
                        and p.delivered_at is null and p.dead_at is null
                    order by p.ordering_key, p.event_id
                    limit 1
                )
                union all
                (
                    select n.ordering_key, n.event_id, n.occurred_at
                    from heads as h
                    cross join lateral (
                        select p.ordering_key, p.event_id, p.occurred_at
                        from tenancy.deliveries as p
                        where p.tenant_id = v_tenant and p.destination_id = v_destination
                            and p.delivered_at is null and p.dead_at is null
                            and p.ordering_key > h.ordering_key
                        order by p.ordering_key, p.event_id
                        limit 1
                    ) as n
                )
            ),
            -- Up to p_per_key events of each key, in event order, as long as all before them
            -- are due and not leased: the key's head first.
            due as (
                select y.tenant_id, y.event_id, y.destination_id, y.occurred_at, y.ordering_key, y.pos
                from heads as h
                cross join lateral (
                    select z.tenant_id, z.event_id, z.destination_id, z.occurred_at, z.ordering_key,
                        row_number() over w as pos,
                        bool_and(z.next_attempt_at <= now() and (z.lease_until is null or z.lease_until < now())) over w as ok
                    from (
                        select q.tenant_id, q.event_id, q.destination_id, q.occurred_at, q.ordering_key,
                            q.next_attempt_at, q.lease_until
                        from tenancy.deliveries as q
                        where q.tenant_id = v_tenant and q.destination_id = v_destination
                            and q.ordering_key = h.ordering_key
                            and q.delivered_at is null and q.dead_at is null
                        order by q.event_id
                        limit p_per_key
                    ) as z
                    window w as (order by z.event_id)
                ) as y
                where y.ok
                limit v_tenant_left
            ),
            -- Each row locked by its primary key: a lateral lookup per row, whatever the
            -- statistics say (a join here turned into a scan of the whole day per row while
            -- a new day's partition had none).
            locked as (
                select due.tenant_id, due.event_id, due.destination_id, due.occurred_at, due.ordering_key, due.pos
                from due
                cross join lateral (
                    select
                    from tenancy.deliveries as y
                    where y.tenant_id = due.tenant_id and y.event_id = due.event_id
                        and y.destination_id = due.destination_id and y.occurred_at = due.occurred_at
                        and y.next_attempt_at <= now() and (y.lease_until is null or y.lease_until < now())
                        and y.delivered_at is null and y.dead_at is null
                    for update of y skip locked
                ) as row_lock
            ),
            -- Of each key, only the rows locked without a gap from its head: a row another relay
            -- locked first stops the key there.
            kept as (
                select l.tenant_id, l.event_id, l.destination_id, l.occurred_at
                from (
                    select locked.*, row_number() over (partition by locked.ordering_key order by locked.pos) as n
                    from locked
                ) as l
                where l.n = l.pos
            ),
            leased as (
                update tenancy.deliveries as x
                set lease_until = now() + v_lease, leased_by = p_relay, attempts = x.attempts + 1
                from kept
                where x.tenant_id = kept.tenant_id and x.event_id = kept.event_id
                    and x.destination_id = kept.destination_id and x.occurred_at = kept.occurred_at
                returning x.tenant_id, x.event_id, x.destination_id, x.occurred_at, x.attempts, x.ordering_key
            )
            select c.tenant_id, c.event_id, c.destination_id, c.occurred_at, c.attempts, c.ordering_key,
                case when p_analytics then
                    jsonb_build_object(
                        'event', a.event, 'distinct_id', a.distinct_id, 'properties', a.properties, 'actor', a.actor
                    )
                else
                    jsonb_build_object(
                        'connector', e.connector, 'action', e.action, 'payload', e.payload, 'actor', e.actor
                    )
                end
            from leased as c
            left join tenancy.analytics_events as a
                on p_analytics and a.tenant_id = c.tenant_id and a.id = c.event_id and a.occurred_at = c.occurred_at
            left join tenancy.connector_events as e
                on not p_analytics and e.tenant_id = c.tenant_id and e.id = c.event_id and e.occurred_at = c.occurred_at;
            get diagnostics v_got = row_count;
            v_left := v_left - v_got;
            v_tenant_left := v_tenant_left - v_got;
            exit destinations when p_analytics or v_tenant_left <= 0;
        end loop destinations;
        exit tenants when v_left <= 0;
    end loop tenants;
end
$$;

comment on function tenancy.relay_claim(text, boolean, integer, integer, integer, uuid, integer) is
'For the relay (tenancy_service): leases to relay p_relay, for p_lease_seconds (1 to 3600), up '
'to p_limit due deliveries of analytics events (p_analytics) or connector events, at most '
'p_per_tenant per tenant, visiting tenants round-robin from the one after p_after_tenant, and '
'of each (tenant, destination, ordering key) only its earliest pending deliveries, up to '
'p_per_key (default 1) in event order, all due; returns them with their event, in key order. '
'Each lease counts as an attempt. 22023 for arguments out of range.';

revoke all on function tenancy.relay_claim(text, boolean, integer, integer, integer, uuid, integer) from public;
grant execute on function tenancy.relay_claim(text, boolean, integer, integer, integer, uuid, integer) to tenancy_service;
