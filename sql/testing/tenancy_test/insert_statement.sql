-- tenancy_test.insert_statement: the INSERT of a table's sample row, optionally into a given tenant.

-- p_sample maps column names to SQL expressions (JSON strings), evaluated when the statement runs,
-- as the role running it: '{"title": "''a title''", "project_id": "(select min(p.id) from
-- app.projects as p)"}'. Columns left out take their defaults; the tenant column p_tenant_column is
-- given by p_tenant (the tenant id or key, as text), or left to its default (the current tenant)
-- when that is NULL.
create or replace function tenancy_test.insert_statement(
    p_table regclass, p_sample jsonb, p_tenant text default null, p_tenant_column name default 'tenant_id'
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
    if p_tenant is not null then
        v_columns := v_columns || format('%I', p_tenant_column);
        v_values := v_values || format(
            '%L::%s', p_tenant,
            (
                select format_type(a.atttypid, a.atttypmod) from pg_catalog.pg_attribute as a
                where a.attrelid = p_table and a.attname = p_tenant_column
            )
        );
    end if;
    for v_column, v_value in
        select e.key, e.value from jsonb_each(coalesce(p_sample, '{}'::jsonb)) as e order by e.key
    loop
        if v_column = p_tenant_column then
            raise exception using
                errcode = '22023',
                message = format('the sample row of %s sets %s: the checks set it', p_table, p_tenant_column);
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

comment on function tenancy_test.insert_statement(regclass, jsonb, text, name) is
'The INSERT statement of the table''s sample row (column -> SQL expression), with the tenant '
'column p_tenant_column set to p_tenant (a tenant id or key) or left to its default. 22023 when '
'the sample sets the tenant column or a value is not a string.';
