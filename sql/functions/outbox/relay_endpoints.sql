-- tenancy.relay_endpoints: the URLs and valid signing secrets of connector endpoints, for the relay alone.

create or replace function tenancy.relay_endpoints(p_endpoint_ids uuid[])
returns table (
    endpoint_id uuid,
    tenant_id uuid,
    kind text,
    channel text,
    enabled boolean,
    url text,
    signing_secrets text[]
)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
    select e.id, e.tenant_id, e.kind, e.channel, e.enabled,
        (select s.url from tenancy.connector_secrets as s where s.endpoint_id operator (pg_catalog.=) e.id
         order by s.secret_id desc limit 1),
        array(
            select s.signing_secret from tenancy.connector_secrets as s
            where s.endpoint_id operator (pg_catalog.=) e.id and s.signing_secret is not null
                and (s.expires_at is null or s.expires_at operator (pg_catalog.>) pg_catalog.now())
            order by s.secret_id desc
        )
    from tenancy.connector_endpoints as e
    where e.id operator (pg_catalog.=) any(p_endpoint_ids)
$$;

comment on function tenancy.relay_endpoints(uuid[]) is
'For the relay (tenancy_service) only: each endpoint of p_endpoint_ids with its tenant, kind, '
'channel, whether it is enabled, its URL and its signing secrets still valid, newest first (a '
'delivery carries a signature for each). Endpoints that no longer exist are absent.';

revoke all on function tenancy.relay_endpoints(uuid[]) from public;
grant execute on function tenancy.relay_endpoints(uuid[]) to tenancy_service;
