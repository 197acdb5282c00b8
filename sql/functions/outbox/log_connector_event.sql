-- tenancy.log_connector_event: log an external integration call of the current tenant and enqueue it for its endpoints.

create or replace function tenancy.log_connector_event(
    p_connector text,
    p_action text,
    p_payload jsonb default '{}',
    p_ordering_key text default null
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
    v_size integer;
begin
    if v_slot is null then
        raise exception using
            errcode = 'TN001',
            message = 'no tenant context: tenancy.log_connector_event needs tenancy.authenticate() or tenancy.set_context() first';
    end if;
    v_tenant_id := split_part(current_setting('tenancy.context'), '|', 2)::uuid;
    if p_connector is null or p_connector !~ '^[a-z][a-z0-9_]{0,62}$' then
        raise exception using
            errcode = '22023',
            message = format('connector %s is not a lower-case name (a letter, then up to 62 letters, digits and underscores)',
                coalesce(quote_literal(tenancy.token_excerpt(p_connector, 100)), 'NULL'));
    end if;
    if p_action is null or p_action !~ '^[a-z][a-z0-9_]{0,62}$' then
        raise exception using
            errcode = '22023',
            message = format('action %s is not a lower-case name (a letter, then up to 62 letters, digits and underscores)',
                coalesce(quote_literal(tenancy.token_excerpt(p_action, 100)), 'NULL'));
    end if;
    if p_payload is null or jsonb_typeof(p_payload) <> 'object' then
        raise exception using
            errcode = '22023',
            message = format('payload %s is not a JSON object', coalesce(tenancy.token_excerpt(p_payload::text, 100), 'NULL'));
    end if;
    v_size := octet_length(p_payload::text);
    if v_size > 65536 then
        raise exception using
            errcode = '22023',
            message = format('payload of %s.%s is %s bytes: at most 65536', p_connector, p_action, v_size);
    end if;
    if p_ordering_key is not null and length(p_ordering_key) not between 1 and 200 then
        raise exception using
            errcode = '22023',
            message = format('ordering key %L is not 1 to 200 characters', tenancy.token_excerpt(p_ordering_key, 100));
    end if;
    return tenancy.enqueue_connector_event(
        v_tenant_id, p_connector, p_action, p_payload, coalesce(p_ordering_key, p_connector), tenancy.outbox_actor(v_slot)
    );
end
$$;

comment on function tenancy.log_connector_event(text, text, jsonb, text) is
'For every role of the current tenant: logs the call p_action of connector p_connector with '
'p_payload (a JSON object of at most 64 KB) in tenancy.connector_events, in the caller''s '
'transaction, and enqueues it for each of the tenant''s endpoints whose filters take '
'p_connector.p_action; returns the event id (the webhook-id of its deliveries). Deliveries of one '
'p_ordering_key (default: the connector) keep their order. TN001 without a context; 22023 for a '
'bad name, payload or ordering key.';

revoke all on function tenancy.log_connector_event(text, text, jsonb, text) from public;
grant execute on function tenancy.log_connector_event(text, text, jsonb, text) to tenancy_app, tenancy_service, tenancy_admin;
