-- tenancy.add_custom_domain: an owner or admin claims a custom domain for the current tenant; returns the TXT record to publish.

-- The claim is one row in tenancy.domain_claims, whose primary key keeps a hostname unique
-- across tenants: of two tenants claiming one hostname at once, the second waits for the first
-- and is refused once it commits (23505; 40001 under REPEATABLE READ or SERIALIZABLE, whose
-- retry then gets 23505). The refusal never names the tenant holding the domain. The domain
-- resolves only once tenancy.verify_custom_domain has seen the TXT value.
create or replace function tenancy.add_custom_domain(p_hostname text, out txt_name text, out txt_value text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_caller record := tenancy.require_member_manager('domains');
    v_host text := tenancy.normalized_host(p_hostname);  -- TN010 when malformed
    v_base text;
    v_token text;
    v_claimed text;
begin
    if v_host is null then
        raise exception using
            errcode = 'TN011',
            message = format('custom domain %L is an IP address, not a domain name', p_hostname);
    end if;
    if strpos(v_host, '.') = 0 or length(v_host) > 232 then
        raise exception using
            errcode = 'TN011',
            message = format(
                'custom domain %L must have two labels or more and at most 232 characters', v_host
            ),
            hint = 'Its TXT record name, _pgtenancy-challenge.<domain>, must fit in 253 characters.';
    end if;
    select b.base into v_base
    from tenancy.domain_config as c cross join unnest(c.base_domains) as b (base)
    where v_host = b.base or v_host like '%.' || b.base
    limit 1;
    if found then
        raise exception using
            errcode = 'TN011',
            message = format('custom domain %L is under the platform''s base domain %L', v_host, v_base),
            hint = format('Subdomains of %s are the tenants'' slugs; they are not claimed.', v_base);
    end if;
    if exists (
        select from tenancy.tenant_domains as d
        where d.tenant_id = v_caller.tenant_id and d.hostname = v_host
    ) then
        raise exception using
            errcode = '23505',
            message = format('%L is already a domain of tenant %s', v_host, v_caller.tenant_id);
    end if;
    insert into tenancy.domain_claims (hostname, tenant_id, kind, resolves)
    values (v_host, v_caller.tenant_id, 'custom', false)
    on conflict on constraint domain_claims_pkey do nothing
    returning hostname into v_claimed;
    if v_claimed is null then
        raise exception using
            errcode = '23505',
            message = format('custom domain %L is already claimed', v_host),
            hint = 'Another tenant holds it; it must remove it first.';
    end if;
    v_token := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
    insert into tenancy.tenant_domains (tenant_id, hostname, kind, status, txt_token)
    values (v_caller.tenant_id, v_host, 'custom', 'pending', v_token);
    txt_name := '_pgtenancy-challenge.' || v_host;
    txt_value := 'pgtenancy-verification=' || v_token;
end
$$;

comment on function tenancy.add_custom_domain(text) is
'Owners and admins of the current tenant (tenancy_app): claims a custom domain, pending until '
'tenancy.verify_custom_domain sees the TXT record; returns its name (_pgtenancy-challenge.<domain>) '
'and value (pgtenancy-verification=<token>). TN010 when malformed; TN011 for an IP address, a '
'single label or a name under a base domain; 23505 when claimed already (by another tenant: '
'without saying which).';

revoke all on function tenancy.add_custom_domain(text) from public;
grant execute on function tenancy.add_custom_domain(text) to tenancy_app;
