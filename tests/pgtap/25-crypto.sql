-- RS256 and ES256 verification and JWK parsing in SQL: tenancy.bytea_to_numeric,
-- rsa_sha256_verify, es256_verify and jwk_key_material, on fixed vectors made with the Python
-- cryptography package (tests/vectors/crypto_vectors.py writes setup/crypto_vectors.psql).
-- Each refused signature or key is paired with the valid one being accepted. These functions are
-- internal (no pgtenancy role may call them), so the connecting superuser calls them.

begin;
select plan(137);

\ir setup/crypto_vectors.psql

-- Internal: no pgtenancy role may execute them ----------------------------------------------------

select is_empty(
    $$
    select r.rolname || ' ' || p.oid::regprocedure::text
    from pg_catalog.pg_proc as p
    cross join pg_catalog.pg_roles as r
    where p.pronamespace = 'tenancy'::regnamespace
        and p.proname in (
            'bytea_to_numeric', 'numeric_mod_inverse', 'rsa_sha256_verify', 'es256_verify',
            'jwk_member_bytes', 'jwk_key_material'
        )
        and r.rolname in ('tenancy_app', 'tenancy_service', 'tenancy_admin', 'tenancy_auditor')
        and has_function_privilege(r.oid, p.oid, 'execute')
    $$,
    'no pgtenancy role may execute the crypto functions'
);

-- bytea_to_numeric --------------------------------------------------------------------------------

select is(tenancy.bytea_to_numeric(''::bytea), 0::numeric, 'no bytes are 0');
select is(tenancy.bytea_to_numeric('\x01'), 1::numeric, 'one byte');
select is(tenancy.bytea_to_numeric('\x00000102'), 258::numeric, 'leading zero bytes count for nothing');
select is(
    tenancy.bytea_to_numeric('\xffffffffffffff'), 2::numeric ^ 56 - 1, 'seven 0xff bytes are 2^56 - 1'
);
select is(
    tenancy.bytea_to_numeric(decode(repeat('ff', 15), 'hex')), 2::numeric ^ 120 - 1,
    'fifteen 0xff bytes are 2^120 - 1 (one step of 14 bytes and one more)'
);
select ok(
    tenancy.bytea_to_numeric(tenancy.base64url_decode(:'rsa2048_n64')) = :'rsa2048_n'::numeric
    and tenancy.bytea_to_numeric(tenancy.base64url_decode(:'rsa3072_n64')) = :'rsa3072_n'::numeric
    and tenancy.bytea_to_numeric(tenancy.base64url_decode(:'rsa4096_n64')) = :'rsa4096_n'::numeric,
    'the moduli of 2048, 3072 and 4096 bits read from their bytes equal their decimal values'
);
select is(tenancy.bytea_to_numeric(null), null, 'NULL gives NULL');

-- RS256: valid signatures -------------------------------------------------------------------------

select ok(
    tenancy.rsa_sha256_verify(
        :'rsa2048_n'::numeric, :'rsa2048_e'::numeric, :'rsa2048_k', :'message'::bytea, decode(:'rsa2048_sig', 'hex')
    ),
    'a valid RS256 signature of a 2048-bit key verifies'
);
select ok(
    tenancy.rsa_sha256_verify(
        :'rsa3072_n'::numeric, :'rsa3072_e'::numeric, :'rsa3072_k', :'message'::bytea, decode(:'rsa3072_sig', 'hex')
    ),
    'a valid RS256 signature of a 3072-bit key verifies'
);
select ok(
    tenancy.rsa_sha256_verify(
        :'rsa4096_n'::numeric, :'rsa4096_e'::numeric, :'rsa4096_k', :'message'::bytea, decode(:'rsa4096_sig', 'hex')
    ),
    'a valid RS256 signature of a 4096-bit key verifies'
);
select ok(
    tenancy.rsa_sha256_verify(
        :'rsa2048e3_n'::numeric, :'rsa2048e3_e'::numeric, :'rsa2048e3_k', :'message'::bytea,
        decode(:'rsa2048e3_sig', 'hex')
    ),
    'a valid RS256 signature of a 2048-bit key with exponent 3 verifies'
);

-- RS256: refused signatures (false, never an error) -----------------------------------------------

create function pg_temp.rs2048(p_message bytea, p_signature bytea)
returns boolean
language sql
as $$
    select tenancy.rsa_sha256_verify(
        current_setting('crypto.rsa2048_n')::numeric, 65537, 256, p_message, p_signature
    )
