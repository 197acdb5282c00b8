-- tenancy.set_tenant_branding: tenancy_admin sets the branding of any tenant.

-- The same rules as tenancy.set_branding (tenancy.checked_branding); the document replaces the
-- branding and is returned as stored.
create or replace function tenancy.set_tenant_branding(p_tenant_id uuid, p_branding jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_branding tenancy.branding := tenancy.checked_branding(p_branding);
begin
    perform tenancy.require_tenant_not_deleted(p_tenant_id);  -- P0002 unknown, 55000 deleted
    insert into tenancy.tenant_settings as s (tenant_id, branding)
    values (p_tenant_id, v_branding)
    on conflict (tenant_id) do update
        set branding = excluded.branding, updated_at = now();
    return v_branding;
end
$$;

comment on function tenancy.set_tenant_branding(uuid, jsonb) is
'For tenancy_admin: replace the branding of any tenant with p_branding (tenancy.branding) and '
'get it back as stored. 22023 names an invalid field and its value; P0002 for an unknown tenant, '
'55000 for a deleted one.';

revoke all on function tenancy.set_tenant_branding(uuid, jsonb) from public;
grant execute on function tenancy.set_tenant_branding(uuid, jsonb) to tenancy_admin;
