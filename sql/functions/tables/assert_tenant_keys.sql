-- tenancy.assert_tenant_keys: TN007 unless the tenant column leads every key and index of a tenant table and its descendants.

-- The signatures of earlier releases would make calls ambiguous: they go before this one is
-- created (a generated policy file applied in the same migration calls it).
drop function if exists tenancy.assert_tenant_keys(regclass);
drop function if exists tenancy.assert_tenant_keys(regclass, text[]);

create or replace function tenancy.assert_tenant_keys(
    p_table regclass,
    p_covered text[] default '{}'::pg_catalog.text[],
    p_column name default 'tenant_id'
)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_problems text[];
begin
    select array_agg(p.detail || '; fix: ' || p.remediation order by p.n)
    into v_problems
    from tenancy.key_layout_problems(p_table, p_column, p_covered)
        with ordinality as p (object, detail, remediation, n);
    if cardinality(v_problems) > 0 then
        raise exception using
            errcode = 'TN007',
            message = format(
                'tenant table %s: %s key layout problem%s:%s', p_table, cardinality(v_problems),
                case when cardinality(v_problems) > 1 then 's' else '' end,
                E'\n- ' || array_to_string(v_problems, E'\n- ')
            ),
            hint = format(
                '%I must lead the primary key, every index and unique or exclusion constraint, and '
                'every foreign key to another tenant table, on the table and on each partition and '
                'inheritance child, and every partition and child needs the policy file''s row '
                'level security. See docs/key-layout.md.',
                p_column
            );
    end if;
end
$$;

comment on function tenancy.assert_tenant_keys(regclass, text[], name) is
'TN007 naming, each with a fix, every problem tenancy.key_layout_problems finds: a primary key, '
'index, unique or exclusion constraint or foreign key to another tenant table that does not start '
'with the tenant column p_column, on the table and on its partitions and inheritance children, '
'and every partition or child not in p_covered (the descendants the calling policy file secures; '
'NULL: the file secures none in particular, as for partitions created at run time, and none is '
'refused for being missing). Called by generated SQL.';

revoke all on function tenancy.assert_tenant_keys(regclass, text[], name) from public;
