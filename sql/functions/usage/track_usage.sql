-- tenancy.track_usage: record one usage event of a customer of the current tenant, optionally refused at a hard cap.

create or replace function tenancy.track_usage(
    p_meter text,
    p_customer text,
    p_value numeric default 1,
    p_properties jsonb default '{}',
    p_idempotency_key text default null,
    p_occurred_at timestamptz default null,
    p_enforce boolean default false,
    out outcome text,
    out event_id bigint,
    out used numeric,
    out cap numeric,
    out remaining numeric,
    out period_start timestamptz,
    out period_end timestamptz,
    out first_outcome text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    v_tenant_id uuid := tenancy.context_tenant_id(array['owner', 'admin', 'member']);
    v_meter tenancy.meters;
begin
    if v_tenant_id is null then
        v_tenant_id := tenancy.require_usage_role(array['owner', 'admin', 'member'], 'track usage');
    end if;
    select m.* into v_meter from tenancy.meters as m where m.tenant_id = v_tenant_id and m.key = p_meter;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('meter %L does not exist in tenant %s', tenancy.token_excerpt(p_meter, 100), v_tenant_id),
            hint = 'Create it with tenancy.create_meter.';
    end if;
    select r.* into outcome, event_id, used, cap, remaining, period_start, period_end, first_outcome
    from tenancy.record_usage(
        v_tenant_id, v_meter, p_customer, p_value, p_properties, p_idempotency_key, p_occurred_at,
        coalesce(p_enforce, false)
    ) as r;
end
$$;

comment on function tenancy.track_usage(text, text, numeric, jsonb, text, timestamptz, boolean) is
'For owners, admins and members of the current tenant (users or API keys) and service contexts: '
'records usage p_value of meter p_meter by customer p_customer (created on first use) at '
'p_occurred_at (default now; up to the meter''s backdating grace, 24 hours by default, in the '
'past and 5 minutes ahead, else TN018), counted in the period it belongs to. With p_enforce a '
'hard cap is checked and counted in one statement: concurrent calls never exceed it. Returns '
'outcome recorded, refused (at the cap; nothing counted) or duplicate (p_idempotency_key was '
'used before by this customer: first_outcome is what happened then, nothing is counted), the '
'event id, the counter after it (used, cap, remaining) and the period. TN001, 42501 (viewers), '
'P0002 for an unknown meter, 22023 for a bad value, TN019 for a key reused for another event.';

revoke all on function tenancy.track_usage(text, text, numeric, jsonb, text, timestamptz, boolean) from public;
grant execute on function tenancy.track_usage(text, text, numeric, jsonb, text, timestamptz, boolean)
to tenancy_app, tenancy_service;
