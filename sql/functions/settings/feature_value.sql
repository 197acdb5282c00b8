-- tenancy.feature_value: the value of a feature flag for the current tenant (its override, else the platform default).

-- Runs as the caller, without a SET clause, so every type, function and operator is
-- schema-qualified. Not SECURITY DEFINER: a pinned search_path in a function called from a
-- policy makes PostgreSQL plan the context check (tenancy.context_tenant_id, whose plans record
-- the search_path they were made under) again at every switch between the caller's path and the
-- pinned one, twice per statement: measured at about 1,270,000 instructions more per point
-- lookup (docs/benchmarks.md). As the caller it reads tenancy.feature_flags under that table's
-- row level security, which shows the current tenant's overrides only, and the platform
-- defaults, which every role that may evaluate an application's policy may read; the tenant is
-- the verified context's, also named explicitly, so a role exempt from row level security gets
-- the same answer. One statement: the platform default's primary key and the override's
-- (tenant_id, flag) primary key; PL/pgSQL keeps its plan for the session. No exception block
-- (policies may run in parallel plans, which refuse subtransactions), and parallel restricted
-- like the context it reads. A name that is not a valid flag name raises 22023, checked only when
-- nothing was found (stored names are valid) by tenancy.require_feature_flag_name, so a typo in a
-- policy is an error, not a silently disabled feature.
create or replace function tenancy.feature_value(p_flag text)
returns jsonb
language plpgsql
stable
parallel restricted
as $$
declare
    v_tenant_id pg_catalog.uuid := tenancy.current_tenant_id();
    v_value pg_catalog.jsonb;
begin
    if v_tenant_id is null then
        perform tenancy.require_feature_flag_name(p_flag);
        return null;
    end if;
    select coalesce(f.value, d.value) into v_value
    from tenancy.feature_defaults as d
    left join tenancy.feature_flags as f
        on
            f.tenant_id operator (pg_catalog.=) v_tenant_id
            and f.flag operator (pg_catalog.=) d.flag
    where d.flag operator (pg_catalog.=) p_flag;
    if not found then
        perform tenancy.require_feature_flag_name(p_flag);
    end if;
    return v_value;
end
$$;

comment on function tenancy.feature_value(text) is
'The value of feature flag p_flag for the current tenant: its override (tenancy.feature_flags), '
'else the platform default (tenancy.feature_defaults), else NULL; NULL without a valid tenant '
'context. 22023 for an invalid flag name. STABLE: call it as (select tenancy.feature_value(...)) '
'in policies and queries so it runs once per statement.';

revoke all on function tenancy.feature_value(text) from public;
grant execute on function tenancy.feature_value(text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