$$;
select set_config('crypto.rsa2048_n', :'rsa2048_n', true) is not null as configured \gset

select is(
    pg_temp.rs2048(:'message'::bytea || '.', decode(:'rsa2048_sig', 'hex')), false,
    'RS256 2048: a signature of another message (one byte appended) is refused'
);
select is(
    pg_temp.rs2048(overlay(:'message'::bytea placing 'f' from 3 for 1), decode(:'rsa2048_sig', 'hex')), false,
    'RS256 2048: the message with one byte changed is refused'
);
select is(
    tenancy.rsa_sha256_verify(
        :'rsa4096_n'::numeric, 65537, 512, substr(:'message'::bytea, 2), decode(:'rsa4096_sig', 'hex')
    ),
    false,
    'RS256 4096: the message without its first byte is refused'
);
select is(
    pg_temp.rs2048(
        :'message'::bytea,
        set_bit(decode(:'rsa2048_sig', 'hex'), 1000, 1 - get_bit(decode(:'rsa2048_sig', 'hex'), 1000))
    ),
    false,
    'RS256 2048: the signature with one bit flipped is refused'
);
select is(
    tenancy.rsa_sha256_verify(
        :'rsa4096_n'::numeric, 65537, 512, :'message'::bytea,
        set_bit(decode(:'rsa4096_sig', 'hex'), 0, 1 - get_bit(decode(:'rsa4096_sig', 'hex'), 0))
    ),
    false,
    'RS256 4096: the signature with its lowest bit flipped is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, substr(decode(:'rsa2048_sig', 'hex'), 2)), false,
    'RS256 2048: a signature one byte short is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, '\x00'::bytea || decode(:'rsa2048_sig', 'hex')), false,
    'RS256 2048: the signature with a leading zero byte (257 bytes, same number) is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, ''::bytea), false, 'RS256 2048: an empty signature is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, tenancy.base64url_decode(:'rsa2048_n64')), false,
    'RS256 2048: the signature s = n is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, decode(repeat('ff', 256), 'hex')), false,
    'RS256 2048: the signature s = 2^2048 - 1 (above n) is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, decode(repeat('00', 256), 'hex')), false,
    'RS256 2048: the signature s = 0 is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, decode(repeat('00', 255) || '01', 'hex')), false,
    'RS256 2048: the signature s = 1 is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, decode(:'rsa2048_other_key_sig', 'hex')), false,
    'RS256 2048: a valid signature of the message by another key is refused'
);
select is(
    tenancy.rsa_sha256_verify(
        :'rsa3072_n'::numeric, 65537, 384, :'message'::bytea, decode(:'rsa4096_sig', 'hex')
    ),
    false,
    'RS256 3072: a 4096-bit key''s signature (512 bytes) is refused'
);

-- The private key over a wrong encoding: m is not exactly 00 01 FF..FF 00 DigestInfo(SHA-256) H.
select is(
    pg_temp.rs2048(:'message'::bytea, decode(:'rsa2048_bad_sha1', 'hex')), false,
    'RS256 2048: a SHA-1 DigestInfo and hash is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, decode(:'rsa2048_bad_sha256_prefix_sha1_hash', 'hex')), false,
    'RS256 2048: the SHA-256 DigestInfo over a SHA-1 hash is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, decode(:'rsa2048_bad_no_null', 'hex')), false,
    'RS256 2048: a DigestInfo without its NULL parameters is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, decode(:'rsa2048_bad_short_ff', 'hex')), false,
    'RS256 2048: one FF byte missing (a leading zero instead) is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, decode(:'rsa2048_bad_garbage', 'hex')), false,
    'RS256 2048: few FF bytes and garbage after the hash (Bleichenbacher 2006) is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, decode(:'rsa2048_bad_block_type_2', 'hex')), false,
    'RS256 2048: block type 02 is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, decode(:'rsa2048_bad_no_separator', 'hex')), false,
    'RS256 2048: no zero byte before the DigestInfo is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, decode(:'rsa2048_bad_trailing_zero', 'hex')), false,
    'RS256 2048: the DigestInfo and hash followed by a zero byte is refused'
);
select is(
    pg_temp.rs2048(:'message'::bytea, decode(:'rsa2048_bad_other_hash', 'hex')), false,
    'RS256 2048: the right layout over another message''s hash is refused'
);
select ok(
    pg_temp.rs2048(:'message'::bytea, decode(:'rsa2048_sig', 'hex')),
    'RS256 2048: while the right encoding, signed by the same key, verifies'
);

