-- tenancy.require_tenant_not_deleted: raise unless the tenant exists and is not deleted; lock its row until commit.

-- For the functions that write something of a tenant without a context (tenancy_admin's
-- branding, region, feature flags, issuers): a deleted (offboarded) tenant gets nothing new. The
-- row is locked FOR SHARE, so the last step of an offboarding (which locks it FOR UPDATE) and
-- such a write take turns: the write waits and then sees the tenant deleted, or the offboarding
-- waits and then deletes what the write added.
create or replace function tenancy.require_tenant_not_deleted(p_tenant_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_status text;
begin
    select t.status into v_status from tenancy.tenants as t where t.id = p_tenant_id for share;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('tenant %s does not exist', coalesce(p_tenant_id::text, 'NULL'));
    end if;
    if v_status = 'deleted' then
        raise exception using
            errcode = '55000',
            message = format('tenant %s is deleted: nothing more is stored for it', p_tenant_id),
            hint = 'Its deletion certificate: tenancy.deletion_certificate().';
    end if;
end
$$;

comment on function tenancy.require_tenant_not_deleted(uuid) is
'pgtenancy internal: P0002 when the tenant does not exist, 55000 when it is deleted; locks its '
'row FOR SHARE until the transaction ends.';

revoke all on function tenancy.require_tenant_not_deleted(uuid) from public;
