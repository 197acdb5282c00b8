-- tenancy.es256_verify: ECDSA P-256 SHA-256 signature verification (FIPS 186-4 6.4, RFC 7518 3.4), for ES256.

create or replace function tenancy.es256_verify(p_x numeric, p_y numeric, p_message bytea, p_signature bytea)
returns boolean
language plpgsql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    -- P-256 (FIPS 186-4 D.1.2.3): y^2 = x^3 - 3x + b over GF(p), base point G of prime order n
    -- (cofactor 1: every point on the curve but the point at infinity is of order n).
    c_p constant numeric := 115792089210356248762697446949407573530086143415290314195533631308867097853951;
    c_n constant numeric := 115792089210356248762697446949407573529996955224135760342422259061068512044369;
    c_b constant numeric := 41058363725152142129326129780047268409114441015993725554835256314039467401291;
    c_gx constant numeric := 48439561293906451759052585252797914202762949526041747995844080717082404635286;
    c_gy constant numeric := 36134250956749795798585127919587881956611106672985015071877198253568414405109;
    c_chunk constant numeric := 72057594037927936;  -- 2^56
    c_pinv constant numeric := pg_catalog.div(('1' || pg_catalog.repeat('0', 170))::numeric, c_p) * 1e-170;
    v_r numeric;
    v_s numeric;
    v_w numeric;
    v_u1 numeric;
    v_u2 numeric;
    v_bits1 text := '';
    v_bits2 text := '';
    -- G + Q in affine coordinates (v_sum_infinite when Q = -G)
    v_sum_x numeric;
    v_sum_y numeric;
    v_sum_infinite boolean := false;
    v_lambda numeric;
    -- the accumulator in Jacobian coordinates (x/z^2, y/z^3); z = 0 is the point at infinity
    v_x numeric;
    v_y numeric;
    v_z numeric := 0;
    -- the affine point added at a step
    v_ax numeric;
    v_ay numeric;
    v_delta numeric;
    v_gamma numeric;
    v_beta numeric;
    v_alpha numeric;
    v_zz numeric;
    v_h numeric;
    v_rr numeric;
    v_hh numeric;
    v_hhh numeric;
    v_v numeric;
    v_x3 numeric;
    v_t numeric;
