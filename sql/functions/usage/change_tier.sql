-- tenancy.change_tier: an owner or admin moves a subscribed customer to the current version of a tier.

-- The period anchor is kept: counters of the current period carry over, and the new caps apply
-- to them from the next event (an upgrade mid-period does not reset usage).
create or replace function tenancy.change_tier(p_customer text, p_tier text)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'manage subscriptions');
    v_tier uuid := tenancy.current_tier_version(v_tenant_id, p_tier);  -- P0002
begin
    update tenancy.subscriptions as s
    set tier_id = v_tier, updated_at = now()
    from tenancy.customers as c
    where c.tenant_id = v_tenant_id and c.external_id = p_customer
        and s.tenant_id = v_tenant_id and s.customer_id = c.id;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('customer %L of tenant %s has no subscription', tenancy.token_excerpt(p_customer, 100), v_tenant_id),
            hint = 'Subscribe it first: tenancy.subscribe(customer, tier).';
    end if;
    return v_tier;
end
$$;

comment on function tenancy.change_tier(text, text) is
'For owners and admins of the current tenant (and service contexts): moves customer p_customer '
'to the current version of tier p_tier (the same tier''s latest version, after '
'tenancy.update_tier, or another tier), keeping its period anchor and usage; returns the tier '
'version''s id. TN001, 42501, P0002 for an unknown tier or a customer without a subscription.';

revoke all on function tenancy.change_tier(text, text) from public;
grant execute on function tenancy.change_tier(text, text) to tenancy_app, tenancy_service;
