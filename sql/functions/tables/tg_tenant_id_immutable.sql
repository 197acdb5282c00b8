-- tenancy.tg_tenant_id_immutable: row trigger refusing any change of tenant_id.

create or replace function tenancy.tg_tenant_id_immutable()
returns trigger
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    -- Attached BEFORE UPDATE OF tenant_id (an UPDATE that sets it) and AFTER UPDATE (the row as
    -- stored, after every BEFORE trigger ran), each WHEN old.tenant_id is distinct from
    -- new.tenant_id: firing at all means the row would move to another tenant.
    raise exception using
        errcode = 'TN006',
        message = format(
            'tenant_id of %I.%I cannot change (from %s to %s)',
            tg_table_schema, tg_table_name, old.tenant_id, coalesce(new.tenant_id::text, 'NULL')
        );
end
$$;

comment on function tenancy.tg_tenant_id_immutable() is
'Trigger (BEFORE UPDATE OF tenant_id and AFTER UPDATE, FOR EACH ROW, WHEN tenant_id changes): '
'TN006, for every role, whatever other triggers did to the row.';

revoke all on function tenancy.tg_tenant_id_immutable() from public;
