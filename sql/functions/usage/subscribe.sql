-- tenancy.subscribe: an owner or admin puts a customer on the current version of a tier.

create or replace function tenancy.subscribe(
    p_customer text,
    p_tier text,
    p_started_at timestamptz default null,
    p_cap_overrides jsonb default '{}',
    p_extra_entitlements text[] default '{}',
    p_revoked_entitlements text[] default '{}'
)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'manage subscriptions');
    v_customer uuid;
    v_tier uuid := tenancy.current_tier_version(v_tenant_id, p_tier);  -- P0002
    v_start timestamptz := coalesce(p_started_at, now());
begin
    if v_start > now() + interval '1 year' or v_start < now() - interval '10 years' then
        raise exception using
            errcode = '22023',
            message = format('subscription start %s is not within 10 years before and 1 year after now', v_start);
    end if;
    perform tenancy.check_subscription_overrides(v_tenant_id, p_cap_overrides, p_extra_entitlements, p_revoked_entitlements);
    v_customer := tenancy.usage_customer_id(v_tenant_id, p_customer);
    insert into tenancy.subscriptions (
        tenant_id, customer_id, tier_id, started_at, period_anchor, cap_overrides, extra_entitlements,
        revoked_entitlements
    )
    values (
        v_tenant_id, v_customer, v_tier, v_start, v_start, p_cap_overrides,
        array(select distinct f from unnest(p_extra_entitlements) as f order by f),
        array(select distinct f from unnest(p_revoked_entitlements) as f order by f)
    )
    on conflict (tenant_id, customer_id) do nothing;
    if not found then
        raise exception using
            errcode = '23505',
            message = format('customer %L of tenant %s already has a subscription', p_customer, v_tenant_id),
            hint = 'Move it with tenancy.change_tier.';
    end if;
    return v_tier;
end
$$;

comment on function tenancy.subscribe(text, text, timestamptz, jsonb, text[], text[]) is
'For owners and admins of the current tenant (and service contexts): subscribes customer '
'p_customer (created when new) to the current version of tier p_tier from p_started_at (default '
'now), which anchors its usage periods, with its own cap overrides (meter key to cap, or JSON '
'null for no cap) and extra or revoked entitlements; returns the tier version''s id. TN001, '
'42501, P0002 for an unknown tier, 22023 for a bad value, 23505 when the customer has a '
'subscription (tenancy.change_tier).';

revoke all on function tenancy.subscribe(text, text, timestamptz, jsonb, text[], text[]) from public;
grant execute on function tenancy.subscribe(text, text, timestamptz, jsonb, text[], text[]) to tenancy_app, tenancy_service;
