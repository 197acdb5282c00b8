-- tenancy.context_value_part: the tenant, role or user written in a context value by tenancy.context_value.

-- The reader of the layout tenancy.context_value writes ('v2|tenant|role|user', the user last).
-- Inlinable SQL (no SET clause, every name schema-qualified): a call with a constant part folds,
-- at plan time, into the one split_part() it names, so the policies' hot path
-- (tenancy.context_tenant_id, once per statement) pays nothing for the indirection.
-- p_part is 'tenant', 'role' or 'user'; the user part is '' for a service context. The value must
-- have the layout (tenancy.is_context_value): the parts of any other text mean nothing.
create or replace function tenancy.context_value_part(p_value text, p_part text)
returns text
language sql
immutable
parallel safe
as $$
    select case
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
'tenancy.context_value, in a value of that layout (tenancy.is_context_value). Says nothing about '
'whether the value is valid: tenancy.context_tenant_id and tenancy.current_user_id check that.';

revoke all on function tenancy.context_value_part(text, text) from public;
grant execute on function tenancy.context_value_part(text, text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
