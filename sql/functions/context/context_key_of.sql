-- tenancy.context_key_of: the 64-bit key binding a tenant and a member role to this transaction.

-- uuid_hash_extended over the tenant, seeded with a hash of the transaction start time, with the
-- role's code in the low three bits. Nothing in it is free text: a value written by hand can only
-- name another existing tenant, which matches the stored key with probability 2^-61 per try.
-- Inlinable SQL: no SET clause, every name schema-qualified.
create or replace function tenancy.context_key_of(p_tenant_id uuid, p_role text)
returns bigint
language sql
stable
parallel safe
as $$
    select pg_catalog.uuid_hash_extended(
        p_tenant_id,
        pg_catalog.hashfloat8extended(
            pg_catalog.date_part('epoch', pg_catalog.transaction_timestamp()), 0::pg_catalog.int8
        )
    )
    operator(pg_catalog.#) (
        case
            when p_role operator(pg_catalog.=) 'owner' then 1
            when p_role operator(pg_catalog.=) 'admin' then 2
            when p_role operator(pg_catalog.=) 'member' then 3
            when p_role operator(pg_catalog.=) 'viewer' then 4
            when p_role operator(pg_catalog.=) 'service' then 5
        end
    )::pg_catalog.int8
$$;

comment on function tenancy.context_key_of(uuid, text) is
'pgtenancy internal: a 64-bit hash of the tenant and the start time of the current transaction '
'with the role code (owner 1, admin 2, member 3, viewer 4, service 5) in its low bits; NULL for '
'an unknown role. Stored with setval() by establish_context, compared by context_tenant_id.';

revoke all on function tenancy.context_key_of(uuid, text) from public;
grant execute on function tenancy.context_key_of(uuid, text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
