-- tenancy.context_tenant_key: the policy key of tables keyed by the tenant key, when the member role is allowed.

-- Tables whose tenant column holds the application's key (bigint, integer or text, see
-- tenancy.tenants.key) compare it with this, cast once per statement:
--     company_id = (select tenancy.context_tenant_key(array[...])::pg_catalog.int8)
-- The tenant and role are checked by tenancy.context_tenant_id (the context key); the key is
-- part of the context value, bound to the transaction by its fingerprint (SHA-256 over the whole
-- value and the transaction start time, see tenancy.context_fingerprint_of), so a value written
-- by hand with another key does not match.
-- Runs as the caller, no SET clause: every name is schema-qualified; no exception block and
-- parallel restricted, like context_tenant_id.
create or replace function tenancy.context_tenant_key(p_roles text[])
returns text
language plpgsql
stable
parallel restricted
as $$
declare
    v_value pg_catalog.text;
    v_key pg_catalog.text;
begin
    if tenancy.context_tenant_id(p_roles) is null then
        return null;
    end if;
    v_value := pg_catalog.current_setting('tenancy.context', true);
    if pg_catalog.int8send(pg_catalog.currval('tenancy.context_fingerprint'::pg_catalog.regclass))
        operator(pg_catalog.<>) tenancy.context_fingerprint_of(v_value) then
        return null;
    end if;
    v_key := tenancy.context_value_part(v_value, 'key');
    -- Empty for a tenant without a key.
    if v_key operator(pg_catalog.=) '' then
        return null;
    end if;
    return v_key;
end
$$;

comment on function tenancy.context_tenant_key(text[]) is
'The current tenant''s key (tenancy.tenants.key) when the context is valid and its role is one '
'of p_roles (NULL: any role; a service context passes any list); NULL otherwise, and for a '
'tenant without a key. Generated policies of tables keyed by the tenant key call it as '
'(select tenancy.context_tenant_key(array[...])::type) so it runs once per statement.';

revoke all on function tenancy.context_tenant_key(text[]) from public;
grant execute on function tenancy.context_tenant_key(text[])
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
