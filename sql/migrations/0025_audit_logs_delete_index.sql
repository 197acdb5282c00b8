-- pgtenancy audit trail: a partial index of the DELETEs of table rows, for subject export and erasure.
-- migrate: as-migrating-user
-- Runs as the migrating user, a member of tenancy_audit_owner, which owns the trail.
-- A data subject's rows deleted before an export or erasure request are gone from their table;
-- their audit rows are found from their DELETE (old_data names the subject). Without this index
-- each export or erasure reads every audit row of the table's tenant (1.5 s and 5 s for a tenant
-- with a million audit rows: docs/benchmarks.md). DELETEs are few, so the index stays small.
-- Queries repeat the predicate word for word to use it.

set local role tenancy_audit_owner;

create index audit_logs_deletes_idx on tenancy.audit_logs (tenant_id, entity_type, id)
where action operator (pg_catalog.=) 'DELETE' and schema_name is not null;

comment on index tenancy.audit_logs_deletes_idx is
'DELETEs of table rows (not application events), for tenancy.export_subject and '
'tenancy.subject_audit_keys: the subject''s rows deleted earlier.';

reset role;
