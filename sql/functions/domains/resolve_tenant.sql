-- tenancy.resolve_tenant: the tenant a Host header names, or NULL.

-- One probe of domain_claims' primary key, an index-only scan: the columns read ride in the
-- index, the tenant's status included (tenant_active, kept by a trigger). Platform subdomains are
-- materialised there for every base domain, so nothing is derived here: a reserved label, a
-- multi-level name under a base (a.b.example.com) and an unverified custom domain are simply
-- not resolvable rows.
create or replace function tenancy.resolve_tenant(p_host text)
returns uuid
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_host text := tenancy.normalized_host(p_host);  -- TN010 when malformed; NULL for IP literals
    v_tenant_id uuid;
begin
    if v_host is null then
        return null;
    end if;
    select c.tenant_id into v_tenant_id
    from tenancy.domain_claims as c
    where
        c.hostname = v_host
        and c.resolves
        and c.tenant_active
        and (c.expires_at is null or c.expires_at > now());
    return v_tenant_id;
end
$$;

comment on function tenancy.resolve_tenant(text) is
'For tenancy_app and tenancy_service: the id of the active tenant a raw Host header names (a '
'platform subdomain <slug>.<base domain>, a renamed slug''s old one during its grace period, or a '
'verified custom domain), after trimming, lower-casing and dropping :port and a trailing dot; '
'NULL for NULL, unknown hosts, IP literals, reserved labels, unverified custom domains and '
'suspended or deleted tenants. TN010 naming the value when the host is not a DNS name.';

revoke all on function tenancy.resolve_tenant(text) from public;
grant execute on function tenancy.resolve_tenant(text) to tenancy_app, tenancy_service;
