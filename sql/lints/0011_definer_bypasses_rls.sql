-- pgtenancy lint 0011 (ERROR): a SECURITY DEFINER function outside schema tenancy that the
-- application (tenancy_app or tenancy_service) may call and whose owner is a superuser or has
-- BYPASSRLS: it runs with its owner's rights, for which row level security does not exist, so
-- whatever it reads or writes it does across every tenant. (pgtenancy's own functions are
-- lints 0002 and 0003: nothing in schema tenancy is executable by PUBLIC, and every SECURITY
-- DEFINER function there pins its search_path; tenancy_owner has neither SUPERUSER nor
-- BYPASSRLS.) Functions of extensions are left to their extension.

create or replace view tenancy.lint_0011_definer_bypasses_rls as
select
    '0011'::pg_catalog.text as code,
    'definer_bypasses_rls'::pg_catalog.text as name,
    'ERROR'::pg_catalog.text as level,
    p.oid::pg_catalog.regprocedure::pg_catalog.text as object,
    pg_catalog.format(
        'SECURITY DEFINER function %s runs as %s, %s, and %s may call it: whatever it reads or '
        'writes, it does across every tenant',
        p.oid::pg_catalog.regprocedure, p.proowner::pg_catalog.regrole,
        case when o.rolsuper then 'a superuser' else 'which has BYPASSRLS' end,
        case
            when pg_catalog.has_function_privilege('tenancy_app', p.oid, 'EXECUTE') then 'tenancy_app'
            else 'tenancy_service'
        end
    ) as detail,
    pg_catalog.format(
        'alter function %1$s owner to <a role subject to row level security>; or alter function '
        '%1$s security invoker; or revoke execute on function %1$s from public, tenancy_app, '
        'tenancy_service;',
        p.oid::pg_catalog.regprocedure
    ) as remediation
from pg_catalog.pg_proc as p
inner join pg_catalog.pg_roles as o on o.oid operator (pg_catalog.=) p.proowner
where
    p.prosecdef
    and (o.rolsuper or o.rolbypassrls)
    and not p.pronamespace operator (pg_catalog.=) any(array[
        pg_catalog.to_regnamespace('tenancy')::pg_catalog.oid,
        pg_catalog.to_regnamespace('pg_catalog')::pg_catalog.oid,
        pg_catalog.to_regnamespace('information_schema')::pg_catalog.oid
    ])
    and not exists (
        select from pg_catalog.pg_depend as d
        where
            d.classid operator (pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
            and d.objid operator (pg_catalog.=) p.oid
            and d.deptype operator (pg_catalog.=) 'e'
    )
    and (
        (
            pg_catalog.has_function_privilege('tenancy_app', p.oid, 'EXECUTE')
            and pg_catalog.has_schema_privilege('tenancy_app', p.pronamespace, 'USAGE')
        )
        or (
            pg_catalog.has_function_privilege('tenancy_service', p.oid, 'EXECUTE')
            and pg_catalog.has_schema_privilege('tenancy_service', p.pronamespace, 'USAGE')
        )
    );

comment on view tenancy.lint_0011_definer_bypasses_rls is
'pgtenancy doctor, lint 0011 (ERROR): SECURITY DEFINER functions outside schema tenancy that '
'tenancy_app or tenancy_service may call and whose owner is a superuser or has BYPASSRLS. See '
'docs/lints/0011_definer_bypasses_rls.md.';
revoke all on tenancy.lint_0011_definer_bypasses_rls from public;
grant select on tenancy.lint_0011_definer_bypasses_rls to tenancy_admin, tenancy_auditor;
