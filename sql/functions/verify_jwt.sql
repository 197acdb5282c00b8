-- tenancy.verify_jwt: check an HS256 JWT's signature, exp, nbf, iss and aud; return its claims.

create or replace function tenancy.verify_jwt(p_token text)
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_config tenancy.jwt_config;
    v_parts text[];
    v_header jsonb;
    v_claims jsonb;
    v_signature bytea;
    v_now numeric := extract(epoch from clock_timestamp());
    v_shown text := left(coalesce(p_token, 'NULL'), 24) || case when length(p_token) > 24 then '...' else '' end;
begin
    select c.* into v_config from tenancy.jwt_config as c where c.singleton;
    if not found then
        raise exception using
            errcode = '55000',
            message = 'JWT verification is not configured',
            hint = 'A tenancy_admin must call tenancy.configure_jwt(secret) first.';
    end if;

    v_parts := string_to_array(p_token, '.');
    if p_token is null or cardinality(v_parts) <> 3 then
        raise exception using
            errcode = 'TN004',
            message = format('malformed token %L: expected three dot-separated parts', v_shown);
    end if;
    begin
        v_header := convert_from(tenancy.base64url_decode(v_parts[1]), 'UTF8')::jsonb;
        v_claims := convert_from(tenancy.base64url_decode(v_parts[2]), 'UTF8')::jsonb;
        v_signature := tenancy.base64url_decode(v_parts[3]);
    exception when others then
        raise exception using
            errcode = 'TN004',
            message = format('malformed token %L: %s', v_shown, sqlerrm);
    end;
    if jsonb_typeof(v_header) is distinct from 'object' or jsonb_typeof(v_claims) is distinct from 'object' then
        raise exception using
            errcode = 'TN004',
            message = format('malformed token %L: header and claims must be JSON objects', v_shown);
    end if;
    if v_header ->> 'alg' is distinct from 'HS256' then
        raise exception using
            errcode = 'TN004',
            message = format('token algorithm %L is not accepted; only HS256 is', v_header ->> 'alg');
    end if;
    if v_signature is distinct from tenancy.hmac_sha256(
        convert_to(v_parts[1] || '.' || v_parts[2], 'UTF8'), convert_to(v_config.secret, 'UTF8')
    ) then
        raise exception using
            errcode = 'TN004',
            message = format('token signature is invalid (subject %L)', v_claims ->> 'sub');
    end if;

    if jsonb_typeof(v_claims -> 'exp') is distinct from 'number' then
        raise exception using
            errcode = 'TN004',
            message = format('token has no numeric exp claim (exp %s)', coalesce(v_claims ->> 'exp', 'missing'));
    end if;
    if (v_claims ->> 'exp')::numeric <= v_now then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token expired at %s (exp %s)',
                to_timestamp((v_claims ->> 'exp')::double precision), v_claims ->> 'exp'
            );
    end if;
    if v_claims ? 'nbf' then
        if jsonb_typeof(v_claims -> 'nbf') is distinct from 'number' then
            raise exception using
                errcode = 'TN004',
                message = format('token nbf claim %s is not a number', v_claims -> 'nbf');
        end if;
        if (v_claims ->> 'nbf')::numeric > v_now then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token is not valid before %s (nbf %s)',
                    to_timestamp((v_claims ->> 'nbf')::double precision), v_claims ->> 'nbf'
                );
        end if;
    end if;
    if v_config.issuer is not null and (v_claims ->> 'iss') is distinct from v_config.issuer then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token issuer %s does not match %L', coalesce(v_claims -> 'iss', '"missing"'::jsonb), v_config.issuer
            );
    end if;
    -- A missing aud makes the test NULL, which must count as a mismatch.
    if v_config.audience is not null and not coalesce(
        (jsonb_typeof(v_claims -> 'aud') = 'string' and v_claims ->> 'aud' = v_config.audience)
        or (jsonb_typeof(v_claims -> 'aud') = 'array' and v_claims -> 'aud' ? v_config.audience),
        false
    ) then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token audience %s does not include %L', coalesce(v_claims -> 'aud', '"missing"'::jsonb), v_config.audience
            );
    end if;
    return v_claims;
end
$$;

comment on function tenancy.verify_jwt(text) is
'pgtenancy internal: the claims of a valid HS256 token; TN004 naming the failed check otherwise.';

revoke all on function tenancy.verify_jwt(text) from public;
