-- tenancy.tenant_key_int4: a tenant key as an integer tenant column holds it, or NULL.

-- The policies, default and write check of an integer tenant column read the tenant key through
-- this function. Only the canonical decimal spelling of a number in range maps to it: tenant keys
-- are unique as text, so '42', '042', '+42' and ' 42' may be the keys of four tenants, and a plain
-- cast would give all four the rows of 42. Any other key maps to NULL (no row matches; writes are
-- refused with TN009 by tenancy.tg_require_context) instead of raising in every statement.
-- It runs as the caller, in policies, and has no SET clause: every type, function and operator is
-- schema-qualified. No exception block (subtransactions are refused in parallel mode).
create or replace function tenancy.tenant_key_int4(p_key text)
returns integer
language plpgsql
immutable
strict
parallel safe
as $$
begin
    -- Nested tests: the cast runs only on a key already known to be digits.
    if p_key operator(pg_catalog.~) '^(0|-?[1-9][0-9]{0,9})$' then
        if p_key::pg_catalog.numeric operator(pg_catalog.>=) (-2147483648)::pg_catalog.numeric
            and p_key::pg_catalog.numeric operator(pg_catalog.<=) 2147483647::pg_catalog.numeric then
            return p_key::pg_catalog.int4;
        end if;
    end if;
    return null;
end
$$;

comment on function tenancy.tenant_key_int4(text) is
'The tenant key as an integer tenant column holds it: the number when the key is its canonical '
'decimal spelling (42, -7; not 042, +42 or " 42") within the range of integer, NULL for any other '
'key. Used by the generated policies and default of integer tenant columns.';

revoke all on function tenancy.tenant_key_int4(text) from public;
grant execute on function tenancy.tenant_key_int4(text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