-- Keys the verifier refuses on its own (false) though the signature is right for them.
select is(
    tenancy.rsa_sha256_verify(
        :'rsa1024_n'::numeric, :'rsa1024_e'::numeric, :'rsa1024_k', :'message'::bytea, decode(:'rsa1024_sig', 'hex')
    ),
    false,
    'RS256: a valid signature of a 1024-bit key is refused (2048 bits at least)'
);
select is(
    tenancy.rsa_sha256_verify(:'rsa2048_n'::numeric, 65537, 257, :'message'::bytea, decode(:'rsa2048_sig', 'hex')),
    false,
    'RS256: a modulus length that is not the modulus''s gives false'
);
select is(
    tenancy.rsa_sha256_verify(:'rsa2048_n'::numeric, 65536, 256, :'message'::bytea, decode(:'rsa2048_sig', 'hex')),
    false,
    'RS256: an even exponent gives false'
);
select is(
    tenancy.rsa_sha256_verify(:'rsa2048_n'::numeric, 1, 256, :'message'::bytea, decode(:'rsa2048_sig', 'hex')),
    false,
    'RS256: the exponent 1 gives false'
);
select is(
    tenancy.rsa_sha256_verify(
        :'rsa2048_n'::numeric, 8589934593, 256, :'message'::bytea, decode(:'rsa2048_sig', 'hex')
    ),
    false,
    'RS256: an exponent of 2^33 + 1 gives false'
);
select is(
    tenancy.rsa_sha256_verify(
        :'rsa2048_n'::numeric + 0.5, 65537, 256, :'message'::bytea, decode(:'rsa2048_sig', 'hex')
    ),
    false,
    'RS256: a fractional modulus gives false'
);
select is(
    tenancy.rsa_sha256_verify('NaN', 65537, 256, :'message'::bytea, decode(:'rsa2048_sig', 'hex')),
    false,
    'RS256: a NaN modulus gives false'
);
select is(
    tenancy.rsa_sha256_verify('Infinity', 'Infinity', 256, :'message'::bytea, decode(:'rsa2048_sig', 'hex')),
    false,
    'RS256: an infinite modulus and exponent give false'
);
select is(
    tenancy.rsa_sha256_verify(:'rsa2048_n'::numeric, 65537, 256, null, decode(:'rsa2048_sig', 'hex')),
    false,
    'RS256: a NULL message gives false, not NULL'
);
select is(
    tenancy.rsa_sha256_verify(null, null, null, null, null), false, 'RS256: all NULL gives false'
);

-- ES256: valid signatures -------------------------------------------------------------------------

select ok(
    tenancy.es256_verify(:'ec_x'::numeric, :'ec_y'::numeric, :'message'::bytea, decode(:'ec_sig', 'hex')),
    'a valid ES256 signature verifies'
);
select ok(
    tenancy.es256_verify(:'ec_x'::numeric, :'ec_y'::numeric, :'message'::bytea, decode(:'ec_sig_high_s', 'hex')),
    'ES256: (r, n - s), the other valid form of the same signature, verifies (JWS does not forbid it)'
);
select ok(
    tenancy.es256_verify(:'ec_g_x'::numeric, :'ec_g_y'::numeric, :'message'::bytea, decode(:'ec_g_sig', 'hex')),
    'ES256: the key Q = G (G + Q is a doubling) verifies its signature'
);
select ok(
    tenancy.es256_verify(
        :'ec_neg_g_x'::numeric, :'ec_neg_g_y'::numeric, :'message'::bytea, decode(:'ec_neg_g_sig', 'hex')
    ),
    'ES256: the key Q = -G (G + Q is the point at infinity) verifies its signature'
);
select ok(
    tenancy.es256_verify(:'ec_2g_x'::numeric, :'ec_2g_y'::numeric, :'message'::bytea, decode(:'ec_2g_sig', 'hex')),
    'ES256: a signature whose evaluation adds a point to itself verifies'
);
select ok(
    tenancy.es256_verify(
        :'ec_neg_2g_x'::numeric, :'ec_neg_2g_y'::numeric, :'message'::bytea, decode(:'ec_neg_2g_sig', 'hex')
    ),
    'ES256: a signature whose evaluation passes through the point at infinity verifies'
);
select ok(
    tenancy.es256_verify(:'ec_rn_x'::numeric, :'ec_rn_y'::numeric, :'message'::bytea, decode(:'ec_rn_sig', 'hex')),
    'ES256: a signature whose point R has x(R) = r + n verifies'
);

