-- pgtenancy lint 0003 (ERROR): a SECURITY DEFINER function in schema tenancy without a pinned
-- search_path. It runs with its owner's rights and would resolve names through the caller's
-- search_path, where a caller's temporary or own objects could stand in for pg_catalog's.

create or replace view tenancy.lint_0003_definer_search_path as
select
    '0003'::pg_catalog.text as code,
    'definer_search_path'::pg_catalog.text as name,
    'ERROR'::pg_catalog.text as level,
    p.oid::pg_catalog.regprocedure::pg_catalog.text as object,
    pg_catalog.format(
        'SECURITY DEFINER function %s has no search_path setting', p.oid::pg_catalog.regprocedure
    ) as detail,
    pg_catalog.format(
        'alter function %s set search_path = pg_catalog, pg_temp;', p.oid::pg_catalog.regprocedure
    ) as remediation
from pg_catalog.pg_proc as p
where
    p.pronamespace operator (pg_catalog.=) 'tenancy'::pg_catalog.regnamespace
    and p.prosecdef
    and not exists (
        select from pg_catalog.unnest(p.proconfig) as s (setting)
        where pg_catalog.starts_with(s.setting, 'search_path=')
    );

comment on view tenancy.lint_0003_definer_search_path is
'pgtenancy doctor, lint 0003 (ERROR): SECURITY DEFINER functions of schema tenancy without a '
'search_path setting. See docs/lints/0003_definer_search_path.md.';
revoke all on tenancy.lint_0003_definer_search_path from public;
grant select on tenancy.lint_0003_definer_search_path to tenancy_admin, tenancy_auditor;
