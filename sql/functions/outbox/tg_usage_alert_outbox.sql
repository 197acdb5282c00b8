-- tenancy.tg_usage_alert_outbox: each usage alert becomes the connector event usage.alert, for the tenant's webhooks.

create or replace function tenancy.tg_usage_alert_outbox()
returns trigger
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_alert record;
begin
    for v_alert in
        select n.tenant_id, c.external_id, m.key, n.threshold, n.used, n.cap, n.period_start, n.created_at
        from new_alerts as n
        inner join tenancy.customers as c on c.tenant_id = n.tenant_id and c.id = n.customer_id
        inner join tenancy.meters as m on m.tenant_id = n.tenant_id and m.id = n.meter_id
        order by n.tenant_id, c.external_id, m.key, n.threshold
    loop
        perform tenancy.enqueue_connector_event(
            v_alert.tenant_id, 'usage', 'alert',
            jsonb_build_object(
                'customer', v_alert.external_id, 'meter', v_alert.key, 'threshold', v_alert.threshold,
                'used', v_alert.used, 'cap', v_alert.cap, 'period_start', v_alert.period_start
            ),
            'usage:' || v_alert.external_id, null
        );
    end loop;
    return null;
end
$$;

comment on function tenancy.tg_usage_alert_outbox() is
'pgtenancy internal: statement trigger on tenancy.usage_alerts: each new alert is enqueued as '
'connector event usage.alert {customer, meter, threshold, used, cap, period_start}, ordered per customer.';

revoke all on function tenancy.tg_usage_alert_outbox() from public;

drop trigger if exists tenancy_usage_alert_outbox on tenancy.usage_alerts;
create trigger tenancy_usage_alert_outbox
after insert on tenancy.usage_alerts
referencing new table as new_alerts
for each statement
execute function tenancy.tg_usage_alert_outbox();
comment on trigger tenancy_usage_alert_outbox on tenancy.usage_alerts is
'Enqueues each new usage alert as connector event usage.alert (tenancy.tg_usage_alert_outbox).';
