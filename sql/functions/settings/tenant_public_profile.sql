-- tenancy.tenant_public_profile: what a login page shows for a host, before anyone is authenticated.

-- Callable by tenancy_app without a context (the login page comes before the token), so it
-- returns only what the tenant shows the world anyway: its display name, branding, primary
-- domain and whether it is active — never its id, slug, key, members or settings beyond
-- branding. A suspended tenant still has a profile (active false: the page can say so); a
-- deleted one, an unknown host, a reserved label, an IP literal and an unverified custom domain
-- have none (no row). The host is read as resolve_tenant reads it (tenancy.normalized_host:
-- TN010 naming a malformed one).
create or replace function tenancy.tenant_public_profile(p_host text)
returns table (display_name text, branding jsonb, primary_domain text, active boolean)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_host text := tenancy.normalized_host(p_host);
    v_tenant_id uuid;
begin
    if v_host is null then
        return;
    end if;
    -- The claim resolves whatever the tenant's status (tenant_active is resolve_tenant's test).
    select c.tenant_id into v_tenant_id
    from tenancy.domain_claims as c
    where
        c.hostname = v_host
        and c.resolves
        and (c.expires_at is null or c.expires_at > now());
    if v_tenant_id is null then
        return;
    end if;
    return query
    select
        coalesce(s.branding ->> 'display_name', t.name::text),
        coalesce(s.branding::jsonb, '{}'::jsonb),
        (
            select d.hostname from tenancy.tenant_domains as d
            where d.tenant_id = t.id and d.is_primary
        ),
        t.status = 'active'
    from tenancy.tenants as t
    left join tenancy.tenant_settings as s on s.tenant_id = t.id
    where t.id = v_tenant_id and t.status <> 'deleted';
end
$$;

comment on function tenancy.tenant_public_profile(text) is
'For tenancy_app and tenancy_service, without a context: the display name (branding''s, else the '
'tenant''s name), branding (''{}'' when none), primary domain and whether the tenant is active, '
'for the host a login page is served on; no row for unknown hosts, reserved labels, IP literals, '
'unverified custom domains and deleted tenants. TN010 naming a malformed host.';

revoke all on function tenancy.tenant_public_profile(text) from public;
grant execute on function tenancy.tenant_public_profile(text) to tenancy_app, tenancy_service;
