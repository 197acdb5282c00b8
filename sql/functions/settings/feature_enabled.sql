-- tenancy.feature_enabled: whether a feature flag is on (the JSON value true) for the current tenant.

-- Inlinable SQL over tenancy.feature_value: no SET clause, every name schema-qualified.
create or replace function tenancy.feature_enabled(p_flag text)
returns boolean
language sql
stable
parallel restricted
as $$
    select coalesce(tenancy.feature_value(p_flag) operator (pg_catalog.=) 'true'::pg_catalog.jsonb, false)
$$;

comment on function tenancy.feature_enabled(text) is
'true when feature flag p_flag is the JSON value true for the current tenant (override, else '
'platform default); false for any other value, an unknown flag or without a valid tenant context. '
'22023 for an invalid flag name. STABLE: call it as (select tenancy.feature_enabled(...)) in '
'policies and queries so it runs once per statement.';

revoke all on function tenancy.feature_enabled(text) from public;
grant execute on function tenancy.feature_enabled(text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
