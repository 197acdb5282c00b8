-- Row level security of tenancy.security_events: owners and admins read their tenant's events, the auditor all.
-- Written by hand, not generated: the table's tenant_id is NULL for events of no known tenant.
-- Re-applied on every migrate: each policy is dropped first.

drop policy if exists "owners and admins read their tenant's events" on tenancy.security_events;
drop policy if exists "the auditor reads every event" on tenancy.security_events;
drop policy if exists "pgtenancy functions manage every row" on tenancy.security_events;

create policy "owners and admins read their tenant's events" on tenancy.security_events
as permissive
for select
to tenancy_app
using (tenant_id operator (pg_catalog.=) (select tenancy.context_tenant_id(array['owner', 'admin'])));
create policy "the auditor reads every event" on tenancy.security_events
as permissive
for select
to tenancy_auditor
using (true);
create policy "pgtenancy functions manage every row" on tenancy.security_events
as permissive
for all
to tenancy_owner
using (true)
with check (true);
