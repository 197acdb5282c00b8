-- tenancy.forget_personal_data: removes a table from the personal data registry (generated policy files without personal data call it).

create or replace function tenancy.forget_personal_data(p_table regclass)
returns void
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
delete from tenancy.personal_data as d where d.table_name operator (pg_catalog.=) p_table;
$$;

comment on function tenancy.forget_personal_data(regclass) is
'Removes a table from tenancy.personal_data: its rows take no part in subject export and '
'erasure any more. Called by generated policy files of tables without personal data; granted '
'to nobody.';

revoke all on function tenancy.forget_personal_data(regclass) from public;
