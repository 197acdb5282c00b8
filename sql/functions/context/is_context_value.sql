-- tenancy.is_context_value: whether a text has the layout tenancy.context_value writes.

-- The layout's version prefix, checked before tenancy.context_value_part reads a value's parts.
-- Says nothing about whether the value is valid (tenancy.context_tenant_id checks that). NULL
-- for NULL. Inlinable SQL (no SET clause, every name schema-qualified): in the policies' hot
-- path, tenancy.context_tenant_id, it folds into one LIKE.
create or replace function tenancy.is_context_value(p_value text)
returns boolean
language sql
immutable
parallel safe
as $$
    select p_value operator(pg_catalog.~~) 'v2|%'
$$;

comment on function tenancy.is_context_value(text) is
'pgtenancy internal: true when p_value has the layout of tenancy.context_value (''v2|...''); '
'NULL for NULL. The empty value (a context has ended) is not one.';

revoke all on function tenancy.is_context_value(text) from public;
grant execute on function tenancy.is_context_value(text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
