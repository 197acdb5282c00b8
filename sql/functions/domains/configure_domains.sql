-- tenancy.configure_domains: the platform's base domains, reserved labels and slug-rename grace period.

-- Every tenant then has <slug>.<base> for every base (tenancy.sync_platform_domains, run for
-- each tenant here); subdomains of a base no longer listed stop resolving at once. Refused, with
-- nothing changed: a malformed base domain (TN010) or an IP literal; a base inside another one
-- (a.example.com with example.com: a.example.com would be both a tenant's subdomain and a base);
-- a reserved label that is not a DNS label, or that is a tenant's slug (rename it first); a
-- custom domain of a tenant at or under a new base; a negative grace period.
create or replace function tenancy.configure_domains(
    p_base_domains text[],
    p_reserved text[] default null,
    p_slug_grace interval default interval '30 days'
)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_raw text;
    v_host text;
    v_bases text[] := '{}'::text[];
    v_reserved text[];
    v_conflict text;
    v_tenant_id uuid;
begin
    foreach v_raw in array coalesce(p_base_domains, '{}') loop
        v_host := tenancy.normalized_host(v_raw);  -- TN010 when malformed
        if v_host is null then
            raise exception using
                errcode = '22023',
                message = format('base domain %L is not a DNS name', v_raw);
        end if;
        if not v_host = any(v_bases) then
            v_bases := v_bases || v_host;
        end if;
    end loop;
    select a.host || ' is inside ' || b.host into v_conflict
    from unnest(v_bases) as a (host) cross join unnest(v_bases) as b (host)
    where a.host like '%.' || b.host
    limit 1;
    if found then
        raise exception using
            errcode = '22023',
            message = format('base domain %s: one base domain cannot hold another', v_conflict);
    end if;
    if p_slug_grace is null or p_slug_grace < interval '0' then
        raise exception using
            errcode = '22023',
            message = format('slug grace period %L must be zero or more', p_slug_grace);
    end if;
    if p_reserved is not null then
        v_reserved := array(select distinct lower(btrim(r)) from unnest(p_reserved) as r order by 1);
        select r into v_conflict from unnest(v_reserved) as r
        where r is null or r !~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
        limit 1;
        if found then
            raise exception using
                errcode = '22023',
                message = format('reserved label %L is not a DNS label', v_conflict);
        end if;
    end if;
    -- Locked: tenants created or renamed meanwhile wait, and then see the new configuration.
    perform from tenancy.domain_config as c for update;
    if p_reserved is null then
        update tenancy.domain_config set reserved_labels = default;
        select c.reserved_labels into v_reserved from tenancy.domain_config as c;
    end if;
    select string_agg(format('%L', t.slug), ', ' order by t.slug) into v_conflict
    from tenancy.tenants as t
    where t.slug = any(v_reserved) and t.status <> 'deleted';
    if v_conflict is not null then
        raise exception using
            errcode = '22023',
            message = format('reserved labels include the slug of a tenant: %s', v_conflict),
            hint = 'Rename the tenant first (tenancy.rename_tenant_slug), or leave the label out.';
    end if;
    select d.hostname into v_conflict
    from tenancy.domain_claims as d cross join unnest(v_bases) as b (base)
    where d.kind = 'custom' and (d.hostname = b.base or d.hostname like '%.' || b.base)
    limit 1;
    if found then
        raise exception using
            errcode = '22023',
            message = format('custom domain %L is inside a new base domain', v_conflict),
            hint = 'A custom domain must be removed (tenancy.remove_custom_domain) before its '
                'domain becomes a base domain.';
    end if;
    update tenancy.domain_config
    set base_domains = v_bases, reserved_labels = v_reserved, slug_grace = p_slug_grace, updated_at = now();
    -- Old subdomains of a slug that is now reserved stop resolving at once.
    delete from tenancy.domain_claims as c
    where c.kind = 'platform' and c.expires_at is not null and split_part(c.hostname, '.', 1) = any(v_reserved);
    delete from tenancy.tenant_domains as d
    where d.kind = 'platform' and d.expires_at is not null and split_part(d.hostname, '.', 1) = any(v_reserved);
    for v_tenant_id in select t.id from tenancy.tenants as t order by t.id loop
        perform tenancy.sync_platform_domains(v_tenant_id);
    end loop;
end
$$;

comment on function tenancy.configure_domains(text[], text[], interval) is
'For tenancy_admin: the platform''s base domains (every tenant gets <slug>.<base> for each), the '
'labels that never name a tenant (NULL: the default list, tenancy.domain_config''s column '
'default: www, api, app, admin, mail, ...), and how long a renamed slug''s old subdomains keep '
'resolving (p_slug_grace). 22023 or TN010 naming the value for a bad base domain or label; 22023 '
'when a reserved label is a tenant''s slug or a custom domain lies inside a new base.';

revoke all on function tenancy.configure_domains(text[], text[], interval) from public;
grant execute on function tenancy.configure_domains(text[], text[], interval) to tenancy_admin;
