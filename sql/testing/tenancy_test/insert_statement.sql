-- tenancy_test.insert_statement: the INSERT of a table's sample row, optionally into a given tenant.

-- p_sample maps column names to SQL expressions (JSON strings), evaluated when the statement runs,
-- as the role running it: '{"title": "''a title''", "project_id": "(select min(p.id) from
-- app.projects as p)"}'. Columns left out take their defaults; tenant_id is given by p_tenant_id,
-- or left to its default (the current tenant) when that is NULL.
create or replace function tenancy_test.insert_statement(
    p_table regclass, p_sample jsonb, p_tenant_id uuid default null
)
returns text
language plpgsql
stable
set search_path = pg_catalog, public, pg_temp
as $$
declare
    v_columns text[] := '{}'::text[];
    v_values text[] := '{}'::text[];
    v_column text;
    v_value jsonb;
begin
    if p_tenant_id is not null then
        v_columns := v_columns || '"tenant_id"'::text;
        v_values := v_values || format('%L::uuid', p_tenant_id);
    end if;
    for v_column, v_value in
        select e.key, e.value from jsonb_each(coalesce(p_sample, '{}'::jsonb)) as e order by e.key
    loop
        if v_column = 'tenant_id' then
            raise exception using
                errcode = '22023',
                message = format('the sample row of %s sets tenant_id: the checks set it', p_table);
        end if;
        if jsonb_typeof(v_value) is distinct from 'string' then
            raise exception using
                errcode = '22023',
                message = format(
                    'the sample value of column %I of %s is %s, not an SQL expression in a string',
                    v_column, p_table, v_value
                );
        end if;
        v_columns := v_columns || format('%I', v_column);
        v_values := v_values || (v_value #>> '{}');
    end loop;
    if cardinality(v_columns) = 0 then
        return format('insert into %s default values', p_table);
    end if;
    return format(
        'insert into %s (%s) values (%s)',
        p_table, array_to_string(v_columns, ', '), array_to_string(v_values, ', ')
    );
end
$$;

comment on function tenancy_test.insert_statement(regclass, jsonb, uuid) is
'The INSERT statement of the table''s sample row (column -> SQL expression), with tenant_id set '
'to p_tenant_id or left to its default. 22023 when the sample sets tenant_id or a value is not '
'a string.';
