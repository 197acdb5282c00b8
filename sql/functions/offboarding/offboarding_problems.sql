-- tenancy.offboarding_problems: the tenant tables offboarding could not empty, or could not empty safely, and why.

-- Offboarding deletes as tenancy_owner (in a service context of the tenant). Per tenant table
-- (tenancy.offboarding_tables), what stands in the way: tenancy_owner lacks USAGE on its schema,
-- or SELECT or DELETE on it (policy files generated before offboarding existed grant neither);
-- row level security without a permissive policy that lets tenancy_owner delete (a table whose
-- spec names no write roles has none); or an owner that cannot act as tenancy_owner itself: the
-- table's triggers and policy expressions would run its code with tenancy_owner's rights.
create or replace function tenancy.offboarding_problems()
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select string_agg(format('%s: %s', b.table_name, b.problem), '; ' order by b.table_name)
    from (
        select
            o.table_name,
            concat_ws(
                ', ',
                case when not has_schema_privilege('tenancy_owner', c.relnamespace, 'USAGE')
                    then 'tenancy_owner has no USAGE on its schema' end,
                case when not has_table_privilege('tenancy_owner', o.relid, 'SELECT, DELETE')
                    then 'tenancy_owner lacks SELECT or DELETE on it' end,
                case when c.relrowsecurity and not exists (
                    select from pg_policy as p
                    where
                        p.polrelid = o.relid
                        and p.polpermissive
                        and p.polcmd in ('d', '*')
                        and exists (
                            select from unnest(p.polroles) as r (role_oid)
                            where r.role_oid = 0 or pg_has_role('tenancy_owner', r.role_oid, 'USAGE')
                        )
                ) then 'no policy lets tenancy_owner delete its rows' end,
                case when not pg_has_role(c.relowner, 'tenancy_owner', 'MEMBER')
                    then format(
                        'its owner %s is not a member of tenancy_owner (its triggers and policies would run '
                        'with tenancy_owner''s rights)',
                        c.relowner::regrole
                    ) end
            ) as problem
        from tenancy.offboarding_tables() as o
        inner join pg_class as c on c.oid = o.relid
    ) as b
    where b.problem <> ''
$$;

comment on function tenancy.offboarding_problems() is
'pgtenancy internal: "table: problem; ..." for the tenant tables tenancy.offboard_tenant could not '
'empty (tenancy_owner lacks USAGE on the schema, SELECT or DELETE on the table; no permissive '
'policy lets it delete) or could not empty safely (an owner that is not a member of '
'tenancy_owner: its triggers and policies would run with tenancy_owner''s rights); NULL when '
'there is none.';

revoke all on function tenancy.offboarding_problems() from public;
