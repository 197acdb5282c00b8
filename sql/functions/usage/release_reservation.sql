-- tenancy.release_reservation: give back a live hold unused.

create or replace function tenancy.release_reservation(p_reservation_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin', 'member'], 'release reservations');
begin
    perform tenancy.settle_reservation(v_tenant_id, p_reservation_id, 'released');
end
$$;

comment on function tenancy.release_reservation(uuid) is
'For owners, admins and members of the current tenant (API keys and service contexts too): '
'releases live hold p_reservation_id; its amount no longer counts. TN001, 42501, P0002 for an '
'unknown hold, TN020 for one no longer held (committed, released or expired).';

revoke all on function tenancy.release_reservation(uuid) from public;
grant execute on function tenancy.release_reservation(uuid) to tenancy_app, tenancy_service;
