-- tenancy.context_revalidate: recheck a context made before a tenant or membership change.

create or replace function tenancy.context_revalidate(p_context text)
returns boolean
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := split_part(p_context, '|', 2)::uuid;
    v_user_id uuid := nullif(split_part(p_context, '|', 3), '')::uuid;
    v_role text := split_part(p_context, '|', 4);
begin
    -- Answer only for this transaction's own context, fingerprint included (as context_checked
    -- verifies it); otherwise the function would tell any caller who belongs to which tenant.
    if p_context is distinct from current_setting('tenancy.context', true)
        or int8send(currval('tenancy.context_fingerprint'::regclass))
        is distinct from tenancy.context_fingerprint_of(p_context) then
        return false;
    end if;
    if not exists (
        select 1 from tenancy.tenants as t
        where t.id = v_tenant_id and t.status = 'active'
    ) then
        return false;
    end if;
    if v_user_id is null then
        return v_role = 'service';
    end if;
    return exists (
        select 1 from tenancy.memberships as m
        where m.tenant_id = v_tenant_id and m.user_id = v_user_id and m.role = v_role
    );
end
$$;

comment on function tenancy.context_revalidate(text) is
'pgtenancy internal: whether this transaction''s own context (fingerprint checked) still has an '
'active tenant and an unchanged membership; false for any other value.';

revoke all on function tenancy.context_revalidate(text) from public;
grant execute on function tenancy.context_revalidate(text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
