-- tenancy.update_tier: an owner or admin changes a tier; a tier with subscribers gets a new version instead.

-- The current version is locked FOR UPDATE, which waits for and blocks a tenancy.subscribe or
-- tenancy.change_tier taking it (they lock it FOR KEY SHARE), so whether it has subscribers is
-- decided on committed data: with none, it is changed in place; with some, it is superseded by
-- version n + 1 carrying the new terms, and its subscribers stay on it until tenancy.change_tier
-- moves them. Arguments left NULL keep the current terms.
create or replace function tenancy.update_tier(
    p_name text,
    p_price numeric default null,
    p_usage_caps jsonb default null,
    p_feature_entitlements text[] default null,
    p_currency text default null,
    p_soft_caps text[] default null,
    p_overage_prices jsonb default null,
    p_alert_thresholds numeric[] default null,
    out tier_id uuid, out version integer, out new_version boolean
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'manage tiers');
    v_old tenancy.tiers;
    v_caps jsonb;
    v_soft text[];
    v_overage jsonb;
    v_features text[];
    v_thresholds numeric[];
begin
    select t.* into v_old
    from tenancy.tiers as t
    where t.tenant_id = v_tenant_id and t.name = p_name and t.is_current
    for update;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('tier %L does not exist in tenant %s', tenancy.token_excerpt(p_name, 100), v_tenant_id);
    end if;
    v_caps := coalesce(p_usage_caps, v_old.usage_caps);
    -- soft caps and overage prices of meters no longer capped go with their caps
    v_soft := array(
        select distinct s from unnest(coalesce(p_soft_caps, v_old.soft_caps)) as s
        where p_soft_caps is not null or v_caps ? s
        order by s
    );
    v_overage := coalesce(
        p_overage_prices,
        (select coalesce(jsonb_object_agg(o.key, o.value), '{}') from jsonb_each(v_old.overage_prices) as o where v_caps ? o.key)
    );
    v_features := array(select distinct f from unnest(coalesce(p_feature_entitlements, v_old.feature_entitlements)) as f order by f);
    v_thresholds := array(select distinct a from unnest(coalesce(p_alert_thresholds, v_old.alert_thresholds)) as a order by a);
    perform tenancy.check_tier_terms(
        v_tenant_id, p_name, coalesce(p_price, v_old.price), coalesce(p_currency, v_old.currency), v_caps, v_soft,
        v_overage, v_features, coalesce(p_alert_thresholds, v_old.alert_thresholds)
    );
    if exists (select from tenancy.subscriptions as s where s.tenant_id = v_tenant_id and s.tier_id = v_old.id) then
        update tenancy.tiers as t set is_current = false, superseded_at = now()
        where t.tenant_id = v_tenant_id and t.id = v_old.id;
        insert into tenancy.tiers as t (
            tenant_id, name, version, price, currency, usage_caps, soft_caps, overage_prices,
            feature_entitlements, alert_thresholds
        )
        values (
            v_tenant_id, p_name, v_old.version + 1, coalesce(p_price, v_old.price), coalesce(p_currency, v_old.currency),
            v_caps, v_soft, v_overage, v_features, v_thresholds
        )
        returning t.id, t.version into tier_id, version;
        new_version := true;
    else
        update tenancy.tiers as t
        set price = coalesce(p_price, v_old.price), currency = coalesce(p_currency, v_old.currency),
            usage_caps = v_caps, soft_caps = v_soft, overage_prices = v_overage,
            feature_entitlements = v_features, alert_thresholds = v_thresholds
        where t.tenant_id = v_tenant_id and t.id = v_old.id;
        tier_id := v_old.id;
        version := v_old.version;
        new_version := false;
    end if;
end
$$;

comment on function tenancy.update_tier(text, numeric, jsonb, text[], text, text[], jsonb, numeric[]) is
'For owners and admins of the current tenant (and service contexts): changes the terms of tier '
'p_name (NULL arguments keep them). Without subscribers its current version changes in place; '
'with some, a new version takes the new terms and becomes current, and the subscribers stay on '
'theirs until tenancy.change_tier. Returns the current version''s id and number and whether it '
'is new. TN001, 42501, P0002 for an unknown tier, 22023 for bad terms.';

revoke all on function tenancy.update_tier(text, numeric, jsonb, text[], text, text[], jsonb, numeric[]) from public;
grant execute on function tenancy.update_tier(text, numeric, jsonb, text[], text, text[], jsonb, numeric[])
to tenancy_app, tenancy_service;
