-- tenancy.forget_verified_tokens: empty the verified-token cache slots of an issuer (or of one of its keys).

create or replace function tenancy.forget_verified_tokens(p_issuer_id bigint, p_kid text)
returns void
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
    -- Slots are emptied, not deleted: the cache keeps its fixed set of rows, which
    -- authentication only ever updates. A rare scan of the bounded table.
    update tenancy.verified_tokens as t
    set token_hash = '\x'::bytea, issuer_id = null, kid = null, subject = null, tenant_claim = null,
        issuer_tenant_id = null, expires_at = '-infinity'
    where t.token_hash operator(pg_catalog.<>) '\x'::bytea
        and t.issuer_id is not distinct from p_issuer_id
        and (p_kid is null or t.kid operator(pg_catalog.=) p_kid)
$$;

comment on function tenancy.forget_verified_tokens(bigint, text) is
'pgtenancy internal: empties the verified-token cache slots holding tokens of issuer p_issuer_id '
'(of its key p_kid only, when not NULL; p_issuer_id NULL: the HS256 tokens of the shared secret), '
'so that they are verified again or refused.';

revoke all on function tenancy.forget_verified_tokens(bigint, text) from public;
