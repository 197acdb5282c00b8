-- tenancy.verify_jwt: check an HS256 JWT's form, header, signature and claims; return its claims.

create or replace function tenancy.verify_jwt(p_token text)
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_config tenancy.jwt_config;
    v_header jsonb;
    v_claims jsonb;
    v_signature bytea;
    v_signing_input bytea;
begin
    select c.* into v_config from tenancy.jwt_config as c where c.singleton;
    if not found then
        raise exception using
            errcode = '55000',
            message = 'JWT verification is not configured',
            hint = 'A tenancy_admin must call tenancy.configure_jwt(secret) first.';
    end if;

    select t.header, t.claims, t.signature, t.signing_input
    into v_header, v_claims, v_signature, v_signing_input
    from tenancy.decode_token(p_token) as t;
    if v_header ->> 'alg' is distinct from 'HS256' then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token algorithm %L is not accepted; only HS256 is', tenancy.token_excerpt(v_header ->> 'alg', 40)
            );
    end if;
    if v_signature is distinct from tenancy.hmac_sha256(v_signing_input, convert_to(v_config.secret, 'UTF8')) then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token signature is invalid (subject %L)', tenancy.token_excerpt(v_claims ->> 'sub', 40)
            );
    end if;
    perform tenancy.check_token_claims(
        v_claims, null, v_config.max_lifetime, v_config.issuer,
        case when v_config.audience is not null then array[v_config.audience] end
    );
    return v_claims;
end
$$;

comment on function tenancy.verify_jwt(text) is
'pgtenancy internal: the claims of a valid HS256 token (canonical base64url, alg HS256, no crit, '
'typ JWT or absent, valid signature, exp/nbf/iat NumericDates, within the configured maximum '
'lifetime, iss/aud when configured); TN004 naming the failed check and value otherwise.';

revoke all on function tenancy.verify_jwt(text) from public;
