-- pgtenancy lints: tenancy.lint_policies, every policy with what its expressions say about the
-- tenant: whether they call the tenant context, and the column each requires to equal it.
-- Written once here for lints 0007, 0008 and 0016. A context function is matched by name,
-- schema-qualified or not (pg_get_expr leaves out a schema on the caller's search_path), but
-- never a function of the same name in another schema.

create or replace view tenancy.lint_policies as
select
    e.oid as policy_oid,
    e.polrelid as relid,
    e.polname as policy_name,
    e.polpermissive as permissive,
    e.polcmd as command,
    e.polroles as roles,
    e.using_expression,
    e.check_expression,
    pg_catalog.concat_ws(' ', e.using_expression, e.check_expression)
    operator (pg_catalog.~) '(^|[^.\w])(tenancy\.)?(context|current)_tenant_(id|key)(_mac)?\(' as calls_context,
    tenancy.lint_tenant_predicate_column(e.using_expression) as using_tenant_column,
    tenancy.lint_tenant_predicate_column(e.check_expression) as check_tenant_column
from (
    select
        p.oid,
        p.polrelid,
        p.polname,
        p.polpermissive,
        p.polcmd,
        p.polroles,
        pg_catalog.pg_get_expr(p.polqual, p.polrelid) as using_expression,
        pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as check_expression
    from pg_catalog.pg_policy as p
) as e;

comment on view tenancy.lint_policies is
'pgtenancy doctor: every policy, its USING and WITH CHECK as text, whether they call the tenant '
'context (tenancy.context_tenant_id/_key, current_tenant_id/_key), and the column each requires '
'to equal it in a top-level AND operand (NULL when none: see '
'tenancy.lint_tenant_predicate_column).';
revoke all on tenancy.lint_policies from public;
grant select on tenancy.lint_policies to tenancy_admin, tenancy_auditor;
