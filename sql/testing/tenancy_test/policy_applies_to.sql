-- tenancy_test.policy_applies_to: one pgTAP assertion on the roles a policy applies to, PUBLIC included.

-- pgTAP's policy_roles_are() cannot name PUBLIC (it joins pg_roles), so pg_policies is read.
create or replace function tenancy_test.policy_applies_to(
    p_table regclass, p_policy name, p_roles name[], p_description text
)
returns text
language plpgsql
stable
set search_path = pg_catalog, public, pg_temp
as $$
begin
    return is(
        (
            select p.roles from pg_catalog.pg_policies as p
            inner join pg_catalog.pg_class as c on c.relname = p.tablename
            inner join pg_catalog.pg_namespace as n
                on n.oid = c.relnamespace and n.nspname = p.schemaname
            where c.oid = p_table and p.policyname = p_policy
        ),
        p_roles,
        p_description
    );
end
$$;

comment on function tenancy_test.policy_applies_to(regclass, name, name[], text) is
'pgTAP: the roles a policy of the table applies to, exactly (''public'' for PUBLIC); one '
'assertion, which fails when the policy is missing.';
