-- tenancy_test.row_security_forced: one pgTAP assertion that row level security is enabled and forced.

-- pgTAP has no assertion for FORCE ROW LEVEL SECURITY; FORCE without ENABLE does nothing, so both
-- are required.
create or replace function tenancy_test.row_security_forced(p_table regclass, p_description text)
returns text
language plpgsql
stable
set search_path = pg_catalog, public, pg_temp
as $$
begin
    return ok(
        coalesce(
            (
                select c.relrowsecurity and c.relforcerowsecurity from pg_catalog.pg_class as c
                where c.oid = p_table
            ),
            false
        ),
        p_description
    );
end
$$;

comment on function tenancy_test.row_security_forced(regclass, text) is
'pgTAP: ok when row level security is enabled and forced (it applies to the table owner too); '
'one assertion.';
