-- tenancy.set_outbox_retention: how long an outbox table keeps each day once its deliveries are final.

create or replace function tenancy.set_outbox_retention(p_table text, p_retain interval)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_table is null or p_table <> all('{analytics_events,connector_events,deliveries}'::text[]) then
        raise exception using
            errcode = '22023',
            message = format('outbox table %s is not analytics_events, connector_events or deliveries', coalesce(quote_literal(p_table), 'NULL'));
    end if;
    if p_retain is null or p_retain < interval '1 day' or p_retain > interval '10 years' then
        raise exception using
            errcode = '22023',
            message = format('retention %s of %s is not between 1 day and 10 years', coalesce(p_retain::text, 'NULL'), p_table);
    end if;
    update tenancy.outbox_retention as r set retain = p_retain where r.table_name = p_table;
end
$$;

comment on function tenancy.set_outbox_retention(text, interval) is
'For tenancy_admin: keep each day of outbox table p_table (analytics_events, connector_events or '
'deliveries) for p_retain (1 day to 10 years) after it ends, once none of its deliveries is '
'pending (tenancy.maintain_outbox drops it then). 22023 for another table or retention.';

revoke all on function tenancy.set_outbox_retention(text, interval) from public;
grant execute on function tenancy.set_outbox_retention(text, interval) to tenancy_admin;
