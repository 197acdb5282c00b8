-- tenancy.support_key_of: the 64-bit key binding a tenant and a support role to this transaction.

-- The counterpart of tenancy.context_key_of for support contexts (tenancy.begin_support_access),
-- whose role names the access's expiry and transaction ('support/<expiry>/<xid>'): a hash of
-- the tenant seeded with hashes of the transaction start time and of the whole role, so a value
-- written by hand with a later expiry, another transaction or another tenant does not match the
-- key stored with setval(). context_key_of gives NULL for such a role, so the member roles' check
-- never admits one, and its body stays as small as before: every policy plans it once per
-- transaction. Inlinable SQL: no SET clause, every name schema-qualified.
create or replace function tenancy.support_key_of(p_tenant_id uuid, p_role text)
returns bigint
language sql
stable
parallel safe
as $$
    select pg_catalog.uuid_hash_extended(
        p_tenant_id,
        pg_catalog.hashfloat8extended(
            pg_catalog.date_part('epoch', pg_catalog.transaction_timestamp()),
            pg_catalog.hashtextextended(p_role, 0::pg_catalog.int8)
        )
    )
$$;

comment on function tenancy.support_key_of(uuid, text) is
'pgtenancy internal: a 64-bit hash of the tenant, the start time of the current transaction and a '
'support role (support/<expiry>/<xid>). Stored with setval() by establish_context for a support '
'context, compared by context_tenant_id.';

revoke all on function tenancy.support_key_of(uuid, text) from public;
grant execute on function tenancy.support_key_of(uuid, text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