-- ES256: refused signatures (false, never an error) -----------------------------------------------

create function pg_temp.es(p_message bytea, p_signature bytea)
returns boolean
language sql
as $$
    select tenancy.es256_verify(
        current_setting('crypto.ec_x')::numeric, current_setting('crypto.ec_y')::numeric, p_message, p_signature
    )
$$;
select
    set_config('crypto.ec_x', :'ec_x', true) is not null as configured_x,
    set_config('crypto.ec_y', :'ec_y', true) is not null as configured_y
\gset

-- hex(n): the hexadecimal digits of a non-negative integer; rs(r, s): r || s, 32 bytes each.
create function pg_temp.hex(p_value numeric)
returns text
language sql
as $$
    with recursive digits (rest, hex) as (
        select p_value, ''
        union all
        select div(rest, 16), substr('0123456789abcdef', (mod(rest, 16))::integer + 1, 1) || hex
        from digits
        where rest > 0
    )
    select hex from digits where rest = 0
$$;

create function pg_temp.rs(p_r numeric, p_s numeric)
returns bytea
language sql
as $$
    select decode(
        lpad(pg_temp.hex(p_r), 64, '0') || lpad(pg_temp.hex(p_s), 64, '0'), 'hex'
    )
$$;
select is(
    pg_temp.rs(:'ec_r'::numeric, :'ec_s'::numeric), decode(:'ec_sig', 'hex'),
    'ES256: pg_temp.rs rebuilds the valid signature from r and s'
);
select is(
    pg_temp.es(:'message'::bytea || '.', decode(:'ec_sig', 'hex')), false,
    'ES256: a signature of another message is refused'
);
select is(
    pg_temp.es(
        :'message'::bytea, set_bit(decode(:'ec_sig', 'hex'), 100, 1 - get_bit(decode(:'ec_sig', 'hex'), 100))
    ),
    false,
    'ES256: a bit of r flipped is refused'
);
select is(
    pg_temp.es(
        :'message'::bytea, set_bit(decode(:'ec_sig', 'hex'), 300, 1 - get_bit(decode(:'ec_sig', 'hex'), 300))
    ),
    false,
    'ES256: a bit of s flipped is refused'
);
select is(
    pg_temp.es(:'message'::bytea, substr(decode(:'ec_sig', 'hex'), 1, 63)), false,
    'ES256: a 63-byte signature is refused'
);
select is(
    pg_temp.es(:'message'::bytea, decode(:'ec_sig', 'hex') || '\x00'::bytea), false,
    'ES256: a 65-byte signature is refused'
);
select is(
    pg_temp.es(
        :'message'::bytea,
        '\x3044'::bytea || '\x0220'::bytea || substr(decode(:'ec_sig', 'hex'), 1, 32)
        || '\x0220'::bytea || substr(decode(:'ec_sig', 'hex'), 33)
    ),
    false,
    'ES256: the same signature in DER form (as OpenSSL writes it) is refused'
);
select is(pg_temp.es(:'message'::bytea, pg_temp.rs(0, :'ec_s'::numeric)), false, 'ES256: r = 0 is refused');
select is(pg_temp.es(:'message'::bytea, pg_temp.rs(:'ec_r'::numeric, 0)), false, 'ES256: s = 0 is refused');
select is(
    pg_temp.es(:'message'::bytea, pg_temp.rs(:'p256_n'::numeric, :'ec_s'::numeric)), false, 'ES256: r = n is refused'
);
select is(
    pg_temp.es(:'message'::bytea, pg_temp.rs(:'ec_r'::numeric, :'p256_n'::numeric)), false, 'ES256: s = n is refused'
);
select is(
    pg_temp.es(:'message'::bytea, pg_temp.rs(2::numeric ^ 256 - 1, :'ec_s'::numeric)), false,
    'ES256: r = 2^256 - 1 is refused'
);
select is(
    pg_temp.es(:'message'::bytea, pg_temp.rs(:'ec_r'::numeric, 2::numeric ^ 256 - 1)), false,
    'ES256: s = 2^256 - 1 is refused'
);
select is(
    pg_temp.es(:'message'::bytea, decode(:'ec_other_key_sig', 'hex')), false,
    'ES256: a valid signature of the message by another key is refused'
);
select is(
    tenancy.es256_verify(:'ec_y'::numeric, :'ec_x'::numeric, :'message'::bytea, decode(:'ec_sig', 'hex')), false,
    'ES256: the key with x and y swapped (not on the curve) gives false'
);
select is(
    tenancy.es256_verify(:'ec_x'::numeric, :'ec_y'::numeric + 1, :'message'::bytea, decode(:'ec_sig', 'hex')), false,
    'ES256: a key off the curve gives false'
);
select is(
    tenancy.es256_verify(
        :'ec_x'::numeric + :'p256_p'::numeric, :'ec_y'::numeric, :'message'::bytea, decode(:'ec_sig', 'hex')
    ),
    false,
    'ES256: a key coordinate at or above p gives false'
);
select is(
    tenancy.es256_verify(0, 0, :'message'::bytea, decode(:'ec_sig', 'hex')), false,
    'ES256: the key (0, 0) (no point: the point at infinity has no coordinates) gives false'
);
select is(
    tenancy.es256_verify(:'ec_inf_x'::numeric, :'ec_inf_y'::numeric, :'message'::bytea, decode(:'ec_inf_sig', 'hex')),
    false,
    'ES256: a signature for which u1 G + u2 Q is the point at infinity is refused'
);
select is(
    tenancy.es256_verify(:'ec_rn_x'::numeric, :'ec_rn_y'::numeric, :'message'::bytea || '.', decode(:'ec_rn_sig', 'hex')),
    false,
    'ES256: the x(R) = r + n signature for another message is refused'
);
select is(
    tenancy.es256_verify('NaN', 'NaN', :'message'::bytea, decode(:'ec_sig', 'hex')), false,
    'ES256: a NaN key gives false'
);
select is(
    tenancy.es256_verify(null, :'ec_y'::numeric, :'message'::bytea, decode(:'ec_sig', 'hex')), false,
    'ES256: a NULL coordinate gives false, not NULL'
);

