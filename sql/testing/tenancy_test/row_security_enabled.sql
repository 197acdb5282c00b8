-- tenancy_test.row_security_enabled: one pgTAP assertion that row level security is enabled on a table.

create or replace function tenancy_test.row_security_enabled(p_table regclass, p_description text)
returns text
language plpgsql
stable
set search_path = pg_catalog, public, pg_temp
as $$
begin
    return ok(
        coalesce(
            (select c.relrowsecurity from pg_catalog.pg_class as c where c.oid = p_table), false
        ),
        p_description
    );
end
$$;

comment on function tenancy_test.row_security_enabled(regclass, text) is
'pgTAP: ok when row level security is enabled on the table (ALTER TABLE ... ENABLE ROW LEVEL '
'SECURITY); one assertion.';
