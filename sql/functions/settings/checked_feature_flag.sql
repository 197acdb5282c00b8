-- tenancy.checked_feature_flag: a feature flag name, checked against tenancy.feature_flag_name.

create or replace function tenancy.checked_feature_flag(p_flag text)
returns tenancy.feature_flag_name
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_flag is null then
        raise exception using errcode = '22023', message = 'feature flag name is NULL';
    end if;
    return p_flag::tenancy.feature_flag_name;
exception when check_violation then
    raise exception using
        errcode = '22023',
        message = format('invalid feature flag name %L', tenancy.token_excerpt(p_flag, 120)),
        hint = 'A flag name is lower-case identifiers joined by dots (billing.invoices_v2): each '
            'starts with a-z and continues with a-z, 0-9 or _; at most 100 characters.';
end
$$;

comment on function tenancy.checked_feature_flag(text) is
'pgtenancy internal: p_flag as a tenancy.feature_flag_name; 22023 naming the value otherwise, '
'and for NULL.';

revoke all on function tenancy.checked_feature_flag(text) from public;
