-- tenancy.set_branding: owners and admins set the branding of the current tenant.

-- The document given replaces the branding (see tenancy.checked_branding for its rules); '{}'
-- removes every field. Returns the branding as stored. Invalid input raises 22023 before
-- anything is written. Platform operators use tenancy.set_tenant_branding(tenant, branding).
create or replace function tenancy.set_branding(p_branding jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.current_tenant_id();
    v_role text := tenancy.current_member_role();
    v_branding tenancy.branding;
    v_caller record;
begin
    if v_tenant_id is null then
        raise exception using
            errcode = 'TN001',
            message = 'no tenant context: tenancy.set_branding() needs tenancy.authenticate() or '
                'tenancy.set_context() earlier in the transaction';
    end if;
    if v_role not in ('owner', 'admin', 'service') then
        raise exception using
            errcode = '42501',
            message = format('role %s of tenant %s cannot change its branding', v_role, v_tenant_id),
            hint = 'Only owners and admins change the branding.';
    end if;
    v_branding := tenancy.checked_branding(p_branding);
    -- Locks the tenant row and reads the caller's membership again: a member demoted or removed
    -- since the context was set is refused (42501), as for member management.
    v_caller := tenancy.require_member_manager();
    insert into tenancy.tenant_settings as s (tenant_id, branding)
    values (v_caller.tenant_id, v_branding)
    on conflict (tenant_id) do update
        set branding = excluded.branding, updated_at = now();
    return v_branding;
end
$$;

comment on function tenancy.set_branding(jsonb) is
'Owners and admins of the current tenant (and service contexts) replace its branding with '
'p_branding (tenancy.branding: display_name, logo_url, colours, support_email) and get it back '
'as stored. 22023 names an invalid field and its value; nothing is written.';

revoke all on function tenancy.set_branding(jsonb) from public;
grant execute on function tenancy.set_branding(jsonb) to tenancy_app;
