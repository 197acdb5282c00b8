-- tenancy.track_events: enqueue many analytics events of the current tenant in one call, in the caller's transaction.

-- The batch form of tenancy.track_event: the same checks for each event (the first bad one
-- refuses the whole call, naming its position, and nothing is written), then one INSERT of the
-- events and one of their deliveries, so a request that records several events pays the
-- statements' fixed cost once. Ids are made in the order of the array.
create or replace function tenancy.track_events(p_events jsonb)
returns uuid[]
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_slot text := tenancy.context_user_slot();
    v_tenant_id uuid;
    v_bad record;
    v_ids uuid[];
begin
    if v_slot is null then
        raise exception using
            errcode = 'TN001',
            message = 'no tenant context: tenancy.track_events needs tenancy.authenticate() or tenancy.set_context() first';
    end if;
    v_tenant_id := split_part(current_setting('tenancy.context'), '|', 2)::uuid;
    if p_events is null or jsonb_typeof(p_events) <> 'array' or jsonb_array_length(p_events) > 1000 then
        raise exception using
            errcode = '22023',
            message = format('events %s are not a JSON array of at most 1000 events',
                coalesce(tenancy.token_excerpt(p_events::text, 100), 'NULL'));
    end if;
    select i.n, i.e into v_bad
    from jsonb_array_elements(p_events) with ordinality as i (e, n)
    where jsonb_typeof(i.e) <> 'object'
        or jsonb_typeof(i.e -> 'event') is distinct from 'string'
        or jsonb_typeof(i.e -> 'distinct_id') is distinct from 'string'
        or length(i.e ->> 'event') not between 1 and 200 or (i.e ->> 'event') ~ '[[:cntrl:]]'
        or (i.e ->> 'event') = any('{$groupidentify,$create_alias,$merge_dangerously,$identify}'::text[])
        or length(i.e ->> 'distinct_id') not between 1 and 200 or (i.e ->> 'distinct_id') ~ '[[:cntrl:]]'
        or coalesce(jsonb_typeof(i.e -> 'properties'), 'object') <> 'object'
        or octet_length(coalesce(i.e -> 'properties', '{}')::text) > 32768
    order by i.n
    limit 1;
    if found then
        raise exception using
            errcode = '22023',
            message = format('event %s of the batch is not {"event": name, "distinct_id": id, "properties": {…}} '
                'with a name and id of 1 to 200 characters (not a reserved name) and properties of at most 32768 bytes: %s',
                v_bad.n, tenancy.token_excerpt(v_bad.e::text, 200));
    end if;
    -- Each event's id is made first, in the array's order, and kept with its position.
    with items as (
        select i.n, i.e, tenancy.uuid_v7() as id
        from jsonb_array_elements(p_events) with ordinality as i (e, n)
    ),
    events as (
        insert into tenancy.analytics_events (tenant_id, id, occurred_at, actor, event, distinct_id, ordering_key, properties)
        select v_tenant_id, items.id, now(), tenancy.outbox_actor(v_slot), items.e ->> 'event',
            items.e ->> 'distinct_id', items.e ->> 'distinct_id', coalesce(items.e -> 'properties', '{}')
        from items
        returning id, ordering_key
    ),
    queued as (
        insert into tenancy.deliveries (tenant_id, event_id, destination_id, source, occurred_at, ordering_key, next_attempt_at)
        select v_tenant_id, events.id, '00000000-0000-0000-0000-000000000000', 'analytics', now(), events.ordering_key, now()
        from events
        returning event_id
    )
    select coalesce(array_agg(items.id order by items.n), '{}') into v_ids
    from items
    where exists (select from queued where queued.event_id = items.id);
    return v_ids;
end
$$;

comment on function tenancy.track_events(jsonb) is
'For every role of the current tenant: enqueues up to 1000 analytics events '
'[{"event", "distinct_id", "properties"}, …] in one call, with tenancy.track_event''s rules (the '
'first bad event refuses the call, 22023 naming its position; nothing is written); returns their '
'ids in the array''s order. TN001 without a context.';

revoke all on function tenancy.track_events(jsonb) from public;
grant execute on function tenancy.track_events(jsonb) to tenancy_app, tenancy_service, tenancy_admin;
