-- tenancy.context_value_part: the tenant, role or user written in a context value by tenancy.context_value.

-- The reader of the layout tenancy.context_value writes ('v2|tenant|role|user', the user last).
-- Inlinable SQL (no SET clause, every name schema-qualified).
-- p_part is 'tenant', 'role' or 'user'. NULL when the value is NULL, empty (a context has ended)
-- or not of this layout; the user part is '' for a service context.
-- Used by every reader of the value but tenancy.context_tenant_id (see there).
create or replace function tenancy.context_value_part(p_value text, p_part text)
returns text
language sql
immutable
parallel safe
as $$
    select case
        when p_value operator(pg_catalog.!~~) 'v2|%' then null
        when p_part operator(pg_catalog.=) 'tenant' then pg_catalog.split_part(p_value, '|', 2)
        when p_part operator(pg_catalog.=) 'role' then pg_catalog.split_part(p_value, '|', 3)
        when p_part operator(pg_catalog.=) 'user' then pg_catalog.substr(
            p_value,
            pg_catalog.length(pg_catalog.split_part(p_value, '|', 2))
            operator(pg_catalog.+) pg_catalog.length(pg_catalog.split_part(p_value, '|', 3))
            operator(pg_catalog.+) 6
        )
    end
$$;

comment on function tenancy.context_value_part(text, text) is
'pgtenancy internal: the tenant, role or user (p_part) written in a context value by '
'tenancy.context_value; NULL for a value of another layout. Says nothing about whether the value '
'is valid: tenancy.context_tenant_id and tenancy.current_user_id check that.';

revoke all on function tenancy.context_value_part(text, text) from public;
grant execute on function tenancy.context_value_part(text, text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
