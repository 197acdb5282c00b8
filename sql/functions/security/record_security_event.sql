-- tenancy.record_security_event: write one row of tenancy.security_events.

create or replace function tenancy.record_security_event(
    p_kind text,
    p_reason text,
    p_tenant_id uuid default null,
    p_user_id text default null,
    p_host text default null,
    p_sqlstate text default null,
    p_details jsonb default '{}',
    p_api_key_id text default null,
    p_attempt bigint default null
)
returns bigint
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
    -- Values that came from a request are cut, so that a hostile one cannot bloat the table.
    insert into tenancy.security_events (
        kind, reason, tenant_id, user_id, host, sqlstate, details, api_key_id, attempt
    )
    values (
        p_kind,
        tenancy.token_excerpt(p_reason, 500),
        p_tenant_id,
        tenancy.token_excerpt(p_user_id, 255),
        tenancy.token_excerpt(p_host, 255),
        p_sqlstate,
        coalesce(p_details, '{}'),
        tenancy.token_excerpt(p_api_key_id, 64),
        p_attempt
    )
    returning id
$$;

comment on function tenancy.record_security_event(text, text, uuid, text, text, text, jsonb, text, bigint) is
'pgtenancy internal: records a security event (kind such as authentication.failed) with its '
'reason, tenant, user, host, SQLSTATE, details, API key id and failure number; values from '
'requests are cut to bounded lengths. Returns the event id.';

revoke all on function tenancy.record_security_event(text, text, uuid, text, text, text, jsonb, text, bigint) from public;
-- tenancy.set_legal_hold, owned by the audit trail's owner, records its changes here.
grant execute on function tenancy.record_security_event(text, text, uuid, text, text, text, jsonb, text, bigint)
to tenancy_audit_owner;
