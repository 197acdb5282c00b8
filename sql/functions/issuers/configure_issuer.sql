-- tenancy.configure_issuer: trust a token issuer, platform-wide or for one tenant's own identity provider.

create or replace function tenancy.configure_issuer(
    p_issuer text,
    p_audience text[],
    p_jwks_url text default null,
    p_algorithms text[] default array['RS256'],
    p_leeway interval default interval '60 seconds',
    p_tenant_id uuid default null,
    p_tenant_claim text default 'tenant_id',
    p_max_lifetime interval default null
)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_id bigint;
    v_bad text;
begin
    -- Each rule is checked here, so that the message names the refused value.
    if p_issuer is null or length(p_issuer) not between 1 and 2048 or p_issuer ~ '[[:cntrl:][:space:]]' then
        raise exception using
            errcode = '22023',
            message = format(
                'issuer %s must be 1 to 2048 characters without spaces or control characters',
                coalesce(quote_literal(tenancy.token_excerpt(p_issuer, 100)), 'NULL')
            );
    end if;
    if cardinality(p_audience) is distinct from array_length(p_audience, 1)
        or coalesce(cardinality(p_audience), 0) = 0
        or array_position(p_audience, null) is not null
        or array_position(p_audience, '') is not null then
        raise exception using
            errcode = '22023',
            message = format('audience %s of issuer %L must list one or more non-empty values', coalesce(p_audience::text, 'NULL'), p_issuer),
            hint = 'Tokens must name their audience (aud): an issuer trusted for any audience would accept tokens meant for other services.';
    end if;
    select a into v_bad from unnest(coalesce(p_algorithms, '{}')) as a where a is null or a not in ('RS256', 'ES256') limit 1;
    if found or coalesce(cardinality(p_algorithms), 0) = 0 then
        raise exception using
            errcode = '22023',
            message = format(
                'algorithm %s of issuer %L is not accepted: RS256 and ES256 are',
                coalesce(quote_literal(v_bad), coalesce(p_algorithms::text, 'NULL')), p_issuer
            ),
            hint = 'HS256 tokens are verified with the shared secret of tenancy.configure_jwt(), never with an issuer''s keys.';
    end if;
    if p_leeway is null or p_leeway not between interval '0' and interval '5 minutes' then
        raise exception using
            errcode = '22023',
            message = format('leeway %s of issuer %L is out of range: 0 to 5 minutes', coalesce(p_leeway::text, 'NULL'), p_issuer);
    end if;
    if p_max_lifetime <= interval '0' then
        raise exception using
            errcode = '22023',
            message = format('maximum token lifetime %s of issuer %L must be positive or NULL', p_max_lifetime, p_issuer);
    end if;
    if p_jwks_url !~ '^https?://[^[:space:][:cntrl:]]+$' then
        raise exception using
            errcode = '22023',
            message = format('JWKS URL %L of issuer %L must be an http(s) URL', tenancy.token_excerpt(p_jwks_url, 200), p_issuer);
    end if;
    if p_tenant_claim is null or length(p_tenant_claim) not between 1 and 256 then
        raise exception using
            errcode = '22023',
            message = format('tenant claim %s of issuer %L must be 1 to 256 characters', coalesce(quote_literal(p_tenant_claim), 'NULL'), p_issuer);
    end if;
    if p_tenant_id is not null then
        perform tenancy.require_tenant_not_deleted(p_tenant_id);  -- P0002 unknown, 55000 deleted
    end if;
    -- One issuer string is either platform-wide or some tenants' own: a token's iss never has
    -- two meanings for one tenant.
    if exists (
        select from tenancy.jwt_issuers as i
        where i.issuer = p_issuer and (i.tenant_id is null) <> (p_tenant_id is null)
    ) then
        raise exception using
            errcode = '23505',
            message = format(
                'issuer %L is already trusted %s', p_issuer,
                case when p_tenant_id is null then 'for some tenants' else 'platform-wide' end
            ),
            hint = 'Remove it with tenancy.remove_issuer() first.';
    end if;
    insert into tenancy.jwt_issuers as i (
        issuer, tenant_id, audience, algorithms, leeway, max_lifetime, tenant_claim, jwks_url
    )
    values (
        p_issuer, p_tenant_id, p_audience, p_algorithms, p_leeway, p_max_lifetime, p_tenant_claim, p_jwks_url
    )
    on conflict (issuer, tenant_id) do update
        set audience = excluded.audience,
            algorithms = excluded.algorithms,
            leeway = excluded.leeway,
            max_lifetime = excluded.max_lifetime,
            tenant_claim = excluded.tenant_claim,
            jwks_url = excluded.jwks_url,
            updated_at = now()
    returning i.id into v_id;
    -- Tokens verified under the old settings are verified again under the new ones.
    perform tenancy.forget_verified_tokens(v_id, null);
    -- An HS256 token claiming this issuer's name is refused from now on, cached or not.
    perform tenancy.forget_verified_tokens(null, null);
    return v_id;
end
$$;

comment on function tenancy.configure_issuer(text, text[], text, text[], interval, uuid, text, interval) is
'For tenancy_admin: trusts tokens whose iss is p_issuer, for the audiences p_audience (a token''s '
'aud must name one), signed with p_algorithms (RS256, ES256) by a key of its JWKS (tenancy.set_jwks, '
'or fetched from p_jwks_url by pgtenancy jwks sync), with p_leeway of clock skew on exp and nbf. '
'p_tenant_id NULL: platform-wide, the tenant from the host or the p_tenant_claim claim; else the '
'tenant''s own identity provider, whose tokens authenticate into that tenant only. Changing an '
'issuer drops its cached verifications. Returns the issuer''s id. P0002 for an unknown '
'tenant, 55000 for a deleted one.';

revoke all on function tenancy.configure_issuer(text, text[], text, text[], interval, uuid, text, interval) from public;
grant execute on function tenancy.configure_issuer(text, text[], text, text[], interval, uuid, text, interval) to tenancy_admin;
