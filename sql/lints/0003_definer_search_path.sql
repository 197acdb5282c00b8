-- pgtenancy lint 0003 (ERROR): a function in schema tenancy with an unsafe search_path. A
-- SECURITY DEFINER function runs with its owner's rights: without a search_path setting it
-- resolves names through the caller's, where a caller's temporary or own objects could stand in
-- for pg_catalog's; unless pg_temp is named last, temporary tables and types are searched first.
-- No function of schema tenancy names public or $user on its search_path (anyone may have
-- created objects there).
-- Catalog text is of collation "C"; the view's columns keep the default one.
-- noqa: disable=RF06

create or replace view tenancy.lint_0003_definer_search_path as
with settings as (
    select
        p.oid,
        p.prosecdef,
        (
            select pg_catalog.substr(s.setting, 13) collate "default"  -- noqa: RF02,RF03
            from pg_catalog.unnest(p.proconfig) as s (setting)
            where pg_catalog.starts_with(s.setting, 'search_path=')
        ) as search_path
    from pg_catalog.pg_proc as p
    where p.pronamespace operator (pg_catalog.=) pg_catalog.to_regnamespace('tenancy')::pg_catalog.oid
)

select
    '0003'::pg_catalog.text as code,
    'definer_search_path'::pg_catalog.text as name,
    'ERROR'::pg_catalog.text as level,
    s.oid::pg_catalog.regprocedure::pg_catalog.text as object,
    pg_catalog.format(x.detail, s.oid::pg_catalog.regprocedure, s.search_path) as detail,
    pg_catalog.format(
        'alter function %s set search_path = pg_catalog, pg_temp;', s.oid::pg_catalog.regprocedure
    ) as remediation
from settings as s
cross join
    lateral (
        values
        (
            s.prosecdef and s.search_path is null,
            'SECURITY DEFINER function %s has no search_path setting'
        ),
        (
            coalesce(s.search_path operator (pg_catalog.~) '(^|[ ,"])(public|\$user)([ ,"]|$)', false),
            'function %s has public or $user on its search_path (%s): objects anyone created there '
            'stand in for pg_catalog''s'
        ),
        (
            s.prosecdef
            and s.search_path is not null
            and not s.search_path operator (pg_catalog.=) '""'
            and not pg_catalog.btrim(pg_catalog.regexp_replace(s.search_path, '^.*,', ''), ' "')
            operator (pg_catalog.=) 'pg_temp',
            'SECURITY DEFINER function %s does not name pg_temp last on its search_path (%s): '
            'temporary tables and types, which any caller may create, are then searched first'
        )
    ) as x (found, detail)
where x.found;

comment on view tenancy.lint_0003_definer_search_path is
'pgtenancy doctor, lint 0003 (ERROR): functions of schema tenancy with an unsafe search_path: '
'SECURITY DEFINER without a search_path setting or without pg_temp last; public or $user on it. '
'See docs/lints/0003_definer_search_path.md.';
revoke all on tenancy.lint_0003_definer_search_path from public;
grant select on tenancy.lint_0003_definer_search_path to tenancy_admin, tenancy_auditor;
