-- tenancy.decode_token: split a JWS compact token and decode its header and claims, refusing any other spelling.

create or replace function tenancy.decode_token(
    p_token text, out header jsonb, out claims jsonb, out signature bytea, out signing_input bytea
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_parts text[];
    v_header_text text;
    v_claims_text text;
begin
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
        v_header_text := convert_from(tenancy.base64url_decode(v_parts[1]), 'UTF8');
        v_claims_text := convert_from(tenancy.base64url_decode(v_parts[2]), 'UTF8');
        header := v_header_text::jsonb;
        claims := v_claims_text::jsonb;
        signature := tenancy.base64url_decode(v_parts[3]);
    exception when others then
        raise exception using
            errcode = 'TN004',
            message = format('malformed token %L: %s', tenancy.token_excerpt(p_token, 24), sqlerrm);
    end;
    -- Each check below is one test on the way through and names the failure only when it fails.

    -- base64url_decode gives NULL when the last character of a part has non-zero unused bits
    -- (another spelling of the same bytes).
    if jsonb_typeof(header) is distinct from 'object'
        or jsonb_typeof(claims) is distinct from 'object'
        or signature is null then
        if header is null or claims is null or signature is null then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'malformed token %L: the last character of the %s has non-zero unused bits',
                    tenancy.token_excerpt(p_token, 24),
                    case when header is null then 'header' when claims is null then 'claims' else 'signature' end
                ),
                hint = 'RFC 7515 allows one spelling of each part: unpadded base64url whose unused bits are zero.';
        end if;
        raise exception using
            errcode = 'TN004',
            message = format(
                'malformed token %L: header and claims must be JSON objects', tenancy.token_excerpt(p_token, 24)
            );
    end if;

    -- The header: alg a string (which one each verifier decides); no crit (RFC 7515 section 4.1.11: pgtenancy understands no
    -- extension, so any listed one is not understood); typ, when present, is JWT (RFC 7519
    -- section 5.1; media type names are case-insensitive and may carry the application/ prefix).
    if jsonb_typeof(header -> 'alg') is distinct from 'string'
        or header ? 'crit'
        or (header ? 'typ' and coalesce(upper(header ->> 'typ'), '') not in ('JWT', 'APPLICATION/JWT')) then
        if jsonb_typeof(header -> 'alg') is distinct from 'string' then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token algorithm %s is not accepted: the header names no algorithm (alg)',
                    tenancy.token_excerpt(coalesce(header -> 'alg', '"missing"'::jsonb)::text, 40)
                );
        end if;
        if header ? 'crit' then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token header lists critical extensions %s; none is understood',
                    tenancy.token_excerpt((header -> 'crit')::text, 60)
                );
        end if;
        raise exception using
            errcode = 'TN004',
            message = format(
                'token type %s is not accepted; typ must be JWT or absent',
                tenancy.token_excerpt((header -> 'typ')::text, 40)
            );
    end if;

    -- One name, one value (RFC 7515 section 4 and RFC 7519 section 4: a JSON object with a
    -- member name twice is refused). jsonb keeps the last of two equal names and json keeps
    -- both, so counting the names json reports catches a duplicate another parser would read
    -- the other way (the first sub instead of the last). Top-level names only: no claim this
    -- package reads is nested.
    if (select count(*) from json_object_keys(v_header_text::json))
        <> (select count(*) from jsonb_object_keys(header))
        or (select count(*) from json_object_keys(v_claims_text::json))
        <> (select count(*) from jsonb_object_keys(claims)) then
        raise exception using
            errcode = 'TN004',
            message = format(
                'malformed token %L: the %s repeats a member name', tenancy.token_excerpt(p_token, 24),
                case
                    when (select count(*) from json_object_keys(v_header_text::json))
                        <> (select count(*) from jsonb_object_keys(header)) then 'header'
                    else 'claims'
                end
            );
    end if;
    signing_input := convert_to(v_parts[1] || '.' || v_parts[2], 'UTF8');
end
$$;

comment on function tenancy.decode_token(text) is
'pgtenancy internal: the header, claims, signature and signing input of a JWS compact token in '
'its one canonical spelling (three parts of unpadded base64url with zero unused bits, header and '
'claims JSON objects without a repeated member name, an alg string, no crit, typ JWT or absent); '
'TN004 naming the failed check otherwise. Verifies nothing.';

revoke all on function tenancy.decode_token(text) from public;
