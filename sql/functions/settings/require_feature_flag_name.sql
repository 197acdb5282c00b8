-- tenancy.require_feature_flag_name: 22023 unless a text is a valid feature flag name, without a subtransaction.

-- For tenancy.feature_value, which policies call: it runs as the caller (so every name here is
-- schema-qualified and no SET clause) and possibly inside a parallel plan, where the cast and
-- exception block of tenancy.checked_feature_flag would start a refused subtransaction. The rule
-- is the domain tenancy.feature_flag_name's, spelled again; tests/pgtap/21-settings.sql checks
-- that both accept and refuse the same names.
create or replace function tenancy.require_feature_flag_name(p_flag text)
returns void
language plpgsql
immutable
parallel safe
as $$
begin
    if p_flag is null then
        raise exception using errcode = '22023', message = 'feature flag name is NULL';
    end if;
    if pg_catalog.length(p_flag) operator (pg_catalog.>) 100
        or not pg_catalog.regexp_like(p_flag, '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$') then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format('invalid feature flag name %L', pg_catalog.left(p_flag, 120)),
            hint = 'A flag name is lower-case identifiers joined by dots (billing.invoices_v2): each '
                'starts with a-z and continues with a-z, 0-9 or _; at most 100 characters.';
    end if;
end
$$;

comment on function tenancy.require_feature_flag_name(text) is
'pgtenancy internal: 22023 naming p_flag unless it is a valid feature flag name (the rule of the '
'domain tenancy.feature_flag_name), without a subtransaction; called by tenancy.feature_value.';

revoke all on function tenancy.require_feature_flag_name(text) from public;
grant execute on function tenancy.require_feature_flag_name(text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
