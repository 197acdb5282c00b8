-- tenancy.tg_audit_immutable: the audit trail's guard: no row is updated, deleted or truncated.
-- migrate: as-role tenancy_audit_owner

-- Privileges come first: no pgtenancy role but tenancy_audit_owner (the owner, NOLOGIN) holds
-- UPDATE, DELETE or TRUNCATE on tenancy.audit_logs. These triggers refuse the same to the owner
-- and to superusers, ENABLE ALWAYS so session_replication_role = replica does not skip them. The
-- one exception is redaction (tenancy.redact_audit, run as tenancy_audit_owner, which marks its
-- transaction): it may replace the body of a row and keep its header.
create or replace function tenancy.tg_audit_immutable()
returns trigger
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    if tg_op = 'UPDATE'
        and current_user = 'tenancy_audit_owner'
        and current_setting('tenancy.audit_redacting', true) = pg_current_xact_id()::text
        and (new.id, new.tenant_id, new.logged_at, new.statement_at, new.txid, new.action, new.entity_type,
             new.schema_name, new.table_name)
            is not distinct from
            (old.id, old.tenant_id, old.logged_at, old.statement_at, old.txid, old.action, old.entity_type,
             old.schema_name, old.table_name)
        and new.body_digest is not null
        and (old.body_digest is null or new.body_digest = old.body_digest)
        and new.redacted_at is not null then
        return new;
    end if;
    raise exception using
        errcode = 'TN016',
        message = format('the audit trail is immutable: %s on %I.%I is refused', tg_op, tg_table_schema, tg_table_name),
        hint = 'Partitions older than the retention period are dropped with tenancy.drop_audit_before.';
end
$$;

comment on function tenancy.tg_audit_immutable() is
'Trigger of tenancy.audit_logs and its partitions (BEFORE UPDATE OR DELETE per row, BEFORE '
'TRUNCATE per statement, ENABLE ALWAYS): refuses every change of the audit trail (TN016), but '
'the redaction of a row''s body by tenancy.redact_audit.';

revoke all on function tenancy.tg_audit_immutable() from public;

create or replace trigger tenancy_audit_immutable
before update or delete on tenancy.audit_logs
for each row execute function tenancy.tg_audit_immutable();
alter table tenancy.audit_logs enable always trigger tenancy_audit_immutable;
comment on trigger tenancy_audit_immutable on tenancy.audit_logs is
'Refuses (TN016) UPDATE and DELETE of audit rows, superusers'' too; redaction aside.';

-- TRUNCATE triggers fire only on the table named: the root and every partition get one.
do $truncate$
declare
    v_table pg_catalog.regclass;
begin
    for v_table in
        select 'tenancy.audit_logs'::pg_catalog.regclass
        union all
        select i.inhrelid::pg_catalog.regclass from pg_catalog.pg_inherits as i
        where i.inhparent operator (pg_catalog.=) 'tenancy.audit_logs'::pg_catalog.regclass
    loop
        execute pg_catalog.format(
            'create or replace trigger tenancy_audit_no_truncate before truncate on %s '
            'for each statement execute function tenancy.tg_audit_immutable()', v_table
        );
        execute pg_catalog.format('alter table %s enable always trigger tenancy_audit_no_truncate', v_table);
        execute pg_catalog.format(
            'comment on trigger tenancy_audit_no_truncate on %s is %L', v_table,
            'Refuses (TN016) TRUNCATE of the audit trail, superusers'' too.'
        );
    end loop;
end
$truncate$;
