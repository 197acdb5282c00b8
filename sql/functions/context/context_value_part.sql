-- tenancy.context_value_part: the tenant, role, key or user written in a context value by tenancy.context_value.

-- The reader of the layout tenancy.context_value writes
-- ('v3|tenant|role|key length|key user': the key read by its length, the user last).
-- Inlinable SQL (no SET clause, every name schema-qualified).
-- p_part is 'tenant', 'role', 'key' or 'user'. NULL when the value is NULL, empty (a context has
-- ended) or not of this layout; the key part is '' for a tenant without a key, the user part ''
-- for a service context.
-- Used by every reader of the value but tenancy.context_tenant_id (see there).
create or replace function tenancy.context_value_part(p_value text, p_part text)
returns text
language sql
immutable
parallel safe
as $$
    select case
        when p_value operator(pg_catalog.!~~) 'v3|%' then null
        when p_part operator(pg_catalog.=) 'tenant' then pg_catalog.split_part(p_value, '|', 2)
        when p_part operator(pg_catalog.=) 'role' then pg_catalog.split_part(p_value, '|', 3)
        -- The key starts after the fourth '|' (3 + tenant + 1 + role + 1 + length + 2 characters
        -- precede it) and is as long as the fourth field says; the user follows it.
        when p_part operator(pg_catalog.=) 'key' then pg_catalog.substr(
            p_value,
            pg_catalog.length(pg_catalog.split_part(p_value, '|', 2))
            operator(pg_catalog.+) pg_catalog.length(pg_catalog.split_part(p_value, '|', 3))
            operator(pg_catalog.+) pg_catalog.length(pg_catalog.split_part(p_value, '|', 4))
            operator(pg_catalog.+) 7,
            pg_catalog.split_part(p_value, '|', 4)::pg_catalog.int4
        )
        when p_part operator(pg_catalog.=) 'user' then pg_catalog.substr(
            p_value,
            pg_catalog.length(pg_catalog.split_part(p_value, '|', 2))
            operator(pg_catalog.+) pg_catalog.length(pg_catalog.split_part(p_value, '|', 3))
            operator(pg_catalog.+) pg_catalog.length(pg_catalog.split_part(p_value, '|', 4))
            operator(pg_catalog.+) 7
            operator(pg_catalog.+) pg_catalog.split_part(p_value, '|', 4)::pg_catalog.int4
        )
    end
$$;

comment on function tenancy.context_value_part(text, text) is
'pgtenancy internal: the tenant, role, key or user (p_part) written in a context value by '
'tenancy.context_value; NULL for a value of another layout. Says nothing about whether the value '
'is valid: tenancy.context_tenant_id, tenancy.context_tenant_key and tenancy.current_user_id '
'check that.';

revoke all on function tenancy.context_value_part(text, text) from public;
grant execute on function tenancy.context_value_part(text, text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
