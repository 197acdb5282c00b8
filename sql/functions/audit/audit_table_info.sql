-- tenancy.audit_table_info: how a table's audit trigger records its rows (entity name, tenant column, key columns).

-- Read from the arguments of the table's tenancy_audit_insert trigger (rendered by the generator:
-- tenant column, its type, primary key columns without the tenant column, excluded columns,
-- entity name), so the reading functions match rows exactly as tenancy.tg_audit wrote them. A
-- partition without the trigger (created after its policy file was applied) is read through the
-- root of its partition tree, whose entity name its rows carry. Runs as the caller: the catalog
-- is readable by everyone.
create or replace function tenancy.audit_table_info(
    p_table regclass,
    out entity_type text,
    out tenant_column text,
    out tenant_type text,
    out key_columns text[],
    out excluded_columns text[]
)
returns record
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_args bytea;
    v_nargs smallint;
    v_arg text[] := '{}'::text[];
    v_pos integer;
begin
    if p_table is null then
        raise exception using
            errcode = '22023',
            message = 'the table of an audit lookup must not be NULL';
    end if;
    select t.tgargs, t.tgnargs into v_args, v_nargs
    from pg_catalog.pg_trigger as t
    where
        t.tgrelid operator (pg_catalog.=) p_table
        and t.tgname operator (pg_catalog.=) 'tenancy_audit_insert'
        and t.tgfoid operator (pg_catalog.=) 'tenancy.tg_audit()'::pg_catalog.regprocedure;
    if v_args is null then
        select t.tgargs, t.tgnargs into v_args, v_nargs
        from pg_catalog.pg_trigger as t
        where
            t.tgrelid operator (pg_catalog.=) pg_catalog.pg_partition_root(p_table)
            and t.tgname operator (pg_catalog.=) 'tenancy_audit_insert'
            and t.tgfoid operator (pg_catalog.=) 'tenancy.tg_audit()'::pg_catalog.regprocedure;
    end if;
    if v_args is null or v_nargs operator (pg_catalog.<>) 5 then
        raise exception using
            errcode = '55000',
            message = pg_catalog.format(
                'table %s is not audited: it has no tenancy_audit_insert trigger of tenancy.tg_audit', p_table
            ),
            hint = 'List it in the spec with audit = true (the default), run pgtenancy generate and apply its policy file.';
    end if;
    -- tgargs: each argument followed by a zero byte.
    loop
        v_pos := pg_catalog.position(v_args, '\x00'::bytea);
        exit when v_pos operator (pg_catalog.=) 0;
        v_arg := v_arg operator (pg_catalog.||) pg_catalog.convert_from(
            pg_catalog.substring(v_args, 1, v_pos operator (pg_catalog.-) 1), pg_catalog.getdatabaseencoding()
        );
        v_args := pg_catalog.substring(v_args, v_pos operator (pg_catalog.+) 1);
    end loop;
    tenant_column := v_arg[1];
    tenant_type := v_arg[2];
    key_columns := v_arg[3]::text[];
    excluded_columns := v_arg[4]::text[];
    entity_type := v_arg[5];
end
$$;

comment on function tenancy.audit_table_info(regclass) is
'How the audit trigger of a table (or, for a partition without one, of its partition root) '
'records its rows: entity_type as tenancy.audit_logs holds it ("schema"."table" of the root), '
'the tenant column and its type, the primary key columns without the tenant column (entity_id '
'is a JSON object of them), the excluded columns. 55000 for a table that is not audited, 22023 '
'for NULL.';

revoke all on function tenancy.audit_table_info(regclass) from public;
grant execute on function tenancy.audit_table_info(regclass)
to tenancy_app, tenancy_service, tenancy_auditor;
