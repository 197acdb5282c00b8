-- tenancy.audit_logs policies: who reads and writes the audit trail under row level security.
-- migrate: as-role tenancy_audit_owner
-- noqa: disable=RF05

-- Row level security is forced: the owner, tenancy_audit_owner, reads and redacts every row
-- through its own policy (its sealing, verification and redaction functions). Everyone else holds
-- at most SELECT (tenancy_app, tenancy_auditor) or INSERT (tenancy_owner, whose trigger and log
-- functions write rows) and sees through these.
drop policy if exists "owners and admins read their tenant's trail" on tenancy.audit_logs;
create policy "owners and admins read their tenant's trail" on tenancy.audit_logs
as permissive for select to public
using (tenant_id operator (pg_catalog.=) (select tenancy.context_tenant_id(array['owner', 'admin'])));
comment on policy "owners and admins read their tenant's trail" on tenancy.audit_logs is
'Owners and admins of the current tenant (and service contexts) read its audit rows.';

drop policy if exists "auditors read every tenant's trail" on tenancy.audit_logs;
create policy "auditors read every tenant's trail" on tenancy.audit_logs
as permissive for select to tenancy_auditor
using (true);
comment on policy "auditors read every tenant's trail" on tenancy.audit_logs is
'tenancy_auditor reads every tenant''s audit rows.';

drop policy if exists "pgtenancy functions write the trail" on tenancy.audit_logs;
create policy "pgtenancy functions write the trail" on tenancy.audit_logs
as permissive for insert to tenancy_owner
with check (true);
comment on policy "pgtenancy functions write the trail" on tenancy.audit_logs is
'tenancy_owner, which acts only through pgtenancy''s trigger and log functions, inserts rows.';

drop policy if exists "the trail's owner reads and redacts every row" on tenancy.audit_logs;
create policy "the trail's owner reads and redacts every row" on tenancy.audit_logs
as permissive for all to tenancy_audit_owner
using (true)
with check (true);
comment on policy "the trail's owner reads and redacts every row" on tenancy.audit_logs is
'tenancy_audit_owner, which acts only through pgtenancy''s sealing, verification, retention and '
'redaction functions, reads every row (and redacts, which the immutability trigger narrows).';
