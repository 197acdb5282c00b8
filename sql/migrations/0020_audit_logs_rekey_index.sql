-- pgtenancy audit trail: a partial index of the UPDATEs that changed a row's primary key.
-- migrate: as-migrating-user
-- Runs as the migrating user, a member of tenancy_audit_owner, which owns the trail.
-- An UPDATE that changes a primary key is recorded under the new key (entity_id); the old key
-- is only in old_data. tenancy.record_at, tenancy.record_history and tenancy.table_at look for
-- such UPDATEs to end the old key; without this index each call reads every audit row of the
-- table's tenant. The predicate holds for those UPDATEs alone (old_data does not contain the
-- new key), so the index stays small; the CASE keeps application events, whose entity_id need
-- not be JSON, from being parsed. Queries repeat the predicate word for word to use it.

set local role tenancy_audit_owner;

create index audit_logs_rekey_idx on tenancy.audit_logs (tenant_id, entity_type, id)
where case
    when action operator (pg_catalog.=) 'UPDATE' and schema_name is not null
        then not old_data operator (pg_catalog.@>) entity_id::pg_catalog.jsonb
end;

comment on index tenancy.audit_logs_rekey_idx is
'UPDATEs that changed a row''s primary key (old_data does not contain the new key), for the '
'point-in-time functions.';

reset role;
