-- tenancy.track_event: enqueue an analytics event of the current tenant for PostHog, in the caller's transaction.

-- The event and its delivery row are written now, so they commit or roll back with the caller's
-- transaction; the relay sends them later, with the tenant as the event's group. Nothing is
-- sent from here and nothing is NOTIFYed. Events are ordered per distinct id.
create or replace function tenancy.track_event(
    p_event text,
    p_distinct_id text,
    p_properties jsonb default '{}'
)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    -- One check of the context gives the tenant and the actor: the user slot is NULL without a
    -- valid context, and the tenant is then read from the value it checked.
    v_slot text := tenancy.context_user_slot();
    v_tenant_id uuid;
    v_id uuid := tenancy.uuid_v7();
    v_size integer;
begin
    if v_slot is null then
        raise exception using
            errcode = 'TN001',
            message = 'no tenant context: tenancy.track_event needs tenancy.authenticate() or tenancy.set_context() first';
    end if;
    v_tenant_id := split_part(current_setting('tenancy.context'), '|', 2)::uuid;
    if p_event is null or length(p_event) not between 1 and 200 or p_event ~ '[[:cntrl:]]' then
        raise exception using
            errcode = '22023',
            message = format('event name %s is not 1 to 200 characters without control characters',
                coalesce(quote_literal(tenancy.token_excerpt(p_event, 100)), 'NULL'));
    end if;
    if p_event = any('{$groupidentify,$create_alias,$merge_dangerously,$identify}'::text[]) then
        raise exception using
            errcode = '22023',
            message = format('event name %L is reserved: pgtenancy sends group and identity events itself', p_event);
    end if;
    if p_distinct_id is null or length(p_distinct_id) not between 1 and 200 or p_distinct_id ~ '[[:cntrl:]]' then
        raise exception using
            errcode = '22023',
            message = format('distinct id %s is not 1 to 200 characters without control characters',
                coalesce(quote_literal(tenancy.token_excerpt(p_distinct_id, 100)), 'NULL'));
    end if;
    if p_properties is not null and jsonb_typeof(p_properties) <> 'object' then
        raise exception using
            errcode = '22023',
            message = format('properties %s are not a JSON object', tenancy.token_excerpt(p_properties::text, 100));
    end if;
    v_size := octet_length(p_properties::text);
    if v_size > 32768 then
        raise exception using
            errcode = '22023',
            message = format('properties of event %L are %s bytes: at most 32768', p_event, v_size);
    end if;
    insert into tenancy.analytics_events (tenant_id, id, occurred_at, actor, event, distinct_id, ordering_key, properties)
    values (v_tenant_id, v_id, now(), tenancy.outbox_actor(v_slot), p_event, p_distinct_id, p_distinct_id, coalesce(p_properties, '{}'));
    insert into tenancy.deliveries (tenant_id, event_id, destination_id, source, occurred_at, ordering_key, next_attempt_at)
    values (v_tenant_id, v_id, '00000000-0000-0000-0000-000000000000', 'analytics', now(), p_distinct_id, now());
    return v_id;
end
$$;

comment on function tenancy.track_event(text, text, jsonb) is
'For every role of the current tenant (users, API keys, service contexts): enqueues analytics '
'event p_event of PostHog person p_distinct_id with p_properties (a JSON object of at most 32 KB) '
'in the caller''s transaction, and returns its id (a UUID v7, PostHog''s uuid for it, so a '
're-send is de-duplicated). The relay adds the tenant as the event''s group ($groups). TN001 '
'without a context; 22023 for a bad name (or a reserved one: $groupidentify, $identify, '
'$create_alias, $merge_dangerously), distinct id or properties.';

revoke all on function tenancy.track_event(text, text, jsonb) from public;
grant execute on function tenancy.track_event(text, text, jsonb) to tenancy_app, tenancy_service, tenancy_admin;
