-- tenancy.remove_custom_domain: an owner or admin removes a custom domain of the current tenant; it stops resolving and is free to claim.

create or replace function tenancy.remove_custom_domain(p_hostname text)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_caller record := tenancy.require_member_manager('domains');
    v_host text := tenancy.normalized_host(p_hostname);  -- TN010 when malformed
    v_domain record;
begin
    select d.kind, d.is_primary into v_domain
    from tenancy.tenant_domains as d
    where d.tenant_id = v_caller.tenant_id and d.hostname = v_host
    for update;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('%L is not a domain of tenant %s', coalesce(v_host, p_hostname), v_caller.tenant_id);
    end if;
    if v_domain.kind = 'platform' then
        raise exception using
            errcode = '55000',
            message = format('%L is a platform subdomain of tenant %s and cannot be removed', v_host, v_caller.tenant_id),
            hint = 'Platform subdomains follow the slug (tenancy.rename_tenant_slug).';
    end if;
    delete from tenancy.tenant_domains as d where d.tenant_id = v_caller.tenant_id and d.hostname = v_host;
    delete from tenancy.domain_claims as c where c.hostname = v_host and c.tenant_id = v_caller.tenant_id;
    if v_domain.is_primary then
        perform tenancy.sync_platform_domains(v_caller.tenant_id);  -- a platform subdomain becomes primary
    end if;
end
$$;

comment on function tenancy.remove_custom_domain(text) is
'Owners and admins of the current tenant (tenancy_app): removes one of its custom domains, which '
'stops resolving at once and may then be claimed by any tenant; a primary one hands over to the '
'first platform subdomain. P0002 when it is not the tenant''s; 55000 for a platform subdomain.';

revoke all on function tenancy.remove_custom_domain(text) from public;
grant execute on function tenancy.remove_custom_domain(text) to tenancy_app;
