-- tenancy.set_feature_flag: override a feature flag for one tenant, or remove the override.

create or replace function tenancy.set_feature_flag(p_tenant_id uuid, p_flag text, p_value jsonb)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_flag tenancy.feature_flag_name := tenancy.checked_feature_flag(p_flag);
begin
    perform tenancy.require_tenant_not_deleted(p_tenant_id);  -- P0002 unknown, 55000 deleted
    if p_value is null then
        delete from tenancy.feature_flags as f where f.tenant_id = p_tenant_id and f.flag = v_flag;
        return;
    end if;
    -- Kept until commit, so tenancy.set_feature_default(flag, NULL) cannot remove the flag
    -- under a new override (see there).
    perform 1 from tenancy.feature_defaults as d where d.flag = v_flag for key share;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('feature flag %L does not exist', p_flag),
            hint = 'Declare it with its platform default first: tenancy.set_feature_default(flag, value).';
    end if;
    insert into tenancy.feature_flags (tenant_id, flag, value)
    values (p_tenant_id, v_flag, p_value)
    on conflict (tenant_id, flag) do update
        set value = excluded.value, updated_at = now();
end
$$;

comment on function tenancy.set_feature_flag(uuid, text, jsonb) is
'For tenancy_admin: tenant p_tenant_id gets p_value for feature flag p_flag instead of the '
'platform default; NULL removes the override. P0002 for an unknown tenant or a flag without a '
'platform default (tenancy.set_feature_default), 22023 for an invalid flag name, '
'55000 for a deleted tenant.';

revoke all on function tenancy.set_feature_flag(uuid, text, jsonb) from public;
grant execute on function tenancy.set_feature_flag(uuid, text, jsonb) to tenancy_admin;
