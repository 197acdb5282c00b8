-- pgtenancy lint 0008 (ERROR): a policy of a tenant table that calls the tenant context, but
-- whose USING or WITH CHECK does not require the tenant column to equal it (as a top-level AND
-- operand): a FOR UPDATE policy with a tenant USING and a WITH CHECK of true moves rows into
-- any tenant; "tenant_id = (select ...) or true" lets every row through.

create or replace view tenancy.lint_0008_policy_without_tenant_predicate as
select
    '0008'::pg_catalog.text as code,
    'policy_without_tenant_predicate'::pg_catalog.text as name,
    'ERROR'::pg_catalog.text as level,
    pg_catalog.format('%I on %s', p.policy_name, p.relid::pg_catalog.regclass) as object,
    pg_catalog.format(
        'the %s of policy %I on tenant table %s does not require %I to equal the tenant context: %s',
        x.clause, p.policy_name, p.relid::pg_catalog.regclass, tt.tenant_column, x.expression
    ) as detail,
    pg_catalog.format(
        'alter policy %I on %s %s (%I = (select tenancy.context_tenant_id(...)) and ...); '
        '(or apply the table''s generated policy file again)',
        p.policy_name, p.relid::pg_catalog.regclass, pg_catalog.lower(x.clause), tt.tenant_column
    ) as remediation
from tenancy.lint_policies as p
inner join tenancy.lint_tenant_tables as tt on tt.relid operator (pg_catalog.=) p.relid
cross join
    lateral (
        values
        ('USING', p.using_expression, p.using_tenant_column),
        ('WITH CHECK', p.check_expression, p.check_tenant_column)
    ) as x (clause, expression, tenant_column)
where
    p.calls_context
    and x.expression is not null
    and (x.tenant_column operator (pg_catalog.=) tt.tenant_column::pg_catalog.text) is not true;

comment on view tenancy.lint_0008_policy_without_tenant_predicate is
'pgtenancy doctor, lint 0008 (ERROR): USING or WITH CHECK expressions of tenant-context policies '
'that do not require the tenant column to equal the context. See '
'docs/lints/0008_policy_without_tenant_predicate.md.';
revoke all on tenancy.lint_0008_policy_without_tenant_predicate from public;
grant select on tenancy.lint_0008_policy_without_tenant_predicate to tenancy_admin, tenancy_auditor;
