-- tenancy.subject_rows: calls every personal data table's generated export or erasure function for one subject of the current tenant.

-- p_erase false: export functions, parents before children; true: erasure functions, children
-- before parents (a deleted parent would take children with it before their turn). Returns
-- {"<oid>": {"table": "schema.table", "entity": audit entity type, "rows": …, "keys": [...]}}.
-- A registered function that no longer exists is an error (42883), not a table skipped.
-- Runs as the caller: the generated functions run as the caller too, under row level security.
create or replace function tenancy.subject_rows(p_subject text, p_erase boolean)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_entry record;
    v_part jsonb;
    v_result jsonb := '{}'::jsonb;
begin
    for v_entry in
        select
            d.table_name::oid as relid,
            n.nspname as table_schema,
            c.relname as table_name,
            case when p_erase then d.erase_function else d.export_function end as signature,
            fn.oid as fn_oid,
            fn.proname,
            fns.nspname as fn_schema
        from tenancy.personal_data as d
        inner join pg_class as c on c.oid = d.table_name
        inner join pg_namespace as n on n.oid = c.relnamespace
        left join pg_proc as fn
            on fn.oid = to_regprocedure(case when p_erase then d.erase_function else d.export_function end)
        left join pg_namespace as fns on fns.oid = fn.pronamespace
        order by
            case when p_erase then -d.depth else d.depth end,
            n.nspname, c.relname
    loop
        if v_entry.fn_oid is null then
            raise exception using
                errcode = '42883',
                message = format(
                    'function %s of the personal data of %I.%I does not exist: apply the table''s generated policy file again',
                    v_entry.signature, v_entry.table_schema, v_entry.table_name
                );
        end if;
        execute format('select %I.%I($1)', v_entry.fn_schema, v_entry.proname)
        into v_part
        using array[p_subject];
        v_result := v_result || jsonb_build_object(
            v_entry.relid::text,
            v_part || jsonb_build_object(
                'table', format('%s.%s', v_entry.table_schema, v_entry.table_name),
                'entity', '"' || replace(v_entry.table_schema, '"', '""') || '"."' || replace(v_entry.table_name, '"', '""') || '"'
            )
        );
    end loop;
    return v_result;
end
$$;

comment on function tenancy.subject_rows(text, boolean) is
'Calls the generated export (p_erase false) or erasure (true) function of every table in '
'tenancy.personal_data for one subject of the current tenant and returns their results by table '
'oid, with the table''s name and audit entity type. Runs as the caller; used by '
'tenancy.export_subject, tenancy.erase_subject and tenancy.reapply_erasures.';

revoke all on function tenancy.subject_rows(text, boolean) from public;
grant execute on function tenancy.subject_rows(text, boolean) to tenancy_app, tenancy_service;
