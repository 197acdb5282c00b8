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
    v_parts text[];
    v_header jsonb;
    v_claims jsonb;
    v_signature bytea;
    v_exp numeric;
    v_nbf numeric;
    v_iat numeric;
    v_now numeric := extract(epoch from clock_timestamp());
begin
    select c.* into v_config from tenancy.jwt_config as c where c.singleton;
    if not found then
        raise exception using
            errcode = '55000',
            message = 'JWT verification is not configured',
            hint = 'A tenancy_admin must call tenancy.configure_jwt(secret) first.';
    end if;

    -- Error messages show at most the first 24 characters of the token, never all of it.
    v_parts := string_to_array(p_token, '.');
    if p_token is null or cardinality(v_parts) <> 3 then
        raise exception using
            errcode = 'TN004',
            message = format(
                'malformed token %L: expected three dot-separated parts',
                tenancy.token_excerpt(coalesce(p_token, 'NULL'), 24)
            );
    end if;
    -- One token, one spelling (RFC 7515 section 2: unpadded base64url, no line breaks, no
    -- whitespace). decode() would also take '=', whitespace and '+/': each would let the same
    -- token be written another way, past any deny-list keyed on its text; any other character is
    -- refused here too, with the same message. One regular expression over the whole token:
    -- authenticate runs once per transaction and PL/pgSQL prepares each expression once per
    -- transaction, so each function in an expression costs more than its run time (this test in
    -- place of seven strpos() calls saves about 27,000 instructions per call).
    if p_token ~ '[^A-Za-z0-9_.-]' then
        raise exception using
            errcode = 'TN004',
            message = format(
                'malformed token %L: only unpadded base64url is accepted (no =, +, / or whitespace)',
                tenancy.token_excerpt(p_token, 24)
            );
    end if;
    begin
        v_header := convert_from(tenancy.base64url_decode(v_parts[1]), 'UTF8')::jsonb;
        v_claims := convert_from(tenancy.base64url_decode(v_parts[2]), 'UTF8')::jsonb;
        v_signature := tenancy.base64url_decode(v_parts[3]);
    exception when others then
        raise exception using
            errcode = 'TN004',
            message = format('malformed token %L: %s', tenancy.token_excerpt(p_token, 24), sqlerrm);
    end;
    -- Each check below is one test on the way through and names the failure only when it fails.

    -- base64url_decode gives NULL when the last character of a part has non-zero unused bits
    -- (another spelling of the same bytes).
    if jsonb_typeof(v_header) is distinct from 'object'
        or jsonb_typeof(v_claims) is distinct from 'object'
        or v_signature is null then
        if v_header is null or v_claims is null or v_signature is null then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'malformed token %L: the last character of the %s has non-zero unused bits',
                    tenancy.token_excerpt(p_token, 24),
                    case when v_header is null then 'header' when v_claims is null then 'claims' else 'signature' end
                ),
                hint = 'RFC 7515 allows one spelling of each part: unpadded base64url whose unused bits are zero.';
        end if;
        raise exception using
            errcode = 'TN004',
            message = format(
                'malformed token %L: header and claims must be JSON objects', tenancy.token_excerpt(p_token, 24)
            );
    end if;

    -- The header: alg exactly HS256; no crit (RFC 7515 section 4.1.11: pgtenancy understands no
    -- extension, so any listed one is not understood); typ, when present, is JWT (RFC 7519
    -- section 5.1; media type names are case-insensitive and may carry the application/ prefix).
    if v_header ->> 'alg' is distinct from 'HS256'
        or v_header ? 'crit'
        or (v_header ? 'typ' and coalesce(upper(v_header ->> 'typ'), '') not in ('JWT', 'APPLICATION/JWT')) then
        if v_header ->> 'alg' is distinct from 'HS256' then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token algorithm %L is not accepted; only HS256 is', tenancy.token_excerpt(v_header ->> 'alg', 40)
                );
        end if;
        if v_header ? 'crit' then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token header lists critical extensions %s; none is understood',
                    tenancy.token_excerpt((v_header -> 'crit')::text, 60)
                );
        end if;
        raise exception using
            errcode = 'TN004',
            message = format(
                'token type %s is not accepted; typ must be JWT or absent',
                tenancy.token_excerpt((v_header -> 'typ')::text, 40)
            );
    end if;

    if v_signature is distinct from tenancy.hmac_sha256(
        convert_to(v_parts[1] || '.' || v_parts[2], 'UTF8'), convert_to(v_config.secret, 'UTF8')
    ) then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token signature is invalid (subject %L)', tenancy.token_excerpt(v_claims ->> 'sub', 40)
            );
    end if;

    -- exp, nbf and iat are NumericDates (RFC 7519 section 2): JSON numbers of seconds since
    -- 1970-01-01 UTC. Values before 1970 or after 9999 are malformed, not dates: they are refused
    -- here, before any conversion to a timestamp could fail with another SQLSTATE. A configured
    -- maximum lifetime bounds what a stolen token is worth: no token is accepted whose exp is
    -- further than that from now, nor one issued (iat) for longer than that.
    v_exp := case when jsonb_typeof(v_claims -> 'exp') = 'number' then (v_claims -> 'exp')::numeric end;
    v_nbf := case when jsonb_typeof(v_claims -> 'nbf') = 'number' then (v_claims -> 'nbf')::numeric end;
    v_iat := case when jsonb_typeof(v_claims -> 'iat') = 'number' then (v_claims -> 'iat')::numeric end;
    if v_exp is null or v_exp <= v_now or v_exp >= 253402300800
        or (v_claims ? 'nbf' and (v_nbf is null or v_nbf > v_now or v_nbf < 0))
        or (v_claims ? 'iat' and (v_iat is null or v_iat < 0 or v_iat >= 253402300800))
        or v_exp - v_now > extract(epoch from v_config.max_lifetime)
        or v_exp - v_iat > extract(epoch from v_config.max_lifetime) then
        if v_exp is null then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token has no numeric exp claim (exp %s)',
                    tenancy.token_excerpt(coalesce(v_claims ->> 'exp', 'missing'), 40)
                );
        end if;
        if v_exp < 0 or v_exp >= 253402300800 then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token exp claim %s is out of range: a NumericDate from 0 to 253402300799 (year 9999) is required',
                    tenancy.claim_number_text(v_exp)
                );
        end if;
        if v_exp <= v_now then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token expired at %s (exp %s)',
                    to_timestamp(round(v_exp, 6)::double precision),
                    tenancy.claim_number_text(v_exp)
                );
        end if;
        if v_claims ? 'nbf' and v_nbf is null then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token nbf claim %s is not a number', tenancy.token_excerpt((v_claims -> 'nbf')::text, 40)
                );
        end if;
        if v_nbf < 0 or v_nbf >= 253402300800 then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token nbf claim %s is out of range: a NumericDate from 0 to 253402300799 (year 9999) is required',
                    tenancy.claim_number_text(v_nbf)
                );
        end if;
        if v_nbf > v_now then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token is not valid before %s (nbf %s)',
                    to_timestamp(round(v_nbf, 6)::double precision),
                    tenancy.claim_number_text(v_nbf)
                );
        end if;
        if v_claims ? 'iat' and v_iat is null then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token iat claim %s is not a number', tenancy.token_excerpt((v_claims -> 'iat')::text, 40)
                );
        end if;
        if v_iat < 0 or v_iat >= 253402300800 then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token iat claim %s is out of range: a NumericDate from 0 to 253402300799 (year 9999) is required',
                    tenancy.claim_number_text(v_iat)
                );
        end if;
        raise exception using
            errcode = 'TN004',
            message = format(
                'token lifetime exceeds the maximum of %s (iat %s, exp %s)',
                v_config.max_lifetime,
                coalesce(tenancy.claim_number_text(v_iat), 'missing'),
                tenancy.claim_number_text(v_exp)
            );
    end if;

    if v_config.issuer is not null and (v_claims ->> 'iss') is distinct from v_config.issuer then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token issuer %s does not match %L',
                tenancy.token_excerpt(coalesce(v_claims -> 'iss', '"missing"'::jsonb)::text, 60), v_config.issuer
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
                'token audience %s does not include %L',
                tenancy.token_excerpt(coalesce(v_claims -> 'aud', '"missing"'::jsonb)::text, 60), v_config.audience
            );
    end if;
    return v_claims;
end
$$;

comment on function tenancy.verify_jwt(text) is
'pgtenancy internal: the claims of a valid HS256 token (canonical base64url, alg HS256, no crit, '
'typ JWT or absent, valid signature, exp/nbf/iat NumericDates, within the configured maximum '
'lifetime, iss/aud when configured); TN004 naming the failed check and value otherwise.';

revoke all on function tenancy.verify_jwt(text) from public;
