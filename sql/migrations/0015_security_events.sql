-- pgtenancy security events: tenancy.security_events and the failure counters behind lockouts.
-- tenancy.security_events records failed and refused authentications, lockouts, refused
-- member management and support access. tenant_id is NULL when no tenant is known (a malformed
-- token, an unknown host), so this is a platform table, not a tenant table: tenancy_auditor reads
-- it all, owners and admins of a tenant read their tenant's rows through
-- tenancy.tenant_security_events(), and no application role reads the table itself.
-- An event row is written in the transaction of the attempt it describes. So that attempts are
-- counted even when that transaction rolls back, failures are also counted in sequences, which
-- PostgreSQL never rolls back: tenancy.auth_failures_total numbers every failure (an event
-- carries its number: gaps in the numbers are failures whose transaction rolled back), and
-- tenancy.auth_failures_000 to _127, two rows of 64 counters (a count-min sketch), count the
-- failures of each user, API key and host within the current lockout window.

create table tenancy.security_events (
    id bigint generated always as identity,
    occurred_at timestamptz not null default pg_catalog.clock_timestamp(),
    kind text not null,
    tenant_id uuid,
    user_id text,
    api_key_id text,
    host text,
    sqlstate text,
    reason text not null,
    details jsonb not null default '{}',
    attempt bigint,
    database_user name not null default session_user,
    constraint security_events_pkey primary key (id),
    constraint security_events_kind_check check (kind operator (pg_catalog.~) '^[a-z_]+(\.[a-z_]+)+$')
);
create index security_events_tenant_id_idx on tenancy.security_events (tenant_id, occurred_at);
comment on table tenancy.security_events is
'pgtenancy: security events: failed authentications (attempt numbers every failure, so gaps show '
'failures whose transaction rolled back), lockouts, refused member management, support access. '
'Never holds a token or key. Platform table: tenancy_auditor reads all of it; owners and admins '
'of a tenant read its rows with tenancy.tenant_security_events().';
comment on column tenancy.security_events.id is 'Event number, in the order events were written.';
comment on column tenancy.security_events.kind is
'authentication.failed, authentication.lockout, member_management.refused, support_access.begun, '
'api_key.created, api_key.revoked, invitation.created, invitation.accepted, invitation.revoked, ...';
comment on column tenancy.security_events.attempt is
'For failures: the failure''s number from tenancy.auth_failures_total, which no rollback takes '
'back; a number missing from the table is a failure whose transaction rolled back.';
comment on column tenancy.security_events.database_user is
'session_user of the connection that caused the event (not the role of a SECURITY DEFINER '
'function).';

revoke all on tenancy.security_events from public;
grant select on tenancy.security_events to tenancy_auditor;

comment on sequence tenancy.security_events_id_seq is 'pgtenancy: numbers tenancy.security_events.';

create sequence tenancy.auth_failures_total as bigint;
comment on sequence tenancy.auth_failures_total is
'pgtenancy: numbers every failed authentication and refused attempt (never rolled back); see '
'tenancy.security_events.attempt.';
revoke all on sequence tenancy.auth_failures_total from public;

do $counters$
begin
    for i in 0..127 loop
        execute pg_catalog.format('create sequence tenancy.auth_failures_%s as bigint', pg_catalog.lpad(i::pg_catalog.text, 3, '0'));
        execute pg_catalog.format(
            'comment on sequence tenancy.auth_failures_%s is %L',
            pg_catalog.lpad(i::pg_catalog.text, 3, '0'),
            'pgtenancy: one counter of the failed-authentication sketch (lockout window number * 2^20 + failures); '
            'written with nextval/setval, which no rollback takes back.'
        );
        execute pg_catalog.format('revoke all on sequence tenancy.auth_failures_%s from public', pg_catalog.lpad(i::pg_catalog.text, 3, '0'));
    end loop;
end
$counters$;
