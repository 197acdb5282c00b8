-- tenancy.has_entitlement: whether a customer of the current tenant is entitled to a feature.

create or replace function tenancy.has_entitlement(p_customer text, p_feature text)
returns boolean
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.context_tenant_id(null);
    v_result boolean;
begin
    if v_tenant_id is null then
        v_tenant_id := tenancy.require_usage_role(null, 'check entitlements');
    end if;
    select (p_feature = any(t.feature_entitlements) or p_feature = any(s.extra_entitlements))
        and not p_feature = any(s.revoked_entitlements)
    into v_result
    from tenancy.customers as c
    join tenancy.subscriptions as s on s.tenant_id = c.tenant_id and s.customer_id = c.id
    join tenancy.tiers as t on t.tenant_id = s.tenant_id and t.id = s.tier_id
    where c.tenant_id = v_tenant_id and c.external_id = p_customer;
    return coalesce(v_result, false);
end
$$;

comment on function tenancy.has_entitlement(text, text) is
'For every member role of the current tenant (API keys and service contexts too): true when '
'customer p_customer''s tier version lists feature p_feature or the subscription adds it, and '
'the subscription does not revoke it; false otherwise (unknown customer or feature, no '
'subscription). TN001 without a context.';

revoke all on function tenancy.has_entitlement(text, text) from public;
grant execute on function tenancy.has_entitlement(text, text) to tenancy_app, tenancy_service;
