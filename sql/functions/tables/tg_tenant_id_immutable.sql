-- tenancy.tg_tenant_id_immutable: row trigger refusing any change of a tenant table's tenant column.

create or replace function tenancy.tg_tenant_id_immutable()
returns trigger
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    -- The tenant column, named by the trigger's argument (tenant_id for triggers created without
    -- one by earlier releases). Read through jsonb: one function serves every column type.
    v_column text := coalesce(tg_argv[0], 'tenant_id');
begin
    -- Attached BEFORE UPDATE OF the column (an UPDATE that sets it) and AFTER UPDATE (the row as
    -- stored, after every BEFORE trigger ran), each WHEN the old value is distinct from the new:
    -- firing at all means the row would move to another tenant.
    raise exception using
        errcode = 'TN006',
        message = format(
            '%s of %I.%I cannot change (from %s to %s)',
            v_column, tg_table_schema, tg_table_name,
            coalesce(to_jsonb(old) ->> v_column, 'NULL'), coalesce(to_jsonb(new) ->> v_column, 'NULL')
        );
end
$$;

comment on function tenancy.tg_tenant_id_immutable() is
'Trigger (BEFORE UPDATE OF the tenant column and AFTER UPDATE, FOR EACH ROW, WHEN the column '
'changes; argument: the column, tenant_id when none is given): TN006, for every role, whatever '
'other triggers did to the row.';

revoke all on function tenancy.tg_tenant_id_immutable() from public;
