-- tenancy.context_tenant_key_mac: the Citus flavour's policy key of tables keyed by the tenant key, when the signed context is valid and its role allowed.

-- As tenancy.context_tenant_id_mac (see there), which it calls for the check, returning the
-- tenant's key from the context value (the length-prefixed fourth field, read as tenancy.context_tenant_key reads it); NULL for
-- a tenant without a key. Policies of bigint and integer tenant columns wrap it in
-- tenancy.tenant_key_int8/int4. Runs as the caller with no SET clause: every name is
-- schema-qualified.
create or replace function tenancy.context_tenant_key_mac(p_roles text[])
returns text
language plpgsql
stable
parallel safe
as $$
declare
    v_value pg_catalog.text := pg_catalog.current_setting('tenancy.context', true);
    v_role pg_catalog.text;
    v_length pg_catalog.text;
begin
    if v_value is null or v_value operator(pg_catalog.!~~) 'v3|%' then
        return null;
    end if;
    -- The whole check (role, expiry, signature) is context_tenant_id_mac's.
    if tenancy.context_tenant_id_mac(p_roles) is null then
        return null;
    end if;
    v_role := pg_catalog.split_part(v_value, '|', 3);
    v_length := pg_catalog.split_part(v_value, '|', 4);
    if v_length operator(pg_catalog.=) '0' then
        return null;
    end if;
    return pg_catalog.substr(
        v_value,
        -- v3| (3), the tenant uuid (36), then the role and the length, each followed by a |.
        43 operator(pg_catalog.+) pg_catalog.length(v_role) operator(pg_catalog.+) pg_catalog.length(v_length),
        v_length::pg_catalog.int4
    );
end
$$;

comment on function tenancy.context_tenant_key_mac(text[]) is
'The current tenant''s key when the signed context (tenancy.context_mac) is valid for '
'tenancy.context and its role is one of p_roles (NULL: any role; a service context passes any '
'list); NULL otherwise and for a tenant without a key. The Citus flavour''s policies of tables '
'keyed by the tenant key call it without a sub-select.';

revoke all on function tenancy.context_tenant_key_mac(text[]) from public;
grant execute on function tenancy.context_tenant_key_mac(text[])
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
