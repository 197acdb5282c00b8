-- tenancy.replay: deliver an event of the current tenant again, to every destination it had.

create or replace function tenancy.replay(p_event_id uuid)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'replay events');
    v_count integer;
begin
    update tenancy.deliveries as d
    set attempts = 0, next_attempt_at = now(), lease_until = null, leased_by = null,
        last_error = null, delivered_at = null, dead_at = null
    where d.tenant_id = v_tenant_id and d.event_id = p_event_id
        and (d.lease_until is null or d.lease_until < now() or d.delivered_at is not null or d.dead_at is not null);
    get diagnostics v_count = row_count;
    if v_count = 0 and not exists (
        select from tenancy.deliveries as d where d.tenant_id = v_tenant_id and d.event_id = p_event_id
    ) then
        raise exception using
            errcode = 'P0002',
            message = format('event %s has no delivery in tenant %s', coalesce(p_event_id::text, 'NULL'), v_tenant_id),
            hint = 'Events are kept for their table''s retention (tenancy.outbox_retention).';
    end if;
    return v_count;
end
$$;

comment on function tenancy.replay(uuid) is
'For owners and admins of the current tenant: queues event p_event_id again for each of its '
'destinations (delivered or dead-lettered ones included; one in flight is left to its relay), with '
'a fresh attempt schedule; the same event id goes out, so receivers can drop a copy they have. '
'Returns the deliveries queued. P0002 when the tenant has no such event; TN001, 42501.';

revoke all on function tenancy.replay(uuid) from public;
grant execute on function tenancy.replay(uuid) to tenancy_app, tenancy_service, tenancy_admin;
