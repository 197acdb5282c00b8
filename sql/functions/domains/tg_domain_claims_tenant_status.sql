-- tenancy.tg_domain_claims_tenant_status: keep domain_claims.tenant_active equal to the tenant's status, and its trigger on tenancy.tenants.

-- resolve_tenant reads one index entry and no tenant row: whether the tenant is active rides in
-- domain_claims, written here whenever a tenant's status changes, whoever changes it
-- (suspend_tenant, reactivate_tenant, or an UPDATE by hand). The trigger is created with its
-- function: it cannot exist before it, and versioned migrations create no functions.
create or replace function tenancy.tg_domain_claims_tenant_status()
returns trigger
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    update tenancy.domain_claims as c
    set tenant_active = (new.status = 'active')
    where c.tenant_id = new.id and c.tenant_active is distinct from (new.status = 'active');
    return null;
end
$$;

comment on function tenancy.tg_domain_claims_tenant_status() is
'pgtenancy internal: trigger on tenancy.tenants; sets domain_claims.tenant_active of the tenant''s '
'hostnames when its status changes, so tenancy.resolve_tenant reads no tenant row.';

revoke all on function tenancy.tg_domain_claims_tenant_status() from public;

drop trigger if exists tenancy_domain_claims_tenant_status on tenancy.tenants;
create trigger tenancy_domain_claims_tenant_status
after update of status on tenancy.tenants
for each row
when (old.status operator (pg_catalog.<>) new.status)  -- noqa: LT01
execute function tenancy.tg_domain_claims_tenant_status();
comment on trigger tenancy_domain_claims_tenant_status on tenancy.tenants is
'Keeps tenancy.domain_claims.tenant_active equal to the tenant''s status being active.';
