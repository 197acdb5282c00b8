-- tenancy.support_access_open: whether a support role's access still holds in this statement.

-- A support context's role is 'support/<expiry>/<xid>' (tenancy.begin_support_access), bound
-- into the context key (tenancy.support_key_of), so the values read here are the ones pgtenancy
-- wrote. The access holds while all three are true:
-- * the transaction is read-only. begin_support_access makes it so, and PostgreSQL refuses to
--   make it read-write again after its first query, except that PostgreSQL 15 lets RESET
--   transaction_read_only (or set_config(..., NULL, true)) do it, as does rolling back a
--   savepoint taken before the access began. Such a transaction loses the access instead;
-- * the clock (clock_timestamp, not the statement's start: a loop in one statement must not read
--   on after the expiry) is before the expiry, in epoch seconds;
-- * the transaction's id is the one the access began in: a later transaction started by the
--   same simple-query message has the same start time, and so the same key, but another id or
--   none.
-- Called only for support roles, after the member roles' test, by the policy checks
-- (context_tenant_id, context_tenant_key): runs as the caller, every name schema-qualified.
create or replace function tenancy.support_access_open(p_role text)
returns boolean
language sql
volatile
parallel restricted
as $$
    select pg_catalog.current_setting('transaction_read_only') operator(pg_catalog.=) 'on'
        and pg_catalog.clock_timestamp() operator(pg_catalog.<) pg_catalog.to_timestamp(
            pg_catalog.split_part(p_role, '/', 2)::pg_catalog.float8
        )
        and pg_catalog.pg_current_xact_id_if_assigned()::pg_catalog.text
        operator(pg_catalog.=) pg_catalog.split_part(p_role, '/', 3)
$$;

comment on function tenancy.support_access_open(text) is
'pgtenancy internal: for a support context''s role (support/<expiry>/<xid>), true while the '
'transaction is read-only, the clock is before the expiry and the transaction is the one the '
'access began in.';

revoke all on function tenancy.support_access_open(text) from public;
grant execute on function tenancy.support_access_open(text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
