-- pgtenancy roles: the six cluster-wide roles pgtenancy relies on, and how they relate.
-- migrate: as-migrating-user
-- migrate: replaces 0001_roles 0003_session_roles
-- Runs as the migrating user, who needs CREATEROLE. A role that already exists is checked, not
-- adopted: one with LOGIN, SUPERUSER, BYPASSRLS, CREATEROLE or CREATEDB is refused (42501).

do $roles$
declare
    v_role text;
    v_bad text;
begin
    foreach v_role in array array[
        'tenancy_owner', 'tenancy_app', 'tenancy_service', 'tenancy_admin', 'tenancy_auditor',
        'tenancy_session_objects'
    ] loop
        select
            pg_catalog.concat_ws(
                ', ',
                case when r.rolcanlogin then 'LOGIN' end,
                case when r.rolsuper then 'SUPERUSER' end,
                case when r.rolbypassrls then 'BYPASSRLS' end,
                case when r.rolcreaterole then 'CREATEROLE' end,
                case when r.rolcreatedb then 'CREATEDB' end
            )
        into v_bad
        from pg_catalog.pg_roles as r
        where r.rolname operator (pg_catalog.=) v_role;
        if not found then
            execute pg_catalog.format(
                'create role %I nologin nosuperuser nocreatedb nocreaterole nobypassrls', v_role
            );
        elsif v_bad operator (pg_catalog.<>) '' then
            raise exception using
                errcode = '42501',
                message = pg_catalog.format(
                    'role %I already exists with %s; pgtenancy does not adopt it', v_role, v_bad
                ),
                hint = pg_catalog.format(
                    'Run: alter role %I nologin nosuperuser nobypassrls nocreaterole nocreatedb; '
                    'or drop it.',
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
comment on role tenancy_session_objects is
'pgtenancy: logins granted this role may call tenancy.authenticate() and tenancy.set_context() in '
'a session that holds temporary objects or open holdable cursors (refused otherwise, TN008).';
