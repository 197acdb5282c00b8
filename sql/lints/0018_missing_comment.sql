-- pgtenancy lint 0018 (INFO): a tenant table, or a function of schema tenancy, without
-- COMMENT ON. The comment is what psql's \d+ and \df+ show an operator who wonders what the
-- table holds or what the function may do.

create or replace view tenancy.lint_0018_missing_comment as
select
    '0018'::pg_catalog.text as code,
    'missing_comment'::pg_catalog.text as name,
    'INFO'::pg_catalog.text as level,
    tt.relid::pg_catalog.regclass::pg_catalog.text as object,
    pg_catalog.format('tenant table %s has no comment', tt.relid::pg_catalog.regclass) as detail,
    pg_catalog.format(
        'comment on table %s is ''<what a row is, whose it is>'';', tt.relid::pg_catalog.regclass
    ) as remediation
from tenancy.lint_tenant_tables as tt
where pg_catalog.obj_description(tt.relid, 'pg_class') is null
union all
select
    '0018' as code,
    'missing_comment' as name,
    'INFO' as level,
    p.oid::pg_catalog.regprocedure::pg_catalog.text as object,
    pg_catalog.format('function %s has no comment', p.oid::pg_catalog.regprocedure) as detail,
    pg_catalog.format(
        'comment on function %s is ''<what it does, who may call it>'';',
        p.oid::pg_catalog.regprocedure
    ) as remediation
from pg_catalog.pg_proc as p
where
    p.pronamespace operator (pg_catalog.=) pg_catalog.to_regnamespace('tenancy')::pg_catalog.oid
    and pg_catalog.obj_description(p.oid, 'pg_proc') is null;

comment on view tenancy.lint_0018_missing_comment is
'pgtenancy doctor, lint 0018 (INFO): tenant tables and functions of schema tenancy without a '
'comment. See docs/lints/0018_missing_comment.md.';
revoke all on tenancy.lint_0018_missing_comment from public;
grant select on tenancy.lint_0018_missing_comment to tenancy_admin, tenancy_auditor;
