-- tenancy.tg_audit_truncate: statement trigger refusing TRUNCATE of an audited table, which no row trigger could record.

-- TRUNCATE removes every tenant's rows without row events and without transition tables, so the
-- trail could not say which rows went. It is refused (TN015) for every role, superusers too, and
-- under session_replication_role = replica (ENABLE ALWAYS): DELETE is recorded row by row. A table
-- owner who must empty a table without a trace disables the trigger on purpose, which is DDL.
create or replace function tenancy.tg_audit_truncate()
returns trigger
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    raise exception using
        errcode = 'TN015',
        message = format('TRUNCATE of audited table %I.%I is refused: the audit trail could not record its rows', tg_table_schema, tg_table_name),
        hint = format(
            'DELETE FROM %I.%I records every row. To empty it unrecorded, its owner runs ALTER TABLE %I.%I '
            'DISABLE TRIGGER tenancy_audit_truncate first.',
            tg_table_schema, tg_table_name, tg_table_schema, tg_table_name
        );
end
$$;

comment on function tenancy.tg_audit_truncate() is
'Trigger (BEFORE TRUNCATE, FOR EACH STATEMENT, ENABLE ALWAYS) of every audited table: refuses '
'TRUNCATE (TN015), which the audit trail could not record row by row; DELETE is recorded.';

revoke all on function tenancy.tg_audit_truncate() from public;
