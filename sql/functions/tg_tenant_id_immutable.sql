-- tenancy.tg_tenant_id_immutable: row trigger refusing any change of tenant_id.

create or replace function tenancy.tg_tenant_id_immutable()
returns trigger
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    raise exception using
        errcode = 'TN006',
        message = format(
            'tenant_id of %I.%I cannot change (from %s to %s)',
            tg_table_schema, tg_table_name, old.tenant_id, coalesce(new.tenant_id::text, 'NULL')
        );
end
$$;

comment on function tenancy.tg_tenant_id_immutable() is
'Trigger (BEFORE UPDATE OF tenant_id, FOR EACH ROW, WHEN it changes): TN006, for every role.';

revoke all on function tenancy.tg_tenant_id_immutable() from public;
