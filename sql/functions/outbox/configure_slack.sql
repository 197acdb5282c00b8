-- tenancy.configure_slack: create or replace a Slack incoming-webhook endpoint of the current tenant.

create or replace function tenancy.configure_slack(p_name text, p_webhook_url text, p_channel text default null)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'configure connectors');
    v_url text := tenancy.checked_endpoint_url(p_webhook_url);
    v_channel text := ltrim(p_channel, '#');
    v_id uuid;
begin
    if p_name is null or length(btrim(p_name)) not between 1 and 100 then
        raise exception using
            errcode = '22023',
            message = format('endpoint name %s is not 1 to 100 characters', coalesce(quote_literal(tenancy.token_excerpt(p_name, 100)), 'NULL'));
    end if;
    if v_channel is not null and v_channel !~ '^[a-z0-9][a-z0-9_-]{0,79}$' then
        raise exception using
            errcode = '22023',
            message = format('Slack channel %L is not a channel name (lower-case letters, digits, - and _, at most 80)', tenancy.token_excerpt(p_channel, 100));
    end if;
    perform tenancy.require_endpoint_room(v_tenant_id, p_name);
    insert into tenancy.connector_endpoints as e (tenant_id, kind, name, url_display, channel)
    values (v_tenant_id, 'slack', p_name, regexp_replace(v_url, '^([a-z]+://[^/]*).*$', '\1/…'), v_channel)
    on conflict (tenant_id, name) do update
    set url_display = excluded.url_display, channel = excluded.channel, enabled = true,
        disabled_reason = null, disabled_at = null, updated_at = now()
    where e.kind = 'slack'
    returning e.id into v_id;
    if v_id is null then
        raise exception using
            errcode = '23505',
            message = format('endpoint %L of tenant %s exists and is not a Slack endpoint', p_name, v_tenant_id);
    end if;
    delete from tenancy.connector_secrets where endpoint_id = v_id;
    insert into tenancy.connector_secrets (endpoint_id, secret_id, url) values (v_id, 1, v_url);
    return v_id;
end
$$;

comment on function tenancy.configure_slack(text, text, text) is
'For owners and admins of the current tenant: creates (or replaces, enabled) Slack endpoint '
'p_name posting to incoming-webhook URL p_webhook_url (kept with the secrets: only the relay '
'reads it back) for channel p_channel (NULL: every channel); returns its id. 22023 for a bad '
'name, URL or channel, or a 101st endpoint of the tenant; 23505 when p_name is a webhook endpoint; TN001, 42501.';

revoke all on function tenancy.configure_slack(text, text, text) from public;
grant execute on function tenancy.configure_slack(text, text, text) to tenancy_app, tenancy_service, tenancy_admin;
