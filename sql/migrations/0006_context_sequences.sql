-- pgtenancy sequences tenancy.context_key and tenancy.context_fingerprint: the context's proof.
-- migrate: replaces 0002_core 0006_context_key

-- currval() of context_key is the key of the last context set in the session: a 64-bit hash of
-- the tenant and the transaction start time, with the role code in its low bits (see
-- tenancy.context_key_of); context_fingerprint holds a hash of the whole value (user included).
-- Only tenancy_owner may setval() them; currval() is private to the session.
create sequence tenancy.context_key
as bigint minvalue -9223372036854775808 maxvalue 9223372036854775807 no cycle;
comment on sequence tenancy.context_key is
'pgtenancy: per-session key of the last context set by pgtenancy (read with currval); binds the '
'tenant and role to the transaction that set them.';

create sequence tenancy.context_fingerprint
as bigint minvalue -9223372036854775808 maxvalue 9223372036854775807 no cycle;
comment on sequence tenancy.context_fingerprint is
'pgtenancy: per-session fingerprint of the last context set by pgtenancy (read with currval).';

-- No longer read by anything; dropped by a later migration once no function bumps it.
create sequence tenancy.context_epoch as bigint;
select pg_catalog.nextval('tenancy.context_epoch');
comment on sequence tenancy.context_epoch is
'pgtenancy: incremented on tenant status and membership changes; contexts made under an older '
'value are revalidated.';

revoke all on tenancy.context_key, tenancy.context_fingerprint, tenancy.context_epoch from public;
grant select on tenancy.context_key, tenancy.context_fingerprint, tenancy.context_epoch
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;

-- Unlogged: setval() writes no WAL and assigns no transaction id (sqlfluff lacks the syntax).
alter sequence tenancy.context_key set unlogged; -- noqa: PRS
alter sequence tenancy.context_fingerprint set unlogged; -- noqa: PRS
