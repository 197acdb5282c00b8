-- tenancy.track_api_call: the analytics event api_call of an endpoint and method, for PostHog.

create or replace function tenancy.track_api_call(p_distinct_id text, p_endpoint text, p_method text)
returns uuid
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
    select tenancy.track_event(
        'api_call', p_distinct_id,
        pg_catalog.jsonb_build_object('endpoint', p_endpoint, 'method', pg_catalog.upper(p_method))
    )
$$;

comment on function tenancy.track_api_call(text, text, text) is
'For every role of the current tenant: tenancy.track_event(''api_call'', p_distinct_id, '
'{endpoint, method}) (the method upper-cased); returns the event id.';

revoke all on function tenancy.track_api_call(text, text, text) from public;
grant execute on function tenancy.track_api_call(text, text, text) to tenancy_app, tenancy_service, tenancy_admin;
