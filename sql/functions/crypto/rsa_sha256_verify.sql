-- tenancy.rsa_sha256_verify: RSASSA-PKCS1-v1_5 signature verification with SHA-256 (RFC 8017 8.2.2), for RS256.

create or replace function tenancy.rsa_sha256_verify(
    p_modulus numeric,
    p_exponent numeric,
    p_modulus_bytes integer,
    p_message bytea,
    p_signature bytea
)
returns boolean
language plpgsql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    v_n numeric;
    v_e bigint;
    v_bits text;
    v_s numeric;
    v_m numeric;
    v_x numeric;
    v_digits integer;
    v_shift numeric;
    v_mu numeric;
begin
    -- The key (as tenancy.jwk_key_material gives it, checked again: no key reaches the arithmetic
    -- that the parser would refuse): a modulus of 2,048 to 4,096 bits that is exactly
    -- p_modulus_bytes long and odd; an odd exponent from 3 to 65537 (a longer one costs one more
    -- multiplication per bit, for nobody's benefit) below the modulus.
    -- NaN and infinity fail the range tests (NaN sorts above every number); a fractional part
    -- fails the trunc() test.
    if p_modulus is null or p_exponent is null or p_modulus_bytes is null or p_message is null
        or p_signature is null
        or p_modulus_bytes not between 256 and 512
        or not p_modulus >= pg_catalog.power(2::numeric, greatest(2047, 8 * p_modulus_bytes - 8))
        or not p_modulus < pg_catalog.power(2::numeric, 8 * p_modulus_bytes)
        or p_modulus <> pg_catalog.trunc(p_modulus)
        or pg_catalog.mod(p_modulus, 2) <> 1
        or not p_exponent between 3 and 65537
        or p_exponent <> pg_catalog.trunc(p_exponent)
        or pg_catalog.mod(p_exponent, 2) <> 1 then
        return false;
    end if;
    -- RFC 8017 8.2.2 step 1: the signature is exactly as long as the modulus.
    if pg_catalog.length(p_signature) <> p_modulus_bytes then
        return false;
    end if;
    v_n := pg_catalog.trunc(p_modulus);
    v_e := p_exponent::bigint;
    -- Step 2.b (RSAVP1): s < n, then m = s^e mod n.
    v_s := tenancy.bytea_to_numeric(p_signature);
    if v_s >= v_n then
        return false;
    end if;

    -- Square-and-multiply from the exponent's top bit, each product reduced at once by Barrett's
    -- method in base 10: with d the number of digits of n and mu = floor(10^(2d) / n), the
    -- quotient of x < n^2 is at most 2 above floor(floor(x / 10^(d-1)) * mu / 10^(d+1)).
    -- Multiplying by a power of ten and truncating is cheap for numeric; its own % divides
    -- exactly, about ten times slower for a 2,048-bit modulus.
    v_digits := pg_catalog.length(v_n::text);
    v_shift := ('0.' || pg_catalog.repeat('0', v_digits - 2) || '1')::numeric;  -- 10^-(d-1)
    v_mu := pg_catalog.div(('1' || pg_catalog.repeat('0', 2 * v_digits))::numeric, v_n)
        * ('0.' || pg_catalog.repeat('0', v_digits) || '1')::numeric;  -- floor(10^(2d) / n) / 10^(d+1)
    v_bits := pg_catalog.ltrim(v_e::bit(64)::text, '0');
    v_m := v_s;
    for v_i in 2..pg_catalog.length(v_bits) loop
        v_x := v_m * v_m;
        v_m := v_x - pg_catalog.trunc(pg_catalog.trunc(v_x * v_shift) * v_mu) * v_n;
        while v_m >= v_n loop
            v_m := v_m - v_n;
        end loop;
        if pg_catalog.substr(v_bits, v_i, 1) = '1' then
            v_x := v_m * v_s;
            v_m := v_x - pg_catalog.trunc(pg_catalog.trunc(v_x * v_shift) * v_mu) * v_n;
            while v_m >= v_n loop
                v_m := v_m - v_n;
            end loop;
        end if;
    end loop;

    -- Steps 3 and 4 (EMSA-PKCS1-v1_5 encoding, 9.2): m must be exactly the number whose k bytes are
    -- 0x00 0x01, k - 54 bytes 0xFF, 0x00 and T, the DER DigestInfo of SHA-256 (19 bytes) followed
    -- by the 32-byte hash. Built as a number and compared whole: nothing of m is parsed, so no
    -- lenient reading of its padding, DigestInfo or trailing bytes can accept a forgery.
    return v_m = pg_catalog.power(2::numeric, 8 * (p_modulus_bytes - 2))
        + (pg_catalog.power(2::numeric, 8 * (p_modulus_bytes - 54)) - 1) * pg_catalog.power(2::numeric, 416)
        + tenancy.bytea_to_numeric(
            '\x3031300d060960864801650304020105000420'::bytea || pg_catalog.sha256(p_message)
        );
end
$$;

comment on function tenancy.rsa_sha256_verify(numeric, numeric, integer, bytea, bytea) is
'pgtenancy internal: whether p_signature is a valid RSASSA-PKCS1-v1_5 SHA-256 signature (RS256) '
'of p_message under the public key (p_modulus, p_exponent) of p_modulus_bytes bytes; false, '
'never an error, for any mismatch, including a key outside 2,048 to 4,096 bits or an exponent '
'outside 3 to 65537.';

revoke all on function tenancy.rsa_sha256_verify(numeric, numeric, integer, bytea, bytea) from public;