begin
    if p_x is null or p_y is null or p_message is null or p_signature is null
        or pg_catalog.length(p_signature) <> 64 then
        return false;
    end if;
    -- The key: a point on the curve, each coordinate an integer in [0, p) (NaN sorts above every
    -- number and fails the range test, as infinity does). Checked again here though the JWK parser
    -- checks it too: the arithmetic below is only meaningful for a point of the group.
    if not (p_x >= 0 and p_x < c_p and p_y >= 0 and p_y < c_p)
        or p_x <> pg_catalog.trunc(p_x) or p_y <> pg_catalog.trunc(p_y)
        or pg_catalog.mod(p_y * p_y - (p_x * p_x - 3) * p_x - c_b, c_p) <> 0 then
        return false;
    end if;
    -- The JWS signature is r || s, 32 bytes each, big-endian (RFC 7518 3.4); both in [1, n - 1].
    v_r := tenancy.bytea_to_numeric(pg_catalog.substr(p_signature, 1, 32));
    v_s := tenancy.bytea_to_numeric(pg_catalog.substr(p_signature, 33, 32));
    if v_r < 1 or v_r >= c_n or v_s < 1 or v_s >= c_n then
        return false;
    end if;

    -- u1 = e / s and u2 = r / s mod n, e the SHA-256 hash as an integer (as long as n: no truncation).
    v_w := tenancy.numeric_mod_inverse(v_s, c_n);
    v_u1 := pg_catalog.mod(tenancy.bytea_to_numeric(pg_catalog.sha256(p_message)) * v_w, c_n);
    v_u2 := pg_catalog.mod(v_r * v_w, c_n);
    -- Their 256 bits each, most significant first, 56 at a time.
    for v_i in 1..5 loop
        v_bits1 := pg_catalog.mod(v_u1, c_chunk)::bigint::bit(56)::text || v_bits1;
        v_bits2 := pg_catalog.mod(v_u2, c_chunk)::bigint::bit(56)::text || v_bits2;
        v_u1 := pg_catalog.div(v_u1, c_chunk);
        v_u2 := pg_catalog.div(v_u2, c_chunk);
    end loop;
    v_bits1 := pg_catalog.right(v_bits1, 256);
    v_bits2 := pg_catalog.right(v_bits2, 256);

    -- G + Q, the point added where both bits are set (Shamir's trick), in affine coordinates.
    if p_x = c_gx then
        if p_y = c_gy then
            -- Q = G: 2G, the tangent's slope (3x^2 - 3) / 2y.
            v_lambda := pg_catalog.mod(
                (3 * p_x * p_x - 3) * tenancy.numeric_mod_inverse(2 * p_y, c_p), c_p
            );
        else
            v_sum_infinite := true;  -- Q = -G
        end if;
    else
        v_lambda := pg_catalog.mod(
            (p_y - c_gy) * tenancy.numeric_mod_inverse(pg_catalog.mod(p_x - c_gx + c_p, c_p), c_p), c_p
        );
    end if;
    if not v_sum_infinite then
        v_sum_x := pg_catalog.mod(v_lambda * v_lambda - c_gx - p_x, c_p);
        v_sum_y := pg_catalog.mod(v_lambda * (c_gx - v_sum_x) - c_gy, c_p);
    end if;

    -- u1 G + u2 Q, one doubling per bit and at most one mixed addition (Jacobian + affine).
    -- Reduction mod p is loose: t - trunc(t * c_pinv) * p, with c_pinv = 1/p to 170 digits, is
    -- congruent to t and within (-2p, 2p) for every |t| < 10^165 (each product below is one),
    -- in half the time of an exact % (a long division). Tests for zero are made exactly (%).
    for v_i in 1..256 loop
        if v_z <> 0 then
            -- doubling, a = -3 (dbl-2001-b): 3M + 5S
            v_t := v_z * v_z;
            v_delta := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
            v_t := v_y * v_y;
            v_gamma := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
            v_t := v_x * v_gamma;
            v_beta := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
            v_t := 3 * (v_x - v_delta) * (v_x + v_delta);
            v_alpha := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
            v_t := v_alpha * v_alpha - 8 * v_beta;
            v_x3 := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
            v_t := 2 * v_y * v_z;
            v_z := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
            v_t := v_alpha * (4 * v_beta - v_x3) - 8 * v_gamma * v_gamma;
            v_y := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
            v_x := v_x3;
        end if;
        if pg_catalog.substr(v_bits1, v_i, 1) = '1' then
            if pg_catalog.substr(v_bits2, v_i, 1) = '1' then
                if v_sum_infinite then
                    continue;
                end if;
                v_ax := v_sum_x;
                v_ay := v_sum_y;
            else
                v_ax := c_gx;
                v_ay := c_gy;
            end if;
        elsif pg_catalog.substr(v_bits2, v_i, 1) = '1' then
            v_ax := p_x;
            v_ay := p_y;
        else
            continue;
        end if;
        if v_z = 0 then
            v_x := v_ax;
            v_y := v_ay;
            v_z := 1;
            continue;
        end if;
        -- mixed addition (madd-2004-hmv): 8M + 3S
        v_t := v_z * v_z;
        v_zz := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
        v_t := v_ax * v_zz - v_x;
        v_h := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
        v_t := v_ay * v_zz;
        v_t := (v_t - pg_catalog.trunc(v_t * c_pinv) * c_p) * v_z - v_y;
        v_rr := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
        if v_h % c_p = 0 then
            if v_rr % c_p <> 0 then
                v_z := 0;  -- the accumulator was minus the point: the point at infinity
            else
                -- the accumulator was the point itself: double it (as above, delta = zz)
                v_t := v_y * v_y;
                v_gamma := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
                v_t := v_x * v_gamma;
                v_beta := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
                v_t := 3 * (v_x - v_zz) * (v_x + v_zz);
                v_alpha := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
                v_t := v_alpha * v_alpha - 8 * v_beta;
                v_x3 := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
                v_t := 2 * v_y * v_z;
                v_z := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
                v_t := v_alpha * (4 * v_beta - v_x3) - 8 * v_gamma * v_gamma;
                v_y := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
                v_x := v_x3;
            end if;
            continue;
        end if;
        v_t := v_h * v_h;
        v_hh := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
        v_t := v_h * v_hh;
        v_hhh := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
        v_t := v_x * v_hh;
        v_v := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
        v_t := v_rr * v_rr - v_hhh - 2 * v_v;
        v_x3 := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
        v_t := v_rr * (v_v - v_x3) - v_y * v_hhh;
        v_y := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
        v_t := v_z * v_h;
        v_z := v_t - pg_catalog.trunc(v_t * c_pinv) * c_p;
        v_x := v_x3;
    end loop;

    -- Valid when the result is not the point at infinity and its affine x = X / Z^2 (in [0, p))
    -- is r modulo n, that is r or r + n (p < 2n): compared as X = x Z^2 (mod p), without inverting Z.
    if v_z = 0 then
        return false;
    end if;
    v_zz := v_z * v_z % c_p;
    return (v_x - v_r * v_zz) % c_p = 0
        or (v_r + c_n < c_p and (v_x - (v_r + c_n) * v_zz) % c_p = 0);
end
$$;

comment on function tenancy.es256_verify(numeric, numeric, bytea, bytea) is
'pgtenancy internal: whether p_signature (the 64-byte JWS form r || s) is a valid ECDSA P-256 '
'SHA-256 signature (ES256) of p_message under the public key (p_x, p_y); false, never an '
'error, for any mismatch, including a key that is not a point of the curve.';

revoke all on function tenancy.es256_verify(numeric, numeric, bytea, bytea) from public;
