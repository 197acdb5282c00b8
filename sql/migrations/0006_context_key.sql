-- pgtenancy: the context key sequence; the per-statement check no longer reads the epoch.

-- currval() of this sequence is the context key of the last context set in the session: a 64-bit
-- hash of the tenant and the transaction start time, with the role code in its low bits (see
-- tenancy.context_key_of). Only tenancy_owner may setval() it; currval() is private to the session.
create sequence tenancy.context_key
as bigint minvalue -9223372036854775808 maxvalue 9223372036854775807 no cycle;
comment on sequence tenancy.context_key is
'pgtenancy: per-session key of the last context set by pgtenancy (read with currval); binds the '
'tenant and role to the transaction that set them.';
revoke all on tenancy.context_key from public;
grant select on tenancy.context_key to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;

-- Unlogged: setval() on it writes no WAL and assigns no transaction id (sqlfluff lacks the syntax).
alter sequence tenancy.context_key set unlogged; -- noqa: PRS

-- Replaced by tenancy.context_tenant_id (no subtransaction, no per-statement epoch read).
drop function if exists tenancy.context_checked(text[]);
drop function if exists tenancy.context_revalidate(text);
drop function if exists tenancy.context_membership(uuid, uuid);
