-- tenancy.check_tier_terms: 22023 unless a tier's terms are valid for the tenant's meters.

create or replace function tenancy.check_tier_terms(
    p_tenant_id uuid,
    p_name text,
    p_price numeric,
    p_currency text,
    p_usage_caps jsonb,
    p_soft_caps text[],
    p_overage_prices jsonb,
    p_feature_entitlements text[],
    p_alert_thresholds numeric[]
)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_bad text;
begin
    if p_name is null or length(p_name) not between 1 and 100 or p_name <> btrim(p_name) then
        raise exception using
            errcode = '22023',
            message = format('invalid tier name %L: 1 to 100 characters, no surrounding spaces', tenancy.token_excerpt(p_name, 100));
    end if;
    if p_price is null or p_price < 0 or p_price = 'NaN' or p_price = 'Infinity' then
        raise exception using
            errcode = '22023',
            message = format('invalid price %s for tier %L: a finite number from 0', coalesce(p_price::text, 'NULL'), p_name);
    end if;
    if p_currency is null or not regexp_like(p_currency, '^[A-Z]{3}$') then
        raise exception using
            errcode = '22023',
            message = format('invalid currency %L for tier %L: an ISO 4217 code such as USD', tenancy.token_excerpt(p_currency, 20), p_name);
    end if;
    foreach v_bad in array array['usage_caps', 'overage_prices'] loop
        if jsonb_typeof(case v_bad when 'usage_caps' then p_usage_caps else p_overage_prices end) is distinct from 'object' then
            raise exception using
                errcode = '22023',
                message = format('%s of tier %L must be a JSON object of meter keys to numbers', v_bad, p_name);
        end if;
    end loop;
    -- every key a meter of the tenant, every value a finite number from 0
    select format('%s %L: %s', e.what, e.key, e.problem) into v_bad
    from (
        select 'cap of', c.key,
            case
                when jsonb_typeof(c.value) <> 'number' then format('%s is not a number', c.value)
                when c.value::text::numeric < 0 then format('%s is negative', c.value)
            end, 1
        from jsonb_each(p_usage_caps) as c
        union all
        select 'overage price of', o.key,
            case
                when jsonb_typeof(o.value) <> 'number' then format('%s is not a number', o.value)
                when o.value::text::numeric < 0 then format('%s is negative', o.value)
                when not p_usage_caps ? o.key then 'the tier has no cap on it'
            end, 2
        from jsonb_each(p_overage_prices) as o
        union all
        select 'soft cap', s.key, case when not p_usage_caps ? s.key then 'the tier has no cap on it' end, 3
        from unnest(p_soft_caps) as s (key)
    ) as e (what, key, problem, n)
    where e.problem is not null
    order by e.n, e.key
    limit 1;
    if v_bad is not null then
        raise exception using errcode = '22023', message = format('tier %L: %s', p_name, v_bad);
    end if;
    select k.key into v_bad
    from jsonb_object_keys(p_usage_caps) as k (key)
    where not exists (select from tenancy.meters as m where m.tenant_id = p_tenant_id and m.key = k.key)
    order by 1
    limit 1;
    if v_bad is not null then
        raise exception using
            errcode = '22023',
            message = format('tier %L caps meter %L, which tenant %s does not have', p_name, v_bad, p_tenant_id),
            hint = 'Create it first: tenancy.create_meter(key, ...).';
    end if;
    select f into v_bad
    from unnest(p_feature_entitlements) as f
    where f is null or not regexp_like(f, '^[a-z][a-z0-9_]{0,62}$')
    limit 1;
    if found then
        raise exception using
            errcode = '22023',
            message = format(
                'invalid feature %L of tier %L: a lower-case letter, then up to 62 lower-case letters, digits and underscores',
                tenancy.token_excerpt(v_bad, 100), p_name
            );
    end if;
    if p_alert_thresholds is null or cardinality(p_alert_thresholds) > 10 or exists (
        select from unnest(p_alert_thresholds) as t where t is null or t <= 0 or t > 10
    ) then
        raise exception using
            errcode = '22023',
            message = format(
                'invalid alert thresholds %s of tier %L: up to 10 fractions of the cap, above 0 and at most 10',
                coalesce(p_alert_thresholds::text, 'NULL'), p_name
            );
    end if;
end
$$;

comment on function tenancy.check_tier_terms(uuid, text, numeric, text, jsonb, text[], jsonb, text[], numeric[]) is
'pgtenancy internal: 22023 naming the first problem of a tier''s terms: name, price, currency, '
'caps (meter keys of the tenant to numbers from 0), soft caps and overage prices (of capped '
'meters), feature names, alert thresholds.';

revoke all on function tenancy.check_tier_terms(uuid, text, numeric, text, jsonb, text[], jsonb, text[], numeric[])
from public;