-- numeric_mod_inverse -----------------------------------------------------------------------------

select is(tenancy.numeric_mod_inverse(3, 7), 5::numeric, '3 * 5 = 1 mod 7');
select is(
    mod(tenancy.numeric_mod_inverse(:'ec_s'::numeric, :'p256_n'::numeric) * :'ec_s'::numeric, :'p256_n'::numeric),
    1::numeric,
    's times its inverse is 1 modulo n'
);
select is(tenancy.numeric_mod_inverse(6, 9), null, 'no inverse when not coprime: NULL');
select is(tenancy.numeric_mod_inverse(0, 7), null, 'no inverse of 0: NULL');

-- jwk_key_material: accepted keys -------------------------------------------------------------------

select is(
    (select row(k.*)::text from tenancy.jwk_key_material(
        jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', :'rsa2048_e64')
    ) as k),
    row('RSA', 'RS256', :'rsa2048_n'::numeric, 65537::numeric, 256, null::numeric, null::numeric)::text,
    'an RSA 2048 JWK gives RS256, its modulus, exponent and 256 bytes'
);
select is(
    (select row(k.*)::text from tenancy.jwk_key_material(
        jsonb_build_object(
            'kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', :'rsa2048_e64', 'alg', 'RS256', 'use', 'sig',
            'key_ops', jsonb_build_array('verify'), 'x5t', 'ignored'
        )
    ) as k),
    row('RSA', 'RS256', :'rsa2048_n'::numeric, 65537::numeric, 256, null::numeric, null::numeric)::text,
    'an RSA JWK with alg RS256, use sig, key_ops [verify] and other members is accepted'
);
select is(
    (select k.modulus = :'rsa2048_n'::numeric and k.modulus_bytes = 256 from tenancy.jwk_key_material(
        jsonb_build_object('kty', 'RSA', 'n', :'rsa2048_n64_zero', 'e', 'AQAB')
    ) as k),
    true,
    'a modulus with the one leading zero byte RFC 7518 6.3.1.1 mentions is accepted as the same key'
);
select is(
    (select row(k.modulus_bytes, k.exponent)::text from tenancy.jwk_key_material(
        jsonb_build_object('kty', 'RSA', 'n', :'rsa4096_n64', 'e', :'rsa4096_e64')
    ) as k),
    row(512, 65537::numeric)::text,
    'an RSA 4096 JWK gives 512 bytes'
);
select is(
    (select k.exponent from tenancy.jwk_key_material(
        jsonb_build_object('kty', 'RSA', 'n', :'rsa2048e3_n64', 'e', :'rsa2048e3_e64')
    ) as k),
    3::numeric,
    'an RSA JWK with exponent 3 (Aw) is accepted'
);
select is(
    (select row(k.*)::text from tenancy.jwk_key_material(
        jsonb_build_object(
            'kty', 'EC', 'kid', 'e1', 'crv', 'P-256', 'x', :'ec_x64', 'y', :'ec_y64', 'alg', 'ES256', 'use', 'sig'
        )
    ) as k),
    row('EC', 'ES256', null::numeric, null::numeric, null::integer, :'ec_x'::numeric, :'ec_y'::numeric)::text,
    'an EC P-256 JWK gives ES256 and its coordinates'
);
select ok(
    (
        select tenancy.rsa_sha256_verify(k.modulus, k.exponent, k.modulus_bytes, :'message'::bytea, decode(:'rsa3072_sig', 'hex'))
        from tenancy.jwk_key_material(jsonb_build_object('kty', 'RSA', 'n', :'rsa3072_n64', 'e', :'rsa3072_e64')) as k
    )
    and (
        select tenancy.es256_verify(k.x, k.y, :'message'::bytea, decode(:'ec_sig', 'hex'))
        from tenancy.jwk_key_material(jsonb_build_object('kty', 'EC', 'crv', 'P-256', 'x', :'ec_x64', 'y', :'ec_y64')) as k
    ),
    'the material of an RSA and an EC JWK verifies their signatures'
);

