-- tenancy.sweep_usage_holds: expire a counter's overdue holds and recount what the live ones hold.

-- Lock order, everywhere holds are touched: the counter row first, then reservation rows (a
-- counter's statement, then this; tenancy.commit_reservation and tenancy.release_reservation
-- lock the counter before the hold), so two of them never wait on each other in a cycle.
create or replace function tenancy.sweep_usage_holds(
    p_tenant_id uuid, p_customer_id uuid, p_meter_id uuid, p_period_start timestamptz
)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    perform from tenancy.usage_counters as c
    where c.tenant_id = p_tenant_id and c.customer_id = p_customer_id and c.meter_id = p_meter_id
        and c.period_start = p_period_start
    for update;
    update tenancy.usage_reservations as r
    set state = 'expired', settled_at = now()
    where r.tenant_id = p_tenant_id and r.customer_id = p_customer_id and r.meter_id = p_meter_id
        and r.period_start = p_period_start and r.state = 'held' and r.expires_at <= now();
    update tenancy.usage_counters as c
    set reserved = coalesce(h.amount, 0), holds_expire_at = h.expires_at
    from (
        select sum(r.amount) as amount, min(r.expires_at) as expires_at
        from tenancy.usage_reservations as r
        where r.tenant_id = p_tenant_id and r.customer_id = p_customer_id and r.meter_id = p_meter_id
            and r.period_start = p_period_start and r.state = 'held'
    ) as h
    where c.tenant_id = p_tenant_id and c.customer_id = p_customer_id and c.meter_id = p_meter_id
        and c.period_start = p_period_start;
end
$$;

comment on function tenancy.sweep_usage_holds(uuid, uuid, uuid, timestamptz) is
'pgtenancy internal: marks the expired holds of one counter (customer, meter, period) expired '
'and sets its reserved amount and earliest expiry from the holds still live.';

revoke all on function tenancy.sweep_usage_holds(uuid, uuid, uuid, timestamptz) from public;
