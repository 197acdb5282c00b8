-- tenancy.release_moved_tenant: delete a batch of a moved tenant's rows from this database (after a move, or to undo a copy).

-- One step per call, as tenancy.offboard_tenant's: up to p_batch_rows rows, children before
-- parents (tenancy.offboarding_tables, tenancy.offboarding_delete), in a service context of the
-- tenant that its fence does not stop. Returns how many rows went; 0 once none is left. The
-- tenant's platform rows go in the last step: the hashes of its API keys and invitation tokens,
-- its connector secrets (with its endpoints) and its move markers, and its hostnames unless
-- p_keep_claims (the source of a move keeps them when it is the router's directory). The audit
-- trail and the security events are kept, as offboarding keeps them. The tenant must be fenced
-- here: rows of a tenant that still writes here are never released (55000).
create or replace function tenancy.release_moved_tenant(
    p_tenant_id uuid, p_batch_rows integer default 10000, p_keep_claims boolean default true
)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant tenancy.tenants;
    v_table record;
    v_value text;
    v_count bigint;
    v_total bigint := 0;
    v_budget bigint;
begin
    if p_batch_rows is null or p_batch_rows < 1 or p_batch_rows > 1000000 then
        raise exception using
            errcode = '22023',
            message = format('invalid batch size %s: from 1 to 1000000 rows', coalesce(p_batch_rows::text, 'NULL'));
    end if;
    v_budget := p_batch_rows;
    select t.* into v_tenant from tenancy.tenants as t where t.id = p_tenant_id for key share;
    if not found then
        raise exception using errcode = 'P0002', message = format('tenant %s does not exist', p_tenant_id);
    end if;
    if v_tenant.fenced_at is null then
        raise exception using
            errcode = '55000',
            message = format('tenant %s is not fenced here: its rows are not released', p_tenant_id),
            hint = 'Only the rows a move left behind (its source after the flip, or its destination when aborted) are released.';
    end if;
    perform tenancy.establish_context(p_tenant_id, null, 'service', v_tenant.key);
    -- This context deletes what the fence keeps: the rows no client may write here any more.
    perform setval('tenancy.context_fence'::regclass, currval('tenancy.context_key'::regclass), true);
    for v_table in select o.table_name, o.predicate, o.value_kind, o.whole from tenancy.offboarding_tables() as o loop
        v_value := tenancy.offboarding_value(p_tenant_id, v_tenant.key, v_table.value_kind);
        continue when v_value is null;
        if v_table.table_name = 'tenancy.connector_endpoints' then
            delete from tenancy.connector_secrets as s
            using tenancy.connector_endpoints as e
            where e.tenant_id = p_tenant_id and s.endpoint_id = e.id;
        end if;
        v_count := tenancy.offboarding_delete(
            v_table.table_name, v_table.predicate, v_value, case when not v_table.whole then v_budget end
        );
        v_total := v_total + v_count;
        v_budget := v_budget - v_count;
        exit when v_budget <= 0;
    end loop;
    if v_total = 0 then
        delete from tenancy.api_key_secrets as s where s.tenant_id = p_tenant_id;
        delete from tenancy.invitation_tokens as s where s.tenant_id = p_tenant_id;
        delete from tenancy.move_markers as m where m.tenant_id = p_tenant_id;
        if not p_keep_claims then
            delete from tenancy.domain_claims as c where c.tenant_id = p_tenant_id;
        end if;
    end if;
    -- The fence holds again for whatever else this transaction does.
    perform setval('tenancy.context_fence'::regclass, ~currval('tenancy.context_key'::regclass), true);
    perform tenancy.clear_context();
    return v_total;
end
$$;

comment on function tenancy.release_moved_tenant(uuid, integer, boolean) is
'For tenancy_admin (tenant moves): deletes up to p_batch_rows of the fenced tenant''s rows here, '
'children first, and once none is left its platform rows (hostnames too unless p_keep_claims); '
'returns the rows deleted, 0 when done. The audit trail and security events stay. 22023 for a '
'bad batch size, P0002 for an unknown tenant, 55000 when the tenant is not fenced here.';

revoke all on function tenancy.release_moved_tenant(uuid, integer, boolean) from public;
grant execute on function tenancy.release_moved_tenant(uuid, integer, boolean) to tenancy_admin;
