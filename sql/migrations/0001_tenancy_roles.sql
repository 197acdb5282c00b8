-- pgtenancy roles: the six cluster-wide roles pgtenancy relies on, and how they relate.
-- migrate: as-migrating-user
-- migrate: replaces 0001_roles 0003_session_roles
-- Runs as the migrating user, who needs CREATEROLE. A role that already exists is checked, not
-- adopted: one with LOGIN, SUPERUSER, BYPASSRLS, CREATEROLE or CREATEDB, or a member of a role
-- that gives more than pgtenancy grants, is refused (42501).

do $roles$
declare
    v_role text;
    v_bad text;
    v_roles text[] := array[
        'tenancy_owner', 'tenancy_app', 'tenancy_service', 'tenancy_admin', 'tenancy_auditor',
        'tenancy_session_objects'
    ];
begin
    foreach v_role in array v_roles loop
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

    -- Memberships that take a role beyond what pgtenancy grants (its members may SET ROLE to
    -- any role it is a member of): another pgtenancy role (tenancy_service in tenancy_app
    -- aside), a role with SUPERUSER, BYPASSRLS or CREATEROLE, a predefined role that reads or
    -- writes every table or the server's files, or the owner of a table with row level security
    -- (exempt from its policies unless forced, and free to drop them).
    select
        pg_catalog.string_agg(
            pg_catalog.format('%I is a member of %I', r.rolname, g.rolname), '; '
            order by r.rolname, g.rolname
        )
    into v_bad
    from pg_catalog.pg_roles as r
    inner join pg_catalog.pg_roles as g
        on
            g.oid operator (pg_catalog.<>) r.oid
            and pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER')
    where
        r.rolname operator (pg_catalog.=) any(v_roles)
        and not r.rolsuper
        and (
            g.rolsuper or g.rolbypassrls or g.rolcreaterole
            or g.rolname operator (pg_catalog.=) any(array[
                'pg_read_all_data', 'pg_write_all_data', 'pg_read_server_files',
                'pg_write_server_files', 'pg_execute_server_program'
            ])
            or exists (
                select from pg_catalog.pg_class as c
                where c.relowner operator (pg_catalog.=) g.oid and c.relrowsecurity
            )
            or (
                g.rolname operator (pg_catalog.=) any(v_roles)
                and not (
                    r.rolname operator (pg_catalog.=) 'tenancy_service'
                    and g.rolname operator (pg_catalog.=) 'tenancy_app'
                )
            )
        );
    if v_bad is not null then
        raise exception using
            errcode = '42501',
            message = pg_catalog.format(
                'pgtenancy does not adopt roles with these memberships: %s', v_bad
            ),
            hint = 'Revoke each membership (or the one it comes through), then migrate again.';
    end if;
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
