-- tenancy.set_feature_default: declare a feature flag with its platform default, change it, or remove it.

-- A flag exists once it has a default; tenants may then override it (tenancy.set_feature_flag).
-- NULL removes the flag, unless a tenant overrides it (55000 naming how many): its row is locked
-- first, so an override being added concurrently either commits before the count (and is
-- counted, or under REPEATABLE READ and SERIALIZABLE found by the foreign key as the flag is
-- deleted) or waits and then finds the flag gone (P0002).
create or replace function tenancy.set_feature_default(p_flag text, p_value jsonb)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_flag tenancy.feature_flag_name := tenancy.checked_feature_flag(p_flag);
    v_overrides bigint;
begin
    if p_value is not null then
        insert into tenancy.feature_defaults (flag, value)
        values (v_flag, p_value)
        on conflict (flag) do update
            set value = excluded.value, updated_at = now();
        return;
    end if;
    perform 1 from tenancy.feature_defaults as d where d.flag = v_flag for update;
    if not found then
        return;
    end if;
    select count(*) into v_overrides from tenancy.feature_flags as f where f.flag = v_flag;
    if v_overrides > 0 then
        raise exception using
            errcode = '55000',
            message = format(
                'feature flag %L is overridden for %s tenant(s) and cannot be removed', p_flag, v_overrides
            ),
            hint = 'Remove the overrides with tenancy.set_feature_flag(tenant_id, flag, NULL) first.';
    end if;
    -- Under REPEATABLE READ and SERIALIZABLE the count reads the transaction's snapshot; an
    -- override committed since is found by the foreign key.
    begin
        delete from tenancy.feature_defaults as d where d.flag = v_flag;
    exception when foreign_key_violation then
        raise exception using
            errcode = '55000',
            message = format('feature flag %L is overridden for a tenant and cannot be removed', p_flag),
            detail = 'The override was made after this transaction''s snapshot was taken.',
            hint = 'Remove the overrides with tenancy.set_feature_flag(tenant_id, flag, NULL) first.';
    end;
end
$$;

comment on function tenancy.set_feature_default(text, jsonb) is
'For tenancy_admin: the platform default of feature flag p_flag (a tenancy.feature_flag_name: '
'22023 otherwise) becomes p_value, declaring the flag if new; NULL removes the flag (55000 while '
'a tenant overrides it).';

revoke all on function tenancy.set_feature_default(text, jsonb) from public;
grant execute on function tenancy.set_feature_default(text, jsonb) to tenancy_admin;
