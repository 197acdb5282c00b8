-- pgtenancy: the role whose members may set a tenant context in a session holding temporary objects.
-- Runs as the migrating user (it creates a role, which tenancy_owner may not).

do $roles$
begin
    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'tenancy_session_objects') then
        create role tenancy_session_objects nologin nosuperuser nocreatedb nocreaterole nobypassrls;
    end if;
end
$roles$;

comment on role tenancy_session_objects is
'pgtenancy: logins granted this role may call tenancy.authenticate() and tenancy.set_context() in '
'a session that holds temporary objects or open holdable cursors (refused otherwise, TN008).';
