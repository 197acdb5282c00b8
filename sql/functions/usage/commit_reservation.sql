-- tenancy.commit_reservation: turn a live hold into recorded usage (up to the amount held).

create or replace function tenancy.commit_reservation(
    p_reservation_id uuid,
    p_value numeric default null,
    p_properties jsonb default '{}',
    out outcome text,
    out event_id bigint,
    out used numeric,
    out cap numeric,
    out remaining numeric,
    out period_start timestamptz,
    out period_end timestamptz
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin', 'member'], 'commit reservations');
    v_hold tenancy.usage_reservations := tenancy.settle_reservation(v_tenant_id, p_reservation_id, 'committed');
    v_meter tenancy.meters;
    v_customer text;
begin
    if p_value is not null and (p_value < 0 or p_value > v_hold.amount or p_value = 'NaN') then
        raise exception using
            errcode = '22023',
            message = format('invalid committed value %s for reservation %s: from 0 to the %s held', p_value, p_reservation_id, v_hold.amount);
    end if;
    select m.* into strict v_meter from tenancy.meters as m where m.tenant_id = v_tenant_id and m.id = v_hold.meter_id;
    select c.external_id into strict v_customer
    from tenancy.customers as c where c.tenant_id = v_tenant_id and c.id = v_hold.customer_id;
    update tenancy.usage_reservations as r set committed_value = coalesce(p_value, v_hold.amount)
    where r.tenant_id = v_tenant_id and r.id = p_reservation_id;
    -- The usage counts when the hold was taken, in the hold's period: committed after the period
    -- ended, it would otherwise land in the next one, on top of that period's full cap.
    select r.outcome, r.event_id, r.used, r.cap, r.remaining, r.period_start, r.period_end
    into outcome, event_id, used, cap, remaining, period_start, period_end
    from tenancy.record_usage(
        v_tenant_id, v_meter, v_customer, coalesce(p_value, v_hold.amount), p_properties, null, v_hold.created_at,
        false, p_reservation_id
    ) as r;
end
$$;

comment on function tenancy.commit_reservation(uuid, numeric, jsonb) is
'For owners, admins and members of the current tenant (API keys and service contexts too): '
'settles live hold p_reservation_id, recording p_value (default: the amount held; at most that) '
'as usage at the time the hold was taken, in its period, with its properties; the hold no '
'longer counts. Returns the event''s outcome and counter like tenancy.track_usage. TN001, 42501, '
'P0002 for an unknown hold, TN020 for one no longer held (committed, released or expired), 22023 '
'for a bad value.';

revoke all on function tenancy.commit_reservation(uuid, numeric, jsonb) from public;
grant execute on function tenancy.commit_reservation(uuid, numeric, jsonb) to tenancy_app, tenancy_service;
