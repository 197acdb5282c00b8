-- tenancy.set_tenant_status: move a tenant between statuses and make open contexts revalidate.

create or replace function tenancy.set_tenant_status(p_tenant_id uuid, p_status text, p_from text[])
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_status text;
begin
    select t.status into v_status from tenancy.tenants as t where t.id = p_tenant_id for update;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('tenant %s does not exist', coalesce(p_tenant_id::text, 'NULL'));
    end if;
    if v_status = p_status then
        return;
    end if;
    if not v_status = any(p_from) then
        raise exception using
            errcode = '55000',
            message = format('tenant %s is %s and cannot become %s', p_tenant_id, v_status, p_status);
    end if;
    -- An offboarding under way (tenancy.offboard_tenant) goes on to the end: half of the
    -- tenant's rows may be gone.
    if p_status = 'active' and exists (
        select from tenancy.tenant_offboardings as o where o.tenant_id = p_tenant_id and o.finished_at is null
    ) then
        raise exception using
            errcode = '55000',
            message = format('tenant %s is being offboarded and cannot become active', p_tenant_id),
            hint = 'tenancy.offboard_tenant (or CALL tenancy.offboard) finishes the offboarding.';
    end if;
    update tenancy.tenants as t
    set status = p_status, updated_at = now()
    where t.id = p_tenant_id;
end
$$;

comment on function tenancy.set_tenant_status(uuid, text, text[]) is
'pgtenancy internal: sets a tenant''s status when it is one of p_from (no-op when unchanged); '
'55000 otherwise, and for active while the tenant is being offboarded.';

revoke all on function tenancy.set_tenant_status(uuid, text, text[]) from public;
