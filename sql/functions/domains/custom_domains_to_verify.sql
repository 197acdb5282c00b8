-- tenancy.custom_domains_to_verify: the pending and failed custom domains, with the TXT record name to look up.

create or replace function tenancy.custom_domains_to_verify()
returns table (hostname text, txt_name text, status text)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
    select d.hostname, '_pgtenancy-challenge.' operator(pg_catalog.||) d.hostname, d.status
    from tenancy.tenant_domains as d
    where d.kind operator(pg_catalog.=) 'custom' and d.status operator(pg_catalog.<>) 'verified'
    order by d.hostname
$$;

comment on function tenancy.custom_domains_to_verify() is
'For tenancy_service (pgtenancy domains verify): every pending or failed custom domain, the TXT '
'record name to look up for it, and its status; never the expected value.';

revoke all on function tenancy.custom_domains_to_verify() from public;
grant execute on function tenancy.custom_domains_to_verify() to tenancy_service;
