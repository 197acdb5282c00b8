-- tenancy.jwk_key_material: one public JWK (RFC 7517, 7518) checked and turned into RS256 or ES256 verification material.

create or replace function tenancy.jwk_key_material(p_jwk jsonb)
returns table (
    kty text,
    alg text,
    modulus numeric,
    exponent numeric,
    modulus_bytes integer,
    x numeric,
    y numeric
)
language plpgsql
stable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    -- P-256 (FIPS 186-4 D.1.2.3): y^2 = x^3 - 3x + b over GF(p)
    c_p constant numeric := 115792089210356248762697446949407573530086143415290314195533631308867097853951;
    c_b constant numeric := 41058363725152142129326129780047268409114441015993725554835256314039467401291;
    v_who text;
    v_kty text;
    v_alg text;
    v_private text;
    v_bytes bytea;
    v_bits integer;
    v_n numeric;
    v_e numeric;
    v_x numeric;
    v_y numeric;
begin
    if pg_catalog.jsonb_typeof(p_jwk) is distinct from 'object' then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK refused: %s is not a JSON object',
                coalesce(tenancy.token_excerpt(p_jwk::text, 40), 'NULL')
            );
    end if;
    -- Messages name the key by its kid (cut to 60 characters), or say it has none.
    if p_jwk ? 'kid' and pg_catalog.jsonb_typeof(p_jwk -> 'kid') is distinct from 'string' then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK refused: kid %s is not a string', tenancy.token_excerpt((p_jwk -> 'kid')::text, 60)
            );
    end if;
    v_who := coalesce(pg_catalog.quote_literal(tenancy.token_excerpt(p_jwk ->> 'kid', 60)), 'without kid');

    -- A symmetric key is a shared secret: never published, never stored here.
    if p_jwk -> 'kty' = '"oct"'::jsonb then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format('JWK %s refused: symmetric keys (kty oct) are not accepted', v_who),
            hint = 'A shared secret is never published in a JWKS; HS256 uses tenancy.configure_jwt.';
    end if;
    -- A private key published by mistake (RFC 7518 6.3.2, 6.2.2, 6.4: d, p, q, dp, dq, qi, oth;
    -- k of a symmetric key) is refused whole: it must not be stored, even for its public part.
    select pg_catalog.string_agg(m.member, ', ' order by m.ord) into v_private
    from pg_catalog.unnest(array['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']) with ordinality as m (member, ord)
    where p_jwk ? m.member;
    if v_private is not null then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK %s refused: it holds private key member(s) %s', v_who, v_private
            ),
            hint = 'A JWKS publishes public keys only: this private key has been exposed and should be replaced.';
    end if;

    v_kty := case when pg_catalog.jsonb_typeof(p_jwk -> 'kty') = 'string' then p_jwk ->> 'kty' end;
    if v_kty is null then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK %s refused: kty is %s; RSA or EC is required',
                v_who,
                coalesce(tenancy.token_excerpt((p_jwk -> 'kty')::text, 40), 'missing')
            );
    end if;
    if v_kty not in ('RSA', 'EC') then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK %s refused: kty %L is not supported; RSA or EC is required',
                v_who,
                tenancy.token_excerpt(v_kty, 40)
            );
    end if;

    -- Intended use (RFC 7517 4.2, 4.3): when stated, signature verification.
    if p_jwk ? 'use' and (p_jwk -> 'use') is distinct from '"sig"'::jsonb then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK %s refused: use %s is not sig', v_who, tenancy.token_excerpt((p_jwk -> 'use')::text, 40)
            );
    end if;
    if p_jwk ? 'key_ops' and (
        pg_catalog.jsonb_typeof(p_jwk -> 'key_ops') is distinct from 'array'
        or not (p_jwk -> 'key_ops') @> '["verify"]'::jsonb
    ) then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK %s refused: key_ops %s does not include verify',
                v_who,
                tenancy.token_excerpt((p_jwk -> 'key_ops')::text, 60)
            );
    end if;
    -- alg (RFC 7517 4.4), when stated, is the one algorithm pgtenancy verifies with this key type.
    v_alg := case v_kty when 'RSA' then 'RS256' else 'ES256' end;
    if p_jwk ? 'alg' and (p_jwk -> 'alg') is distinct from pg_catalog.to_jsonb(v_alg) then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK %s refused: alg %s is not supported for kty %s; only %s is',
                v_who,
                tenancy.token_excerpt((p_jwk -> 'alg')::text, 40),
                v_kty,
                v_alg
            );
    end if;

    if v_kty = 'RSA' then
        -- n (RFC 7518 6.3.1.1): the modulus in the fewest bytes. 6.3.1.1 warns that some libraries
        -- prefix one zero byte to a modulus whose top bit is set (257 bytes for 2,048 bits); that
        -- one spelling is accepted, no other leading zero. 4,096 bits at most: a key is chosen by
        -- whoever publishes it (a tenant's owner, for the tenant's own issuer), and every token
        -- naming it costs a verification, valid or not: 16,384 bits and a huge exponent made one
        -- cost about 77 ms; at most 4,096 bits and 65537 it costs under 2 ms. Checked on the text
        -- before decoding (513 bytes are 684 characters).
        if pg_catalog.jsonb_typeof(p_jwk -> 'n') = 'string' and pg_catalog.length(p_jwk ->> 'n') > 684 then
            raise exception using
                errcode = '22023',
                message = pg_catalog.format(
                    'JWK %s refused: RSA modulus n of %s base64url characters is longer than 4096 bits',
                    v_who,
                    pg_catalog.length(p_jwk ->> 'n')
                );
        end if;
        v_bytes := tenancy.jwk_member_bytes(p_jwk, 'n', v_who);
        if pg_catalog.get_byte(v_bytes, 0) = 0 then
            if pg_catalog.length(v_bytes) < 2 or pg_catalog.get_byte(v_bytes, 1) < 128 then
                raise exception using
                    errcode = '22023',
                    message = pg_catalog.format(
                        'JWK %s refused: RSA modulus n has leading zero bytes', v_who
                    ),
                    hint = 'RFC 7518 6.3.1.1: the modulus takes the fewest bytes that hold it.';
            end if;
            v_bytes := pg_catalog.substr(v_bytes, 2);
        end if;
        v_bits := 8 * pg_catalog.length(v_bytes) - 8
            + pg_catalog.length(pg_catalog.ltrim(pg_catalog.get_byte(v_bytes, 0)::bit(8)::text, '0'));
        if v_bits < 2048 or v_bits > 4096 then
            raise exception using
                errcode = '22023',
                message = pg_catalog.format(
                    'JWK %s refused: RSA modulus of %s bits is too %s; from 2048 to 4096 bits are accepted',
                    v_who,
                    v_bits,
                    case when v_bits < 2048 then 'short' else 'long' end
                );
        end if;
        v_n := tenancy.bytea_to_numeric(v_bytes);
        if pg_catalog.mod(v_n, 2) = 0 then
            raise exception using
                errcode = '22023',
                message = pg_catalog.format('JWK %s refused: RSA modulus n is even', v_who);
        end if;
        -- e (6.3.1.2), in the fewest bytes: odd, from 3 to 65537 (every identity provider uses
        -- 65537, AQAB; a larger one only makes each verification cost more) and so far below n.
        v_bytes := tenancy.jwk_member_bytes(p_jwk, 'e', v_who);
        if pg_catalog.get_byte(v_bytes, 0) = 0 then
            raise exception using
                errcode = '22023',
                message = pg_catalog.format(
                    'JWK %s refused: RSA exponent e %L has leading zero bytes',
                    v_who,
                    tenancy.token_excerpt(p_jwk ->> 'e', 40)
                ),
                hint = 'RFC 7518 6.3.1.2: the exponent takes the fewest bytes that hold it (65537 is AQAB).';
        end if;
        if pg_catalog.length(v_bytes) > 3 then
            raise exception using
                errcode = '22023',
                message = pg_catalog.format(
                    'JWK %s refused: RSA exponent e %L is longer than 3 bytes',
                    v_who,
                    tenancy.token_excerpt(p_jwk ->> 'e', 40)
                );
        end if;
        v_e := tenancy.bytea_to_numeric(v_bytes);
        if v_e < 3 or v_e > 65537 or pg_catalog.mod(v_e, 2) = 0 then
            raise exception using
                errcode = '22023',
                message = pg_catalog.format(
                    'JWK %s refused: RSA exponent %s is not an odd number from 3 to 65537', v_who, v_e
                );
        end if;
        return query select
            'RSA'::text, v_alg, v_n, v_e, (v_bits + 7) / 8, null::numeric, null::numeric;
        return;
    end if;

    -- EC (RFC 7518 6.2.1): P-256 only, both coordinates their full 32 bytes (6.2.1.2, 6.2.1.3),
    -- the point on the curve. Every affine point is finite: the point at infinity has no (x, y).
    if (p_jwk -> 'crv') is distinct from '"P-256"'::jsonb then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK %s refused: crv %s is not supported; P-256 is required',
                v_who,
                coalesce(tenancy.token_excerpt((p_jwk -> 'crv')::text, 40), 'missing')
            );
    end if;
    v_bytes := tenancy.jwk_member_bytes(p_jwk, 'x', v_who);
    if pg_catalog.length(v_bytes) <> 32 then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK %s refused: EC coordinate x has %s bytes; P-256 needs exactly 32',
                v_who,
                pg_catalog.length(v_bytes)
            );
    end if;
    v_x := tenancy.bytea_to_numeric(v_bytes);
    v_bytes := tenancy.jwk_member_bytes(p_jwk, 'y', v_who);
    if pg_catalog.length(v_bytes) <> 32 then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'JWK %s refused: EC coordinate y has %s bytes; P-256 needs exactly 32',
                v_who,
                pg_catalog.length(v_bytes)
            );
    end if;
    v_y := tenancy.bytea_to_numeric(v_bytes);
    if v_x >= c_p or v_y >= c_p
        or pg_catalog.mod(v_y * v_y - (v_x * v_x - 3) * v_x - c_b, c_p) <> 0 then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format('JWK %s refused: (x, y) is not a point of curve P-256', v_who);
    end if;
    return query select 'EC'::text, v_alg, null::numeric, null::numeric, null::integer, v_x, v_y;
end
$$;

comment on function tenancy.jwk_key_material(jsonb) is
'pgtenancy internal: the verification material of one public JWK: RSA (RS256: modulus, exponent, '
'modulus_bytes) or EC P-256 (ES256: x, y). Raises 22023, naming the kid and the problem, for a '
'key that is malformed, private, symmetric, weak (RSA below 2048 bits), not for signatures, or '
'not a point of the curve.';

revoke all on function tenancy.jwk_key_material(jsonb) from public;
