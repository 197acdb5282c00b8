-- tenancy.bytea_to_numeric: a big-endian unsigned integer (an RSA modulus, a signature) as numeric.

create or replace function tenancy.bytea_to_numeric(p_value bytea)
returns numeric
language plpgsql
immutable
strict
parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    -- Fourteen bytes per step (two 56-bit chunks through bit(56)::bigint, each below 2^63):
    -- a 256-byte signature is 19 steps on the growing numeric, not 2,048 bit by bit. The value is
    -- left-padded with zero bytes to a multiple of 14 first. Slices are taken from the bytea, in
    -- constant time (a substr() of the hex text would count characters from its start each time).
    v_value bytea := pg_catalog.decode(
        pg_catalog.repeat('00', (14 - pg_catalog.length(p_value) % 14) % 14), 'hex'
    ) || p_value;
    v_length integer := pg_catalog.length(v_value);
    v_result numeric := 0;
    v_at integer := 1;
begin
    while v_at <= v_length loop
        v_result := v_result * 5192296858534827628530496329220096  -- 2^112
            + (
                ('x' || pg_catalog.encode(pg_catalog.substr(v_value, v_at, 7), 'hex'))::bit(56)::bigint::numeric
                * 72057594037927936  -- 2^56
                + ('x' || pg_catalog.encode(pg_catalog.substr(v_value, v_at + 7, 7), 'hex'))::bit(56)::bigint
            );
        v_at := v_at + 14;
    end loop;
    return v_result;
end
$$;

comment on function tenancy.bytea_to_numeric(bytea) is
'pgtenancy internal: p_value read as a big-endian unsigned integer (no bytes: 0), for the RSA '
'and ECDSA verifiers and the JWK parser.';

revoke all on function tenancy.bytea_to_numeric(bytea) from public;
