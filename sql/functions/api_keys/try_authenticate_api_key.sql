-- tenancy.try_authenticate_api_key: authenticate_api_key that returns a refusal instead of raising it, so that its event is committed.

create or replace function tenancy.try_authenticate_api_key(p_key text)
returns table (tenant_id uuid, role text, api_key_id uuid, sqlstate text, message text)
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
    select a.tenant_id, a.role, a.api_key_id, a.error_code, a.error_message
    from tenancy.api_key_attempt(p_key, false) as a
$$;

comment on function tenancy.try_authenticate_api_key(text) is
'For tenancy_app: tenancy.authenticate_api_key without raising for a refused key: on success '
'the context is set and sqlstate is NULL; on a refusal (TN004, TN013, TN002) no context is set, '
'the failure is recorded in tenancy.security_events (kept when the caller commits) and counted, '
'and sqlstate and message say why. 25006, 40001 and TN008 are still raised.';

revoke all on function tenancy.try_authenticate_api_key(text) from public;
grant execute on function tenancy.try_authenticate_api_key(text) to tenancy_app;
