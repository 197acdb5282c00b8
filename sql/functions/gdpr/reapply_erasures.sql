-- tenancy.reapply_erasures: applies every erasure in the current tenant's ledger again (after a restore from backup).

-- The ledger keeps hashes, not subject ids: each table naming its subjects itself (depth 0) is
-- searched for subject ids whose tenancy.subject_hash is in the ledger; every subject found is
-- erased again with its table functions and tenancy.record_erasure (which marks the entry).
-- An entry whose subject is found nowhere (its rows were deleted and stay deleted) is
-- reported with no subject. Runs as the caller (owner, admin or service context).
create or replace function tenancy.reapply_erasures()
returns table (ledger_id uuid, subject_hash text, subjects integer, rows_changed bigint)
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := tenancy.require_subject_rights('reapply_erasures', 'ledger');
    v_root record;
    v_found jsonb := '{}'::jsonb;
    v_entry record;
    v_subject text;
    v_result jsonb;
    v_rows bigint;
    v_n integer;
begin
    -- subject hash -> subject ids, from every table that names its subjects itself.
    for v_root in
        select n.nspname, c.relname, d.subject_column
        from tenancy.personal_data as d
        inner join pg_class as c on c.oid = d.table_name
        inner join pg_namespace as n on n.oid = c.relnamespace
        where d.depth = 0
        order by n.nspname, c.relname
    loop
        execute format(
            'select coalesce(jsonb_object_agg(s.h, s.ids), ''{}'') from ('
            ' select tenancy.subject_hash($1, t.%1$I::pg_catalog.text) as h,'
            '  pg_catalog.jsonb_agg(distinct t.%1$I::pg_catalog.text) as ids'
            ' from %2$I.%3$I as t'
            ' where tenancy.subject_hash($1, t.%1$I::pg_catalog.text) operator (pg_catalog.=) any($2)'
            ' group by 1) as s',
            v_root.subject_column, v_root.nspname, v_root.relname
        )
        into v_result
        using v_tenant, array(select e.subject_hash from tenancy.erasure_ledger as e where e.tenant_id = v_tenant);
        v_found := v_found || v_result;
    end loop;

    for v_entry in
        select e.id, e.subject_hash, e.reason
        from tenancy.erasure_ledger as e
        where e.tenant_id = v_tenant
        order by e.erased_at, e.id
    loop
        v_rows := 0;
        v_n := 0;
        for v_subject in
            select distinct s.value
            from jsonb_array_elements_text(coalesce(v_found -> v_entry.subject_hash, '[]')) as s (value)
        loop
            v_result := tenancy.record_erasure(
                v_subject, v_entry.reason, tenancy.subject_rows(v_subject, true), v_entry.id
            );
            select v_rows + coalesce(sum(t.value::bigint), 0) into v_rows
            from jsonb_each_text(v_result -> 'tables') as t;
            v_n := v_n + 1;
        end loop;
        ledger_id := v_entry.id;
        subject_hash := v_entry.subject_hash;
        subjects := v_n;
        rows_changed := v_rows;
        return next;
    end loop;
end
$$;

comment on function tenancy.reapply_erasures() is
'Applies every entry of the current tenant''s erasure ledger again, for rows a restore from '
'backup brought back: finds subject ids by their hash in the tables naming their subjects '
'themselves, erases them with the same functions as tenancy.erase_subject and marks the entry '
'(reapplied_at). Returns one row per entry: the subjects found and the rows changed. Owners, '
'admins and service contexts; pgtenancy erasure reapply runs it for every tenant.';

revoke all on function tenancy.reapply_erasures() from public;
grant execute on function tenancy.reapply_erasures() to tenancy_app, tenancy_service;
