-- tenancy_test.inserts_row: one pgTAP assertion that the current role inserts a sample row and sees it.

-- The insert succeeds (not merely "is not refused by row level security"): exactly one row, stored
-- with the tenant column p_tenant_column set to p_tenant (the tenant id or key, as text) by the
-- column default, and visible to the inserting role afterwards.
-- It runs in a subtransaction that is then undone, so the row never stays and unique keys of the
-- sample do not collide across calls. On failure the diagnostics give the error or what was seen.
create or replace function tenancy_test.inserts_row(
    p_table regclass, p_sample jsonb, p_tenant text, p_description text,
    p_tenant_column name default 'tenant_id'
)
returns text
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
    v_statement text := tenancy_test.insert_statement(p_table, p_sample, null, p_tenant_column)
        || format(' returning tableoid, ctid, %I::text', p_tenant_column);
    v_rows bigint;
    v_tableoid oid;
    v_ctid tid;
    v_tenant text;
    v_visible bigint;
    v_error text;
    v_passed boolean;
    v_result text;
begin
    begin
        execute v_statement into v_tableoid, v_ctid, v_tenant;
        get diagnostics v_rows = row_count;
        execute format(
            'select count(*) from %s as t where t.tableoid = $1 and t.ctid = $2 and t.%I::text = $3',
            p_table, p_tenant_column
        ) into v_visible using v_tableoid, v_ctid, p_tenant;
        -- Undo the insert: this error ends the subtransaction and is caught below.
        raise exception using errcode = 'TT000', message = 'tenancy_test: sample row undone';
    exception when others then
        if sqlstate <> 'TT000' then
            v_error := format('%s (SQLSTATE %s)', sqlerrm, sqlstate);
        end if;
    end;
    v_passed := coalesce(
        v_error is null and v_rows = 1 and v_tenant = p_tenant and v_visible = 1, false
    );
    v_result := ok(v_passed, p_description);
    if not v_passed then
        v_result := v_result || E'\n' || diag(
            coalesce(
                'the insert failed: ' || v_error,
                format(
                    'rows inserted: %s, %s: %s (wanted %s), visible to %s afterwards: %s',
                    v_rows, p_tenant_column, v_tenant, p_tenant, current_user, coalesce(v_visible, 0)
                )
            )
            || E'\nstatement: ' || v_statement
        );
    end if;
    return v_result;
end
$$;

comment on function tenancy_test.inserts_row(regclass, jsonb, text, text, name) is
'pgTAP, one assertion: as the current role, inserting the sample row (the tenant column from its '
'default) stores exactly one row whose tenant column is p_tenant (a tenant id or key) that the '
'role then sees; the row is undone.';
