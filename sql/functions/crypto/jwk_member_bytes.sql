-- tenancy.jwk_member_bytes: one base64url member of a JWK (n, e, x, y) as bytes, refusing any other spelling.

create or replace function tenancy.jwk_member_bytes(p_jwk jsonb, p_member text, p_who text)
returns bytea
language plpgsql
stable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    v_text text;
    v_bytes bytea;
begin
    if pg_catalog.jsonb_typeof(p_jwk -> p_member) is distinct from 'string' then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK %s refused: member %s is %s; a base64url string is required',
                p_who,
                p_member,
                coalesce(
                    'a JSON ' || pg_catalog.jsonb_typeof(p_jwk -> p_member) || ' ('
                    || tenancy.token_excerpt((p_jwk -> p_member)::text, 40) || ')',
                    'missing'
                )
            );
    end if;
    v_text := p_jwk ->> p_member;
    -- RFC 7518 section 2 (Base64urlUInt) and RFC 7515 section 2: unpadded base64url, one spelling.
    -- A length of 1 mod 4 is not base64 at all; non-zero unused bits in the last character
    -- (base64url_decode gives NULL) would be a second spelling of the same bytes.
    if v_text = '' or v_text ~ '[^A-Za-z0-9_-]' or pg_catalog.length(v_text) % 4 = 1 then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK %s refused: member %s %L is not unpadded base64url',
                p_who,
                p_member,
                tenancy.token_excerpt(v_text, 40)
            ),
            hint = 'RFC 7518 encodes key values as unpadded base64url: A-Z a-z 0-9 - _, no = or whitespace.';
    end if;
    v_bytes := tenancy.base64url_decode(v_text);
    if v_bytes is null then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK %s refused: member %s %L has non-zero unused bits in its last character',
                p_who,
                p_member,
                tenancy.token_excerpt(v_text, 40)
            ),
            hint = 'RFC 7515 allows one spelling of each value: unpadded base64url whose unused bits are zero.';
    end if;
    return v_bytes;
end
$$;

comment on function tenancy.jwk_member_bytes(jsonb, text, text) is
'pgtenancy internal: the bytes of member p_member of the JWK p_jwk, which must be a non-empty '
'string of canonical unpadded base64url; raises 22023 naming the key (p_who) and the member.';

revoke all on function tenancy.jwk_member_bytes(jsonb, text, text) from public;
