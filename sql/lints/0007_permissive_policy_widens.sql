-- pgtenancy lint 0007 (ERROR): a PERMISSIVE policy on a tenant table that does not call the
-- tenant context. Permissive policies are OR-ed: such a policy opens its command to every
-- tenant's rows for its roles, whatever the tenant policies say. Not reported: the policy
-- pgtenancy generates for tenancy_owner alone (NOLOGIN, it acts only through pgtenancy's
-- functions; lint 0006 reports a login that could act as it), and a policy whose command is
-- also covered, for every role, by a RESTRICTIVE policy with the tenant predicate (restrictive
-- policies are AND-ed).

create or replace view tenancy.lint_0007_permissive_policy_widens as
select
    '0007'::pg_catalog.text as code,
    'permissive_policy_widens'::pg_catalog.text as name,
    'ERROR'::pg_catalog.text as level,
    pg_catalog.format('%I on %s', p.policy_name, p.relid::pg_catalog.regclass) as object,
    pg_catalog.format(
        'permissive policy %I on tenant table %s (for %s, to %s, using %s%s) does not call the '
        'tenant context: permissive policies are OR-ed, so it gives its roles every tenant''s rows',
        p.policy_name, p.relid::pg_catalog.regclass,
        case
            when p.command operator (pg_catalog.=) 'r' then 'select'
            when p.command operator (pg_catalog.=) 'a' then 'insert'
            when p.command operator (pg_catalog.=) 'w' then 'update'
            when p.command operator (pg_catalog.=) 'd' then 'delete'
            else 'all'
        end,
        (
            select
                pg_catalog.string_agg(
                    case
                        when r.oid operator (pg_catalog.=) 0 then 'public'
                        else r.oid::pg_catalog.regrole::pg_catalog.text
                    end,
                    ', '
                )
            from pg_catalog.unnest(p.roles) as r (oid)
        ),
        coalesce(p.using_expression, '-'),
        case when p.check_expression is null then '' else pg_catalog.concat(' with check ', p.check_expression) end
    ) as detail,
    pg_catalog.format(
        'drop policy %I on %s; (or add the tenant predicate to it: %I = (select '
        'tenancy.context_tenant_id(...)) and ..., or make it AS RESTRICTIVE)',
        p.policy_name, p.relid::pg_catalog.regclass, tt.tenant_column
    ) as remediation
from tenancy.lint_policies as p
inner join tenancy.lint_tenant_tables as tt on tt.relid operator (pg_catalog.=) p.relid
where
    p.permissive
    and not p.calls_context
    and not p.roles operator (pg_catalog.=) array[pg_catalog.to_regrole('tenancy_owner')::pg_catalog.oid]
    and not exists (
        select from tenancy.lint_policies as r
        where
            r.relid operator (pg_catalog.=) p.relid
            and not r.permissive
            and r.roles operator (pg_catalog.=) array[0]::pg_catalog.oid[]
            and r.command operator (pg_catalog.=) any(array['*', p.command]::pg_catalog."char"[])  -- noqa: RF06
            and coalesce(r.using_expression, r.check_expression) is not null
            and (r.using_expression is null or r.using_tenant_column operator (pg_catalog.=) tt.tenant_column)
            and (r.check_expression is null or r.check_tenant_column operator (pg_catalog.=) tt.tenant_column)
    );

comment on view tenancy.lint_0007_permissive_policy_widens is
'pgtenancy doctor, lint 0007 (ERROR): permissive policies on tenant tables that do not call the '
'tenant context and so widen access (but the one for tenancy_owner alone). See '
'docs/lints/0007_permissive_policy_widens.md.';
revoke all on tenancy.lint_0007_permissive_policy_widens from public;
grant select on tenancy.lint_0007_permissive_policy_widens to tenancy_admin, tenancy_auditor;
