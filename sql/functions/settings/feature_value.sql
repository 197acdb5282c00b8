-- tenancy.feature_value: the value of a feature flag for the current tenant (its override, else the platform default).

-- SECURITY DEFINER, with a pinned search_path: the flag tables stay closed to the application
-- (tenancy_app reads neither the platform defaults nor, through these functions, any tenant's
-- overrides but its own), and every role that may query the application's tables can call it
-- from a policy without privileges on them. The tenant is only ever the verified context's:
-- the caller chooses the flag, never the tenant. One statement, the platform default's primary
-- key and the override's (tenant_id, flag) primary key; PL/pgSQL keeps its plan for the session.
-- No exception block (policies may run in parallel plans, which refuse subtransactions), and
-- parallel restricted like the context it reads. A name that is not a valid flag name raises
-- 22023, checked only when nothing was found (stored names are valid), so a typo in a policy is
-- an error, not a silently disabled feature.
create or replace function tenancy.feature_value(p_flag text)
returns jsonb
language plpgsql
stable
parallel restricted
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.current_tenant_id();
    v_value jsonb;
begin
    if v_tenant_id is null then
        perform tenancy.checked_feature_flag(p_flag);
        return null;
    end if;
    select coalesce(f.value, d.value) into v_value
    from tenancy.feature_defaults as d
    left join tenancy.feature_flags as f on f.tenant_id = v_tenant_id and f.flag = d.flag
    where d.flag = p_flag;
    if not found then
        perform tenancy.checked_feature_flag(p_flag);
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
