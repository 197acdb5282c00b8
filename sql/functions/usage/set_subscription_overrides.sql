-- tenancy.set_subscription_overrides: an owner or admin sets a customer's own caps and entitlements.

create or replace function tenancy.set_subscription_overrides(
    p_customer text,
    p_cap_overrides jsonb default '{}',
    p_extra_entitlements text[] default '{}',
    p_revoked_entitlements text[] default '{}'
)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'manage subscriptions');
begin
    perform tenancy.check_subscription_overrides(v_tenant_id, p_cap_overrides, p_extra_entitlements, p_revoked_entitlements);
    update tenancy.subscriptions as s
    set cap_overrides = p_cap_overrides,
        extra_entitlements = array(select distinct f from unnest(p_extra_entitlements) as f order by f),
        revoked_entitlements = array(select distinct f from unnest(p_revoked_entitlements) as f order by f),
        updated_at = now()
    from tenancy.customers as c
    where c.tenant_id = v_tenant_id and c.external_id = p_customer
        and s.tenant_id = v_tenant_id and s.customer_id = c.id;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('customer %L of tenant %s has no subscription', tenancy.token_excerpt(p_customer, 100), v_tenant_id);
    end if;
end
$$;

comment on function tenancy.set_subscription_overrides(text, jsonb, text[], text[]) is
'For owners and admins of the current tenant (and service contexts): replaces customer '
'p_customer''s own cap overrides (meter key to cap, JSON null for none) and extra and revoked '
'entitlements. TN001, 42501, P0002 without a subscription, 22023 for a bad value.';

revoke all on function tenancy.set_subscription_overrides(text, jsonb, text[], text[]) from public;
grant execute on function tenancy.set_subscription_overrides(text, jsonb, text[], text[]) to tenancy_app, tenancy_service;