-- jwk_key_material: refused keys (22023, naming the kid and the problem) ----------------------------

select
    throws_ok(
        format('select * from tenancy.jwk_key_material(%L::jsonb)', j.jwk),
        '22023',
        j.message,
        'jwk_key_material refuses ' || j.what
    )
from (
    values
    (1, '[1]', 'JWK refused: [1] is not a JSON object', 'an array'),
    (2, '"RSA"', 'JWK refused: "RSA" is not a JSON object', 'a string'),
    (3, 'null', 'JWK refused: null is not a JSON object', 'JSON null'),
    (4, '{"kty": "RSA", "kid": 42}', 'JWK refused: kid 42 is not a string', 'a kid that is a number'),
    (
        5, '{"kty": "oct", "kid": "h1", "k": "c2VjcmV0"}',
        'JWK ''h1'' refused: symmetric keys (kty oct) are not accepted', 'a symmetric key'
    ),
    (
        6, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', 'AQAB', 'd', 'AQAB')::text,
        'JWK ''r1'' refused: it holds private key member(s) d', 'an RSA private key (d)'
    ),
    (
        7, jsonb_build_object(
            'kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', 'AQAB',
            'p', 'AQ', 'q', 'AQ', 'dp', 'AQ', 'dq', 'AQ', 'qi', 'AQ'
        )::text,
        'JWK ''r1'' refused: it holds private key member(s) p, q, dp, dq, qi', 'an RSA key with its CRT members'
    ),
    (
        8, jsonb_build_object('kty', 'RSA', 'n', :'rsa2048_n64', 'e', 'AQAB', 'oth', '[]'::jsonb)::text,
        'JWK without kid refused: it holds private key member(s) oth', 'an RSA key with other primes (oth)'
    ),
    (
        9, jsonb_build_object('kty', 'EC', 'kid', 'e1', 'crv', 'P-256', 'x', :'ec_x64', 'y', :'ec_y64', 'd', 'AQ')::text,
        'JWK ''e1'' refused: it holds private key member(s) d', 'an EC private key (d)'
    ),
    (
        10, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', 'AQAB', 'k', 'AQ')::text,
        'JWK ''r1'' refused: it holds private key member(s) k', 'an RSA key holding a symmetric k'
    ),
    (11, '{"kid": "x1"}', 'JWK ''x1'' refused: kty is missing; RSA or EC is required', 'a key without kty'),
    (12, '{"kid": "x1", "kty": 1}', 'JWK ''x1'' refused: kty is 1; RSA or EC is required', 'a kty that is a number'),
    (
        13, '{"kid": "x1", "kty": "OKP", "crv": "Ed25519", "x": "AQ"}',
        'JWK ''x1'' refused: kty ''OKP'' is not supported; RSA or EC is required', 'an OKP (EdDSA) key'
    ),
    (
        14, '{"kid": "x1", "kty": "rsa"}',
        'JWK ''x1'' refused: kty ''rsa'' is not supported; RSA or EC is required', 'kty in lower case'
    ),
    (
        15, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', 'AQAB', 'use', 'enc')::text,
        'JWK ''r1'' refused: use "enc" is not sig', 'an encryption key (use enc)'
    ),
    (
        16, jsonb_build_object(
            'kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', 'AQAB', 'key_ops', jsonb_build_array('sign')
        )::text,
        'JWK ''r1'' refused: key_ops ["sign"] does not include verify', 'key_ops without verify'
    ),
    (
        17, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', 'AQAB', 'key_ops', 'verify')::text,
        'JWK ''r1'' refused: key_ops "verify" does not include verify', 'key_ops that is not an array'
    ),
    (
        18, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', 'AQAB', 'alg', 'RS384')::text,
        'JWK ''r1'' refused: alg "RS384" is not supported for kty RSA; only RS256 is', 'an RSA key for RS384'
    ),
    (
        19, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', 'AQAB', 'alg', 'PS256')::text,
        'JWK ''r1'' refused: alg "PS256" is not supported for kty RSA; only RS256 is', 'an RSA key for PS256'
    ),
    (
        20, jsonb_build_object('kty', 'EC', 'kid', 'e1', 'crv', 'P-256', 'x', :'ec_x64', 'y', :'ec_y64', 'alg', 'RS256')::text,
        'JWK ''e1'' refused: alg "RS256" is not supported for kty EC; only ES256 is', 'an EC key for RS256'
    ),
    (
        21, '{"kty": "RSA", "kid": "r1", "e": "AQAB"}',
        'JWK ''r1'' refused: member n is missing; a base64url string is required', 'an RSA key without n'
    ),
    (
        22, '{"kty": "RSA", "kid": "r1", "n": 12345, "e": "AQAB"}',
        'JWK ''r1'' refused: member n is a JSON number (12345); a base64url string is required', 'n as a number'
    ),
    (
        23, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64' || '==', 'e', 'AQAB')::text,
        format('JWK ''r1'' refused: member n %L is not unpadded base64url', left(:'rsa2048_n64', 40) || '...'),
        'n with = padding'
    ),
    (
        24, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', 'ab+d' || :'rsa2048_n64', 'e', 'AQAB')::text,
        format('JWK ''r1'' refused: member n %L is not unpadded base64url', left('ab+d' || :'rsa2048_n64', 40) || '...'),
        'n in the base64 (not base64url) alphabet'
    ),
    (
        25, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', 'abcd ' || :'rsa2048_n64', 'e', 'AQAB')::text,
        format('JWK ''r1'' refused: member n %L is not unpadded base64url', left('abcd ' || :'rsa2048_n64', 40) || '...'),
        'n with a space'
    ),
    (
        26, '{"kty": "RSA", "kid": "r1", "n": "", "e": "AQAB"}',
        'JWK ''r1'' refused: member n '''' is not unpadded base64url', 'an empty n'
    ),
    (
        27, '{"kty": "RSA", "kid": "r1", "n": "AQABA", "e": "AQAB"}',
        'JWK ''r1'' refused: member n ''AQABA'' is not unpadded base64url', 'n of a length of 1 mod 4'
    ),
    (
        28, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64_bits', 'e', 'AQAB')::text,
        format(
            'JWK ''r1'' refused: member n %L has non-zero unused bits in its last character',
            left(:'rsa2048_n64_bits', 40) || '...'
        ),
        'n with a non-zero unused bit (a second spelling)'
    ),
    (
        29, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64_zeros', 'e', 'AQAB')::text,
        'JWK ''r1'' refused: RSA modulus n has leading zero bytes', 'n with two leading zero bytes'
    ),
    (
        30, '{"kty": "RSA", "kid": "r1", "n": "AAE", "e": "AQAB"}',
        'JWK ''r1'' refused: RSA modulus n has leading zero bytes',
        'n with a leading zero byte before a byte below 0x80'
    ),
    (
        31, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa1024_n64', 'e', 'AQAB')::text,
        'JWK ''r1'' refused: RSA modulus of 1024 bits is too short; from 2048 to 4096 bits are accepted',
        'a 1024-bit RSA key'
    ),
    (
        32, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2040_n64', 'e', 'AQAB')::text,
        'JWK ''r1'' refused: RSA modulus of 2040 bits is too short; from 2048 to 4096 bits are accepted',
        'a 2040-bit RSA key'
    ),
    (
        33, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa16392_n64', 'e', 'AQAB')::text,
        'JWK ''r1'' refused: RSA modulus n of 2732 base64url characters is longer than 4096 bits',
        'a 16392-bit RSA key'
    ),
    (
        34, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', repeat('A', 2733), 'e', 'AQAB')::text,
        'JWK ''r1'' refused: RSA modulus n of 2733 base64url characters is longer than 4096 bits',
        'an RSA modulus too long to decode'
    ),
    (
        35, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64_even', 'e', 'AQAB')::text,
        'JWK ''r1'' refused: RSA modulus n is even', 'an even modulus'
    ),
    (
        36, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64')::text,
        'JWK ''r1'' refused: member e is missing; a base64url string is required', 'an RSA key without e'
    ),
    (
        37, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', 'AAEAAQ')::text,
        'JWK ''r1'' refused: RSA exponent e ''AAEAAQ'' has leading zero bytes', 'e with a leading zero byte'
    ),
    (
        38, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', 'AQ')::text,
        'JWK ''r1'' refused: RSA exponent 1 is not an odd number from 3 to 65537', 'the exponent 1'
    ),
    (
        39, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', 'AQAA')::text,
        'JWK ''r1'' refused: RSA exponent 65536 is not an odd number from 3 to 65537', 'an even exponent'
    ),
    (
        40, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', 'AQAD')::text,
        'JWK ''r1'' refused: RSA exponent 65539 is not an odd number from 3 to 65537', 'the exponent 65539'
    ),
    (
        41, jsonb_build_object('kty', 'RSA', 'kid', 'r1', 'n', :'rsa2048_n64', 'e', 'AQAAAAAB')::text,
        'JWK ''r1'' refused: RSA exponent e ''AQAAAAAB'' is longer than 3 bytes', 'a six-byte exponent'
    ),
    (
        42, jsonb_build_object('kty', 'EC', 'kid', 'e1', 'x', :'ec_x64', 'y', :'ec_y64')::text,
        'JWK ''e1'' refused: crv missing is not supported; P-256 is required', 'an EC key without crv'
    ),
    (
        43, jsonb_build_object('kty', 'EC', 'kid', 'e1', 'crv', 'P-384', 'x', :'ec_x64', 'y', :'ec_y64')::text,
        'JWK ''e1'' refused: crv "P-384" is not supported; P-256 is required', 'a P-384 key'
    ),
    (
        44, jsonb_build_object('kty', 'EC', 'kid', 'e1', 'crv', 'P-256', 'y', :'ec_y64')::text,
        'JWK ''e1'' refused: member x is missing; a base64url string is required', 'an EC key without x'
    ),
    (
        45, jsonb_build_object('kty', 'EC', 'kid', 'e1', 'crv', 'P-256', 'x', :'ec_x64_short', 'y', :'ec_y64')::text,
        'JWK ''e1'' refused: EC coordinate x has 31 bytes; P-256 needs exactly 32', 'x of 31 bytes'
    ),
    (
        46, jsonb_build_object('kty', 'EC', 'kid', 'e1', 'crv', 'P-256', 'x', :'ec_x64', 'y', :'ec_y64_long')::text,
        'JWK ''e1'' refused: EC coordinate y has 33 bytes; P-256 needs exactly 32', 'y of 33 bytes (a leading zero)'
    ),
    (
        47, jsonb_build_object('kty', 'EC', 'kid', 'e1', 'crv', 'P-256', 'x', :'ec_p64', 'y', :'ec_y64')::text,
        'JWK ''e1'' refused: (x, y) is not a point of curve P-256', 'x = p'
    ),
    (
        48, jsonb_build_object('kty', 'EC', 'kid', 'e1', 'crv', 'P-256', 'x', :'ec_x64', 'y', :'ec_y64_off')::text,
        'JWK ''e1'' refused: (x, y) is not a point of curve P-256', 'a point off the curve'
    ),
    (
        49, jsonb_build_object('kty', 'EC', 'kid', 'e1', 'crv', 'P-256', 'x', repeat('A', 43), 'y', repeat('A', 43))::text,
        'JWK ''e1'' refused: (x, y) is not a point of curve P-256', 'the point (0, 0)'
    ),
    (
        50, jsonb_build_object('kty', 'oct', 'kid', repeat('k', 100), 'k', 'AQ')::text,
        format('JWK %L refused: symmetric keys (kty oct) are not accepted', repeat('k', 60) || '...'),
        'a key with a long kid (the message cuts it to 60 characters)'
    )
) as j (n, jwk, message, what)
order by j.n;

select throws_ok(
    'select * from tenancy.jwk_key_material(null)', '22023', 'JWK refused: NULL is not a JSON object',
    'jwk_key_material refuses SQL NULL'
);

select * from finish();
rollback;
