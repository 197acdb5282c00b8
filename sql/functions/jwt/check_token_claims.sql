-- tenancy.check_token_claims: refuse a token whose exp, nbf, iat, lifetime, iss or aud is not acceptable.

create or replace function tenancy.check_token_claims(
    p_claims jsonb, p_leeway interval, p_max_lifetime interval, p_issuer text, p_audience text[]
)
returns void
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_claims jsonb := p_claims;
    v_exp numeric;
    v_nbf numeric;
    v_iat numeric;
    v_now numeric := extract(epoch from clock_timestamp());
    v_leeway numeric := coalesce(extract(epoch from p_leeway), 0);
begin
    -- exp, nbf and iat are NumericDates (RFC 7519 section 2): JSON numbers of seconds since
    -- 1970-01-01 UTC. Values before 1970 or after 9999 are malformed, not dates: they are refused
    -- here, before any conversion to a timestamp could fail with another SQLSTATE. A configured
    -- maximum lifetime bounds what a stolen token is worth: no token is accepted whose exp is
    -- further than that from now, nor one issued (iat) for longer than that.
    v_exp := case when jsonb_typeof(v_claims -> 'exp') = 'number' then (v_claims -> 'exp')::numeric end;
    v_nbf := case when jsonb_typeof(v_claims -> 'nbf') = 'number' then (v_claims -> 'nbf')::numeric end;
    v_iat := case when jsonb_typeof(v_claims -> 'iat') = 'number' then (v_claims -> 'iat')::numeric end;
    if v_exp is null or v_exp <= v_now - v_leeway or v_exp >= 253402300800
        or (v_claims ? 'nbf' and (v_nbf is null or v_nbf > v_now + v_leeway or v_nbf < 0))
        or (v_claims ? 'iat' and (v_iat is null or v_iat < 0 or v_iat >= 253402300800))
        or v_exp - v_now > extract(epoch from p_max_lifetime)
        or v_exp - v_iat > extract(epoch from p_max_lifetime) then
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
        if v_exp <= v_now - v_leeway then
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
        if v_nbf > v_now + v_leeway then
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
                p_max_lifetime,
                coalesce(tenancy.claim_number_text(v_iat), 'missing'),
                tenancy.claim_number_text(v_exp)
            );
    end if;

    if p_issuer is not null and (v_claims ->> 'iss') is distinct from p_issuer then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token issuer %s does not match %L',
                tenancy.token_excerpt(coalesce(v_claims -> 'iss', '"missing"'::jsonb)::text, 60), p_issuer
            );
    end if;
    -- A missing aud makes the test NULL, which must count as a mismatch.
    if p_audience is not null and not coalesce(
        (jsonb_typeof(v_claims -> 'aud') = 'string' and v_claims ->> 'aud' = any(p_audience))
        or (jsonb_typeof(v_claims -> 'aud') = 'array' and v_claims -> 'aud' ?| p_audience),
        false
    ) then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token audience %s does not include %s',
                tenancy.token_excerpt(coalesce(v_claims -> 'aud', '"missing"'::jsonb)::text, 60),
                case when cardinality(p_audience) = 1 then quote_literal(p_audience[1]) else 'any of ' || p_audience::text end
            );
    end if;
end
$$;

comment on function tenancy.check_token_claims(jsonb, interval, interval, text, text[]) is
'pgtenancy internal: TN004 naming the claim unless exp is a NumericDate after now (minus '
'p_leeway), nbf and iat, when present, NumericDates with nbf not after now (plus p_leeway), the '
'lifetime within p_max_lifetime (from now and from iat; NULL: any), iss equal to p_issuer and aud '
'naming one of p_audience (each skipped when NULL).';

revoke all on function tenancy.check_token_claims(jsonb, interval, interval, text, text[]) from public;
