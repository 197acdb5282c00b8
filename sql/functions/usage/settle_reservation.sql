-- tenancy.settle_reservation: lock a live hold of the current tenant and take it off its counter (committed or released).

-- The counter row is locked before the hold (the lock order of tenancy.sweep_usage_holds). A hold
-- that is not live, committed, released or expired (by the clock, swept or not), raises TN020.
create or replace function tenancy.settle_reservation(
    p_tenant_id uuid, p_reservation_id uuid, p_state text
)
returns tenancy.usage_reservations
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_hold tenancy.usage_reservations;
begin
    select r.* into v_hold
    from tenancy.usage_reservations as r
    where r.tenant_id = p_tenant_id and r.id = p_reservation_id;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('reservation %s does not exist in tenant %s', coalesce(p_reservation_id::text, 'NULL'), p_tenant_id);
    end if;
    perform from tenancy.usage_counters as c
    where c.tenant_id = p_tenant_id and c.customer_id = v_hold.customer_id and c.meter_id = v_hold.meter_id
        and c.period_start = v_hold.period_start
    for update;
    select r.* into v_hold
    from tenancy.usage_reservations as r
    where r.tenant_id = p_tenant_id and r.id = p_reservation_id
    for update;
    if v_hold.state <> 'held' or v_hold.expires_at <= now() then
        raise exception using
            errcode = 'TN020',
            message = format(
                'reservation %s is no longer held: %s at %s', p_reservation_id,
                case when v_hold.state = 'held' then 'expired' else v_hold.state end,
                coalesce(v_hold.settled_at, v_hold.expires_at)
            );
    end if;
    update tenancy.usage_reservations as r
    set state = p_state, settled_at = now()
    where r.tenant_id = p_tenant_id and r.id = p_reservation_id;
    update tenancy.usage_counters as c
    set reserved = greatest(c.reserved - v_hold.amount, 0), updated_at = now()
    where c.tenant_id = p_tenant_id and c.customer_id = v_hold.customer_id and c.meter_id = v_hold.meter_id
        and c.period_start = v_hold.period_start;
    return v_hold;
end
$$;

comment on function tenancy.settle_reservation(uuid, uuid, text) is
'pgtenancy internal: marks live hold p_reservation_id of tenant p_tenant_id p_state (committed or '
'released) and takes its amount off its counter; P0002 when unknown, TN020 when no longer held.';

revoke all on function tenancy.settle_reservation(uuid, uuid, text) from public;
