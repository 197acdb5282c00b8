-- tenancy.tg_security_event_outbox: a tenant's security events (lockouts, API keys, support access…) become connector events security.<kind>.

create or replace function tenancy.tg_security_event_outbox()
returns trigger
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    -- A deleted (offboarded) tenant has no rows in any tenant table, the outbox's included.
    if exists (select from tenancy.tenants as t where t.id = new.tenant_id and t.status = 'deleted') then
        return null;
    end if;
    perform tenancy.enqueue_connector_event(
        new.tenant_id, 'security', replace(new.kind, '.', '_'),
        jsonb_strip_nulls(jsonb_build_object(
            'kind', new.kind, 'user_id', new.user_id, 'api_key_id', new.api_key_id,
            'reason', new.reason, 'details', new.details, 'occurred_at', new.occurred_at
        )),
        'security', null
    );
    return null;
end
$$;

comment on function tenancy.tg_security_event_outbox() is
'pgtenancy internal: row trigger on tenancy.security_events: each event of a tenant but a failed '
'authentication (whose volume an attacker controls) is enqueued as connector event '
'security.<kind with _ for .> (security.authentication_lockout, security.api_key_created, '
'security.support_access_begun, …) {kind, user_id, api_key_id, reason, details, occurred_at}; '
'nothing for a deleted tenant.';

revoke all on function tenancy.tg_security_event_outbox() from public;

drop trigger if exists tenancy_security_event_outbox on tenancy.security_events;
create trigger tenancy_security_event_outbox
after insert on tenancy.security_events
for each row
when (new.tenant_id is not null and new.kind operator (pg_catalog.<>) 'authentication.failed')  -- noqa: LT01
execute function tenancy.tg_security_event_outbox();
comment on trigger tenancy_security_event_outbox on tenancy.security_events is
'Enqueues a tenant''s security events (not failed authentications) as connector events security.* '
'(tenancy.tg_security_event_outbox).';
