-- tenancy.create_meter: an owner or admin declares a meter of the current tenant.

create or replace function tenancy.create_meter(
    p_key text,
    p_name text default null,
    p_aggregation text default 'sum',
    p_reset_period text default 'month',
    p_unit text default 'unit',
    p_property text default null,
    p_backdate_grace interval default '24 hours'
)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'manage meters');
    v_id uuid;
begin
    if p_key is null or not regexp_like(p_key, '^[a-z][a-z0-9_]{0,62}$') then
        raise exception using
            errcode = '22023',
            message = format(
                'invalid meter key %L: a lower-case letter, then up to 62 lower-case letters, digits and underscores',
                tenancy.token_excerpt(p_key, 100)
            );
    end if;
    if p_aggregation is null or p_aggregation not in ('sum', 'count', 'max', 'unique_count', 'latest') then
        raise exception using
            errcode = '22023',
            message = format(
                'invalid aggregation %L for meter %L: sum, count, max, unique_count or latest',
                tenancy.token_excerpt(p_aggregation, 100), p_key
            );
    end if;
    if (p_aggregation = 'unique_count') <> (p_property is not null) then
        raise exception using
            errcode = '22023',
            message = format(
                'meter %L: a unique_count meter needs the property whose values it counts, and only it has one (got %L)',
                p_key, tenancy.token_excerpt(p_property, 100)
            );
    end if;
    if p_property is not null and length(p_property) not between 1 and 100 then
        raise exception using
            errcode = '22023',
            message = format('invalid property name %L for meter %L: 1 to 100 characters', tenancy.token_excerpt(p_property, 100), p_key);
    end if;
    if p_reset_period is null or p_reset_period not in ('day', 'week', 'month', 'year', 'never') then
        raise exception using
            errcode = '22023',
            message = format(
                'invalid reset period %L for meter %L: day, week, month, year or never',
                tenancy.token_excerpt(p_reset_period, 100), p_key
            );
    end if;
    if p_backdate_grace is null or p_backdate_grace < interval '0' or p_backdate_grace > interval '90 days' then
        raise exception using
            errcode = '22023',
            message = format('invalid backdating grace %s for meter %L: 0 to 90 days', coalesce(p_backdate_grace::text, 'NULL'), p_key);
    end if;
    if length(coalesce(btrim(p_name), p_key)) not between 1 and 200 or p_unit is null or length(p_unit) not between 1 and 50 then
        raise exception using
            errcode = '22023',
            message = format(
                'invalid name %L or unit %L for meter %L: a name of 1 to 200 and a unit of 1 to 50 characters',
                tenancy.token_excerpt(p_name, 100), tenancy.token_excerpt(p_unit, 100), p_key
            );
    end if;
    insert into tenancy.meters as m (tenant_id, key, name, unit, aggregation, property, reset_period, backdate_grace)
    values (
        v_tenant_id, p_key, coalesce(btrim(p_name), p_key), p_unit, p_aggregation, p_property, p_reset_period,
        p_backdate_grace
    )
    on conflict (tenant_id, key) do nothing
    returning m.id into v_id;
    if v_id is null then
        raise exception using
            errcode = '23505',
            message = format('meter %L already exists in tenant %s', p_key, v_tenant_id);
    end if;
    return v_id;
end
$$;

comment on function tenancy.create_meter(text, text, text, text, text, text, interval) is
'For owners and admins of the current tenant (and service contexts): declares meter p_key '
'(api_calls) with its aggregation (sum, count, max, unique_count of p_property, latest), reset '
'period (day, week, month, year, never: anchored on each customer''s subscription start), unit '
'and backdating grace (default 24 hours); returns its id. TN001 without a context, 42501 for '
'other roles, 22023 for a bad value, 23505 when the key exists.';

revoke all on function tenancy.create_meter(text, text, text, text, text, text, interval) from public;
grant execute on function tenancy.create_meter(text, text, text, text, text, text, interval)
to tenancy_app, tenancy_service;
