-- tenancy.log_move: write a move's report into the tenant's audit trail on this database.

create or replace function tenancy.log_move(p_tenant_id uuid, p_action text, p_report jsonb)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_key text;
    v_id bigint;
begin
    if p_action is null or p_action <> all(array['tenant.move_started', 'tenant.moved', 'tenant.move_aborted', 'tenant.move_released']) then
        raise exception using
            errcode = '22023',
            message = format('invalid move action %L', left(p_action, 100));
    end if;
    if p_report is null or jsonb_typeof(p_report) <> 'object' then
        raise exception using errcode = '22023', message = 'a move report is a JSON object';
    end if;
    select t.key into v_key from tenancy.tenants as t where t.id = p_tenant_id;
    if not found then
        raise exception using errcode = 'P0002', message = format('tenant %s does not exist', p_tenant_id);
    end if;
    perform tenancy.establish_context(p_tenant_id, null, 'service', v_key);
    v_id := tenancy.log_audit(p_action, 'tenant', p_tenant_id::text, null, p_report, '{}');
    perform tenancy.clear_context();
    return v_id;
end
$$;

comment on function tenancy.log_move(uuid, text, jsonb) is
'For tenancy_admin (tenant moves): records a move''s step (tenant.move_started, tenant.moved, '
'tenant.move_aborted, tenant.move_released) with its report (placements, times, counts, '
'checksums, fence duration) in the tenant''s audit trail here; returns the audit row''s id. '
'22023 for another action or a report that is not an object, P0002 for an unknown tenant.';

revoke all on function tenancy.log_move(uuid, text, jsonb) from public;
grant execute on function tenancy.log_move(uuid, text, jsonb) to tenancy_admin;
