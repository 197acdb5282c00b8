-- tenancy.offboarding_delete: delete up to a number of one tenant's rows from one tenant table; how many went.

-- Called by tenancy.offboard_tenant in a service context of the tenant (row level security
-- applies to tenancy_owner on application tables). The rows are picked by the tenant column's
-- index (LIMIT), then deleted by their physical address per partition (tableoid, ctid: a TID
-- scan), with the tenant predicate repeated: a row that moved or changed meanwhile is left for
-- the next step, never another tenant's row taken. p_limit NULL (a table that refers to itself,
-- tenancy.offboarding_tables' whole): every row in one statement. A row the context reads but
-- may not delete (no policy lets tenancy_owner delete it) is refused, never skipped in silence.
create or replace function tenancy.offboarding_delete(
    p_table text, p_predicate text, p_value text, p_limit bigint
)
returns bigint
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_part oid;
    v_ctids tid[];
    v_count bigint;
    v_total bigint := 0;
    v_left bigint;
begin
    if p_limit is null then
        execute format('delete from %s as t where %s', p_table, p_predicate) using p_value;
        get diagnostics v_total = row_count;
        return v_total;
    end if;
    for v_part, v_ctids in execute format(
        'select s.tableoid as part, pg_catalog.array_agg(s.ctid) as ctids '
        'from (select t.tableoid, t.ctid from %s as t where %s limit $2) as s group by s.tableoid',
        p_table, p_predicate
    ) using p_value, p_limit loop
        execute format(
            'delete from %s as t where t.tableoid = $2 and t.ctid = any($3) and %s', p_table, p_predicate
        ) using p_value, v_part, v_ctids;
        get diagnostics v_count = row_count;
        v_total := v_total + v_count;
        if v_count < cardinality(v_ctids) then
            execute format(
                'select pg_catalog.count(*) from %s as t where t.tableoid = $2 and t.ctid = any($3) and %s',
                p_table, p_predicate
            ) using p_value, v_part, v_ctids into v_left;
            if v_left > 0 then
                raise exception using
                    errcode = '42501',
                    message = format(
                        'offboarding reads %s rows of %s that it may not delete: no policy of the table lets '
                        'tenancy_owner delete rows in a service context',
                        v_left, p_table
                    ),
                    hint = 'Give the table write roles in the spec (its delete policy admits service '
                        'contexts), run pgtenancy generate and apply, then offboard again: it resumes.';
            end if;
        end if;
    end loop;
    return v_total;
end
$$;

comment on function tenancy.offboarding_delete(text, text, text, bigint) is
'pgtenancy internal: deletes at most p_limit rows (NULL: all) of table p_table (a quoted name) '
'matching p_predicate (on alias t, with $1 = p_value) and returns how many went; 42501 when rows '
'it reads are not deleted (no policy lets tenancy_owner delete them).';

revoke all on function tenancy.offboarding_delete(text, text, text, bigint) from public;
