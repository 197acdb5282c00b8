-- tenancy.set_primary_domain: an owner or admin makes one of the current tenant's resolving domains its primary one.

create or replace function tenancy.set_primary_domain(p_hostname text)
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
    select d.kind, d.status, d.expires_at into v_domain
    from tenancy.tenant_domains as d
    where d.tenant_id = v_caller.tenant_id and d.hostname = v_host
    for update;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('%L is not a domain of tenant %s', coalesce(v_host, p_hostname), v_caller.tenant_id);
    end if;
    if v_domain.kind = 'custom' and v_domain.status <> 'verified' then
        raise exception using
            errcode = '55000',
            message = format('custom domain %L is %s, not verified: it cannot be primary', v_host, v_domain.status);
    end if;
    if v_domain.expires_at is not null then
        raise exception using
            errcode = '55000',
            message = format('%L belongs to a previous slug of tenant %s: it cannot be primary', v_host, v_caller.tenant_id);
    end if;
    update tenancy.tenant_domains as d set is_primary = false
    where d.tenant_id = v_caller.tenant_id and d.is_primary and d.hostname <> v_host;
    update tenancy.tenant_domains as d set is_primary = true
    where d.tenant_id = v_caller.tenant_id and d.hostname = v_host;
end
$$;

comment on function tenancy.set_primary_domain(text) is
'Owners and admins of the current tenant (tenancy_app): makes one of its domains primary (the '
'one it is known by); a custom domain must be verified, a previous slug''s subdomain cannot be. '
'P0002 when it is not the tenant''s; 55000 otherwise refused.';

revoke all on function tenancy.set_primary_domain(text) from public;
grant execute on function tenancy.set_primary_domain(text) to tenancy_app;
