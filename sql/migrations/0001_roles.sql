-- pgtenancy bootstrap: the five roles, the tenancy schema owned by tenancy_owner, pgcrypto.
-- Runs as the migrating user, who needs CREATEROLE and CREATE on the database.

do $roles$
declare
    v_role text;
begin
    foreach v_role in array array[
        'tenancy_owner', 'tenancy_app', 'tenancy_service', 'tenancy_admin', 'tenancy_auditor'
    ] loop
        if not exists (select 1 from pg_catalog.pg_roles where rolname = v_role) then
            execute pg_catalog.format(
                'create role %I nologin nosuperuser nocreatedb nocreaterole nobypassrls',
                v_role
            );
        end if;
    end loop;
end
$roles$;

-- Trusted backends may do anything an application may do.
grant tenancy_app to tenancy_service;

-- The migrating user acts as tenancy_owner for every later step.
grant tenancy_owner to current_user;

comment on role tenancy_owner is
'pgtenancy: owns every pgtenancy object; NOLOGIN, never superuser, no BYPASSRLS.';
comment on role tenancy_app is
'pgtenancy: application runtime; sees one tenant after tenancy.authenticate().';
comment on role tenancy_service is
'pgtenancy: trusted backend jobs; may call tenancy.set_context() and create tenants.';
comment on role tenancy_admin is
'pgtenancy: platform operators; tenant lifecycle and JWT configuration.';
comment on role tenancy_auditor is
'pgtenancy: read-only access to platform records across tenants.';

create extension if not exists pgcrypto;

-- No IF NOT EXISTS: a schema someone else created beforehand must not be silently adopted.
create schema tenancy authorization tenancy_owner;
comment on schema tenancy is 'pgtenancy: tenants, memberships, tenant context and their functions.';

revoke all on schema tenancy from public;
grant usage on schema tenancy to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;

-- Nothing pgtenancy creates is executable by PUBLIC unless granted explicitly.
alter default privileges for role tenancy_owner revoke execute on functions from public;
alter default privileges for role tenancy_owner in schema tenancy
revoke execute on functions from public;
