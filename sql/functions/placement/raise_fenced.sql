-- tenancy.raise_fenced: raise TN021 for a write of a fenced tenant, naming where its rows are going.

create or replace function tenancy.raise_fenced(p_op text, p_schema text, p_table text)
returns void
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := tenancy.context_tenant_id(null::text[]);
    v_reason text;
    v_placement text;
    v_epoch bigint;
begin
    select t.fence_reason, t.placement, t.placement_epoch into v_reason, v_placement, v_epoch
    from tenancy.tenants as t
    where t.id = v_tenant;
    raise exception using
        errcode = 'TN021',
        message = format(
            'tenant %s is fenced on this placement (%s): %s on %I.%I is refused',
            v_tenant, coalesce(v_reason, 'fence lifted since the context was set'), p_op, p_schema, p_table
        ),
        detail = format('placement %s, epoch %s', v_placement, v_epoch),
        hint = 'Retry the transaction on the tenant''s placement (tenancy.tenant_placement); reads continue here.';
end
$$;

comment on function tenancy.raise_fenced(text, text, text) is
'pgtenancy internal: raises TN021 for a write (p_op on p_schema.p_table) in the context of a '
'tenant whose writes are fenced, naming the fence''s reason and the placement recorded here.';

revoke all on function tenancy.raise_fenced(text, text, text) from public;
grant execute on function tenancy.raise_fenced(text, text, text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
