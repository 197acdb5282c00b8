-- tenancy.require_slug_available: refuse a slug that is reserved, or still held by a renamed tenant's grace period.

-- For create_tenant and rename_tenant_slug. A slug whose old subdomains still resolve for the
-- tenant that gave it up (tenancy.rename_tenant_slug) is that tenant's until the grace period
-- ends; p_tenant_id, when given, is the tenant asking (taking back its own old slug is fine).
create or replace function tenancy.require_slug_available(p_slug text, p_tenant_id uuid default null)
returns void
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if exists (select from tenancy.domain_config as c where p_slug = any(c.reserved_labels)) then
        raise exception using
            errcode = '22023',
            message = format('tenant slug %L is reserved', p_slug),
            hint = 'Reserved labels (tenancy.domain_config.reserved_labels, set with '
                'tenancy.configure_domains) never name a tenant.';
    end if;
    if exists (
        select from tenancy.domain_claims as c
        where
            c.kind = 'platform'
            and c.tenant_id is distinct from p_tenant_id
            and c.expires_at > now()
            and c.hostname = any(
                select p_slug || '.' || b.base
                from tenancy.domain_config as cfg cross join unnest(cfg.base_domains) as b (base)
            )
    ) then
        raise exception using
            errcode = '23505',
            message = format('tenant slug %L is already taken', p_slug),
            hint = 'A renamed tenant''s old slug stays its own until the grace period ends.';
    end if;
end
$$;

comment on function tenancy.require_slug_available(text, uuid) is
'pgtenancy internal: 22023 when p_slug is a reserved label; 23505 when another tenant (not '
'p_tenant_id) renamed away from it and its old subdomains still resolve (the grace period).';

revoke all on function tenancy.require_slug_available(text, uuid) from public;
