-- tenancy.sync_platform_domains: a tenant's platform subdomains, <slug>.<base>, made to match its slug and the base domains.

-- Called by create_tenant, rename_tenant_slug and configure_domains. Drops the tenant's expired
-- grace-period subdomains and those of base domains no longer configured; adds (or takes back
-- from a grace period, after a rename back) <slug>.<base> for every base; makes the first base's
-- subdomain primary when the tenant has no primary domain. The configuration row is read FOR
-- SHARE, so a concurrent configure_domains waits for, or is waited for by, this change.
create or replace function tenancy.sync_platform_domains(p_tenant_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_slug text;
    v_status text;
    v_bases text[];
    v_hosts text[];
    v_taken text;
begin
    select c.base_domains into v_bases from tenancy.domain_config as c for share;
    select t.slug, t.status into v_slug, v_status from tenancy.tenants as t where t.id = p_tenant_id;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('tenant %s does not exist', coalesce(p_tenant_id::text, 'NULL'));
    end if;
    -- A deleted (offboarded) tenant has no hostname, and gets none back (configure_domains).
    if v_status = 'deleted' then
        return;
    end if;
    v_hosts := array(
        select v_slug || '.' || b.base from unnest(coalesce(v_bases, '{}')) with ordinality as b (base, n)
        order by b.n
    );
    delete from tenancy.domain_claims as c
    where
        c.tenant_id = p_tenant_id and c.kind = 'platform'
        and (c.expires_at <= now() or (c.expires_at is null and c.hostname <> all(v_hosts)));
    delete from tenancy.tenant_domains as d
    where
        d.tenant_id = p_tenant_id and d.kind = 'platform'
        and (d.expires_at <= now() or (d.expires_at is null and d.hostname <> all(v_hosts)));
    -- Another tenant's old subdomains on these hostnames, their grace period over, are gone.
    with gone as (
        delete from tenancy.domain_claims as c
        where c.hostname = any(v_hosts) and c.kind = 'platform' and c.expires_at <= now()
        returning c.tenant_id, c.hostname
    )
    delete from tenancy.tenant_domains as d
    using gone as g
    where d.tenant_id = g.tenant_id and d.hostname = g.hostname;
    -- Another tenant's row on one of these hostnames: the slug checks keep it from happening.
    select c.hostname into v_taken
    from tenancy.domain_claims as c
    where c.hostname = any(v_hosts) and c.tenant_id <> p_tenant_id
    limit 1;
    if found then
        raise exception using
            errcode = '23505',
            message = format('hostname %L is already claimed', v_taken);
    end if;
    insert into tenancy.domain_claims (hostname, tenant_id, kind, resolves, tenant_active, expires_at)
    select h.host, p_tenant_id, 'platform', true, v_status = 'active', null from unnest(v_hosts) as h (host)
    on conflict (hostname) do update set expires_at = null
    where domain_claims.tenant_id = excluded.tenant_id;
    insert into tenancy.tenant_domains (tenant_id, hostname, kind)
    select p_tenant_id, h.host, 'platform' from unnest(v_hosts) as h (host)
    on conflict (tenant_id, hostname) do update set expires_at = null;
    if cardinality(v_hosts) > 0 and not exists (
        select from tenancy.tenant_domains as d where d.tenant_id = p_tenant_id and d.is_primary
    ) then
        update tenancy.tenant_domains as d set is_primary = true
        where d.tenant_id = p_tenant_id and d.hostname = v_hosts[1];
    end if;
end
$$;

comment on function tenancy.sync_platform_domains(uuid) is
'pgtenancy internal: gives a tenant <slug>.<base> for every configured base domain, drops its '
'expired grace-period subdomains and those of removed base domains, and makes the first base''s '
'subdomain primary when it has no primary domain. Nothing for a deleted tenant.';

revoke all on function tenancy.sync_platform_domains(uuid) from public;
