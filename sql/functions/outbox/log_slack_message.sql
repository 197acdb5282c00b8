-- tenancy.log_slack_message: log a Slack message of the current tenant and enqueue it for its Slack endpoint of that channel.

create or replace function tenancy.log_slack_message(p_channel text, p_message text)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_channel text := ltrim(p_channel, '#');
begin
    if v_channel is null or v_channel !~ '^[a-z0-9][a-z0-9_-]{0,79}$' then
        raise exception using
            errcode = '22023',
            message = format('Slack channel %s is not a channel name (lower-case letters, digits, - and _, at most 80)',
                coalesce(quote_literal(tenancy.token_excerpt(p_channel, 100)), 'NULL'));
    end if;
    if p_message is null or length(p_message) not between 1 and 40000 then
        raise exception using
            errcode = '22023',
            message = format('Slack message of %s characters: 1 to 40000', coalesce(length(p_message)::text, 'NULL'));
    end if;
    return tenancy.log_connector_event(
        'slack', 'message',
        jsonb_build_object('channel', v_channel, 'text', p_message),
        'slack:' || v_channel
    );
end
$$;

comment on function tenancy.log_slack_message(text, text) is
'For every role of the current tenant: tenancy.log_connector_event(''slack'', ''message'', '
'{channel, text}) for channel p_channel (a leading # is dropped), ordered per channel; '
'delivered to the tenant''s Slack endpoint of that channel (or one that names none). Returns the '
'event id. 22023 for a bad channel or an empty or longer than 40,000 characters message.';

revoke all on function tenancy.log_slack_message(text, text) from public;
grant execute on function tenancy.log_slack_message(text, text) to tenancy_app, tenancy_service, tenancy_admin;
