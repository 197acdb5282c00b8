-- tenancy.create_tier: an owner or admin creates a tier of the current tenant (version 1).

create or replace function tenancy.create_tier(
    p_name text,
    p_price numeric,
    p_usage_caps jsonb default '{}',
    p_feature_entitlements text[] default '{}',
    p_currency text default 'USD',
    p_soft_caps text[] default '{}',
    p_overage_prices jsonb default '{}',
    p_alert_thresholds numeric[] default '{0.8,1}'
)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'manage tiers');
    v_id uuid;
begin
    perform tenancy.check_tier_terms(
        v_tenant_id, p_name, p_price, p_currency, p_usage_caps, coalesce(p_soft_caps, '{}'),
        coalesce(p_overage_prices, '{}'), coalesce(p_feature_entitlements, '{}'), p_alert_thresholds
    );
    insert into tenancy.tiers as t (
        tenant_id, name, price, currency, usage_caps, soft_caps, overage_prices, feature_entitlements,
        alert_thresholds
    )
    values (
        v_tenant_id, p_name, p_price, p_currency, p_usage_caps,
        array(select distinct s from unnest(coalesce(p_soft_caps, '{}')) as s order by s),
        coalesce(p_overage_prices, '{}'),
        array(select distinct f from unnest(coalesce(p_feature_entitlements, '{}')) as f order by f),
        array(select distinct a from unnest(p_alert_thresholds) as a order by a)
    )
    on conflict (tenant_id, name) where is_current do nothing
    returning t.id into v_id;
    if v_id is null then
        raise exception using
            errcode = '23505',
            message = format('tier %L already exists in tenant %s', p_name, v_tenant_id),
            hint = 'Change it with tenancy.update_tier.';
    end if;
    return v_id;
end
$$;

comment on function tenancy.create_tier(text, numeric, jsonb, text[], text, text[], jsonb, numeric[]) is
'For owners and admins of the current tenant (and service contexts): creates tier p_name, '
'version 1, with its price and currency, usage caps (meter key to cap: hard unless listed in '
'p_soft_caps), overage prices of soft caps, feature entitlements and alert thresholds (fractions '
'of each cap, default 0.8 and 1); returns its id. TN001 without a context, 42501 for other '
'roles, 22023 for bad terms, 23505 when the tier exists.';

revoke all on function tenancy.create_tier(text, numeric, jsonb, text[], text, text[], jsonb, numeric[]) from public;
grant execute on function tenancy.create_tier(text, numeric, jsonb, text[], text, text[], jsonb, numeric[])
to tenancy_app, tenancy_service;
