-- pgtenancy lint 0016 (WARN): a policy of a tenant table calling a tenancy context function
-- without the (select ...) wrapper. Wrapped, the call is an initPlan evaluated once per
-- statement and the comparison is an index key; bare, it may run once per row. A call inside
-- another function call inside the sub-select (tenancy.tenant_key_int8(tenancy.context_tenant_key(
-- ...)), as generated for bigint tenant columns) is wrapped too.

create or replace view tenancy.lint_0016_context_call_not_wrapped as
select
    '0016'::pg_catalog.text as code,
    'context_call_not_wrapped'::pg_catalog.text as name,
    'WARN'::pg_catalog.text as level,
    pg_catalog.format('%I on %s', p.policy_name, p.relid::pg_catalog.regclass) as object,
    pg_catalog.format(
        'the %s of policy %I on tenant table %s calls the tenant context without (select ...): '
        '%s',
        x.clause, p.policy_name, p.relid::pg_catalog.regclass, x.expression
    ) as detail,
    pg_catalog.format(
        'alter policy %I on %s %s (... (select tenancy.context_tenant_id(...)) ...); (or apply '
        'the table''s generated policy file again)',
        p.policy_name, p.relid::pg_catalog.regclass, pg_catalog.lower(x.clause)
    ) as remediation
from tenancy.lint_policies as p
cross join
    lateral (
        values ('USING', p.using_expression), ('WITH CHECK', p.check_expression)
    ) as x (clause, expression)
where
    exists (
        select from tenancy.lint_tenant_tables as tt
        where tt.relid operator (pg_catalog.=) p.relid
    )
    and pg_catalog.regexp_replace(
        x.expression,
        'SELECT (\(|[\w.]+\()*(tenancy\.)?(context|current)_tenant_(id|key)\(',
        'SELECT (',
        'g'
    ) operator (pg_catalog.~) '(^|[^.\w])(tenancy\.)?(context|current)_tenant_(id|key)\(';

comment on view tenancy.lint_0016_context_call_not_wrapped is
'pgtenancy doctor, lint 0016 (WARN): tenant-table policies calling a context function without '
'the (select ...) wrapper. See docs/lints/0016_context_call_not_wrapped.md.';
revoke all on tenancy.lint_0016_context_call_not_wrapped from public;
grant select on tenancy.lint_0016_context_call_not_wrapped to tenancy_admin, tenancy_auditor;
