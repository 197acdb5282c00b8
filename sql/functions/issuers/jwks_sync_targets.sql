-- tenancy.jwks_sync_targets: the issuers whose JWKS pgtenancy jwks sync fetches.

create or replace function tenancy.jwks_sync_targets()
returns table (issuer text, jwks_url text, jwks_synced_at timestamptz)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
    -- One URL per issuer name: set_jwks stores the keys for every issuer of that name.
    select distinct on (i.issuer) i.issuer, i.jwks_url, i.jwks_synced_at
    from tenancy.jwt_issuers as i
    where i.jwks_url is not null
    order by i.issuer, i.tenant_id nulls first, i.id
$$;

comment on function tenancy.jwks_sync_targets() is
'For tenancy_admin: each trusted issuer with a JWKS URL, and when its keys were last stored; '
'what pgtenancy jwks sync fetches.';

revoke all on function tenancy.jwks_sync_targets() from public;
grant execute on function tenancy.jwks_sync_targets() to tenancy_admin;
