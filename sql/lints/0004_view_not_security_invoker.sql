-- pgtenancy lint 0004 (WARN): a view over a tenant table without security_invoker.
-- A view reads its tables with its owner's rights: unless the owner is subject to the policies
-- (FORCE) and the view is security_invoker, the caller's tenant context may not apply to it.
-- pgtenancy's own views (schema tenancy, owned by tenancy_owner: the lints) are left out.

create or replace view tenancy.lint_0004_view_not_security_invoker as
select distinct on (v.oid)
    '0004'::pg_catalog.text as code,
    'view_not_security_invoker'::pg_catalog.text as name,
    'WARN'::pg_catalog.text as level,
    v.oid::pg_catalog.regclass::pg_catalog.text as object,
    pg_catalog.format(
        'view %s reads tenant table %s with the rights of its owner %s, not of its caller',
        v.oid::pg_catalog.regclass, t.oid::pg_catalog.regclass,
        pg_catalog.pg_get_userbyid(v.relowner)
    ) as detail,
    pg_catalog.format(
        'alter view %s set (security_invoker = true);', v.oid::pg_catalog.regclass
    ) as remediation
from pg_catalog.pg_class as v
inner join pg_catalog.pg_rewrite as r on r.ev_class operator (pg_catalog.=) v.oid
inner join pg_catalog.pg_depend as d
    on
        d.classid operator (pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
        and d.objid operator (pg_catalog.=) r.oid
        and d.refclassid operator (pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
inner join pg_catalog.pg_class as t on t.oid operator (pg_catalog.=) d.refobjid
where
    v.relkind operator (pg_catalog.=) 'v'
    and not (
        v.relnamespace operator (pg_catalog.=) pg_catalog.to_regnamespace('tenancy')::pg_catalog.oid
        and v.relowner operator (pg_catalog.=) pg_catalog.to_regrole('tenancy_owner')::pg_catalog.oid
    )
    and not t.oid operator (pg_catalog.=) v.oid
    and not coalesce(
        'security_invoker=true' operator (pg_catalog.=) any(v.reloptions)
        or 'security_invoker=on' operator (pg_catalog.=) any(v.reloptions),
        false
    )
    and exists (
        select from tenancy.lint_tenant_tables as tt
        where tt.relid operator (pg_catalog.=) t.oid
    )
order by v.oid, t.oid;

comment on view tenancy.lint_0004_view_not_security_invoker is
'pgtenancy doctor, lint 0004 (WARN): views over tenant tables that read them with their owner''s '
'rights (no security_invoker). See docs/lints/0004_view_not_security_invoker.md.';
revoke all on tenancy.lint_0004_view_not_security_invoker from public;
grant select on tenancy.lint_0004_view_not_security_invoker to tenancy_admin, tenancy_auditor;
