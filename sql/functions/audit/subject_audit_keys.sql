-- tenancy.subject_audit_keys: the keys of a table's rows whose audit rows name a subject in its subject column, deleted rows included.
-- migrate: as-role tenancy_audit_owner

-- A row deleted before an erasure request is gone from its table, but its audit rows still
-- hold its personal values: for a table whose subject column holds the subject id itself
-- (tenancy.personal_data.subject_direct), its DELETE audit row names the subject in old_data
-- (index audit_logs_deletes_idx: the predicate is repeated word for word). Rows that exist are
-- found in their table. For tenancy_owner only: tenancy.record_erasure redacts these keys'
-- audit rows.
create or replace function tenancy.subject_audit_keys(
    p_tenant_id uuid, p_entity text, p_subject_column text, p_subject text
)
returns text[]
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
select coalesce(array_agg(distinct l.entity_id order by l.entity_id), '{}')
from tenancy.audit_logs as l
where
    l.tenant_id = p_tenant_id
    and l.entity_type = p_entity
    and l.action = 'DELETE' and l.schema_name is not null
    and l.entity_id is not null
    and l.old_data ->> p_subject_column = p_subject
$$;

comment on function tenancy.subject_audit_keys(uuid, text, text, text) is
'The primary keys (audit entity_id) of the rows of entity type p_entity in tenant p_tenant_id''s '
'audit trail that were deleted holding p_subject in column p_subject_column: a subject''s rows '
'deleted before an erasure. For tenancy_owner: tenancy.record_erasure redacts their audit rows.';

revoke all on function tenancy.subject_audit_keys(uuid, text, text, text) from public;
grant execute on function tenancy.subject_audit_keys(uuid, text, text, text) to tenancy_owner;
