-- tenancy.configure_webhook: create or replace a signed (Standard Webhooks) endpoint of the current tenant.

create or replace function tenancy.configure_webhook(
    p_name text,
    p_url text,
    p_event_types text[] default '{}',
    p_secret text default null,
    out endpoint_id uuid,
    out signing_secret text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'configure connectors');
    v_url text := tenancy.checked_endpoint_url(p_url);
    v_bad text;
begin
    if p_name is null or length(btrim(p_name)) not between 1 and 100 then
        raise exception using
            errcode = '22023',
            message = format('endpoint name %s is not 1 to 100 characters', coalesce(quote_literal(tenancy.token_excerpt(p_name, 100)), 'NULL'));
    end if;
    select f.pattern into v_bad
    from unnest(coalesce(p_event_types, '{}')) as f (pattern)
    where f.pattern is null or f.pattern !~ '^[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62}|\.\*)$'
    limit 1;
    if found or cardinality(p_event_types) > 100 then
        raise exception using
            errcode = '22023',
            message = format('event type filter %s is not connector.action or connector.* (at most 100 filters)',
                coalesce(quote_literal(tenancy.token_excerpt(v_bad, 100)), 'NULL'));
    end if;
    signing_secret := tenancy.webhook_secret(p_secret);
    perform tenancy.require_endpoint_room(v_tenant_id, p_name);
    insert into tenancy.connector_endpoints as e (tenant_id, kind, name, url_display, event_types)
    values (v_tenant_id, 'webhook', p_name, regexp_replace(v_url, '[?#].*$', ''), coalesce(p_event_types, '{}'))
    on conflict (tenant_id, name) do update
    set url_display = excluded.url_display, event_types = excluded.event_types, enabled = true,
        disabled_reason = null, disabled_at = null, updated_at = now()
    where e.kind = 'webhook'
    returning e.id into endpoint_id;
    if endpoint_id is null then
        raise exception using
            errcode = '23505',
            message = format('endpoint %L of tenant %s exists and is not a webhook endpoint', p_name, v_tenant_id);
    end if;
    delete from tenancy.connector_secrets as s where s.endpoint_id = configure_webhook.endpoint_id;
    insert into tenancy.connector_secrets (endpoint_id, secret_id, url, signing_secret)
    values (configure_webhook.endpoint_id, 1, v_url, signing_secret);
    if p_secret is not null then
        signing_secret := null;
    end if;
end
$$;

comment on function tenancy.configure_webhook(text, text, text[], text) is
'For owners and admins of the current tenant: creates (or replaces, enabled, with a new secret) '
'webhook endpoint p_name at p_url (https; http only to localhost) receiving the connector event '
'types p_event_types (connector.action or connector.*; empty: all), signed per Standard Webhooks '
'with p_secret (whsec_ and 24 to 64 bytes in base64) or a new secret, returned once in '
'signing_secret (NULL when given): no role but the relay reads it again. 22023 for a bad name, '
'URL, filter or secret, or a 101st endpoint of the tenant; 23505 when p_name is a Slack endpoint; TN001, 42501.';

revoke all on function tenancy.configure_webhook(text, text, text[], text) from public;
grant execute on function tenancy.configure_webhook(text, text, text[], text) to tenancy_app, tenancy_service, tenancy_admin;
