-- pgtenancy break-glass support access: the sequence numbering every support access.
-- tenancy.begin_support_access (tenancy_admin) records a support_access.begun event in
-- tenancy.security_events in the transaction it opens the access in. Nothing in core PostgreSQL
-- writes outside the transaction, so a rolled-back transaction takes its event with it; what it
-- cannot take back is a number drawn from a sequence. Every support access draws one from
-- tenancy.support_accesses before its event is written, and the event carries it (attempt): a
-- number without an event is a support access whose transaction rolled back (or is still open),
-- and tenancy.support_access_gaps() lists them for tenancy_auditor. The server log gets a line for
-- each access too (LOG level), which no rollback takes back either.

create sequence tenancy.support_accesses as bigint;
comment on sequence tenancy.support_accesses is
'pgtenancy: numbers every support access (tenancy.begin_support_access), never rolled back; the '
'support_access.begun event carries the number in attempt, so a missing one is an access whose '
'transaction rolled back.';
revoke all on sequence tenancy.support_accesses from public;

comment on column tenancy.security_events.attempt is
'For failures and refusals (authentication.failed, member_management.refused): the number from '
'tenancy.auth_failures_total; for support_access.begun: the number from tenancy.support_accesses. '
'No rollback takes either back: a number missing from the table is an event whose transaction '
'rolled back.';
