-- tenancy.declare_personal_data: records a table's personal data and its generated functions (generated policy files call it).

-- Runs as whoever applies the policy files (they own the table and create its functions), which
-- must be allowed to write tenancy.personal_data: nothing is granted to anyone. Both functions
-- must exist, take text[] and run as their caller (a SECURITY DEFINER function here would let
-- an erasure act with its owner's rights).
create or replace function tenancy.declare_personal_data(
    p_table regclass,
    p_subject_column name,
    p_references regclass,
    p_pii text[],
    p_erase text,
    p_depth integer,
    p_subject_direct boolean,
    p_export_function text,
    p_erase_function text
)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_fn text;
    v_oid regprocedure;
begin
    foreach v_fn in array array[p_export_function, p_erase_function] loop
        v_oid := to_regprocedure(v_fn);
        if v_oid is null then
            raise exception using
                errcode = '42883',
                message = format('function %s of the personal data of %s does not exist', v_fn, p_table);
        end if;
        if (select p.prosecdef from pg_proc as p where p.oid = v_oid) then
            raise exception using
                errcode = '42501',
                message = format('function %s of the personal data of %s is SECURITY DEFINER: it must run as its caller', v_fn, p_table);
        end if;
    end loop;
    insert into tenancy.personal_data as d (
        table_name, subject_column, subject_references, pii, erase, depth, subject_direct, export_function,
        erase_function
    )
    values (
        p_table, p_subject_column, p_references, p_pii, p_erase, p_depth, p_subject_direct, p_export_function,
        p_erase_function
    )
    on conflict (table_name) do update
    set
        subject_column = excluded.subject_column,
        subject_references = excluded.subject_references,
        pii = excluded.pii,
        erase = excluded.erase,
        depth = excluded.depth,
        subject_direct = excluded.subject_direct,
        export_function = excluded.export_function,
        erase_function = excluded.erase_function,
        declared_at = now();
end
$$;

comment on function tenancy.declare_personal_data(regclass, name, regclass, text[], text, integer, boolean, text, text) is
'Records (or replaces) the personal data of a table in tenancy.personal_data: its subject column '
'and the table it references, its personal columns, erase (anonymize or delete), depth, whether '
'the subject column holds the subject id itself, and its '
'generated export and erasure functions, which must exist and run as the caller (42883, 42501). '
'Called by generated policy files; granted to nobody.';

revoke all on function tenancy.declare_personal_data(regclass, name, regclass, text[], text, integer, boolean, text, text) from public;
