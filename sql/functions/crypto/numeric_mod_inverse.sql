-- tenancy.numeric_mod_inverse: the inverse of an integer modulo another (extended Euclid), for ECDSA.

create or replace function tenancy.numeric_mod_inverse(p_value numeric, p_modulus numeric)
returns numeric
language plpgsql
immutable
strict
parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    v_r numeric := p_modulus;
    v_new_r numeric := pg_catalog.mod(p_value, p_modulus);
    v_t numeric := 0;
    v_new_t numeric := 1;
    v_q numeric;
    v_swap numeric;
begin
    if p_modulus < 2 or p_value <> pg_catalog.trunc(p_value) or p_modulus <> pg_catalog.trunc(p_modulus) then
        return null;
    end if;
    if v_new_r < 0 then
        v_new_r := v_new_r + p_modulus;
    end if;
    -- Invariant: t * value = r and new_t * value = new_r (mod modulus).
    while v_new_r <> 0 loop
        v_q := pg_catalog.div(v_r, v_new_r);
        v_swap := v_new_t;
        v_new_t := v_t - v_q * v_new_t;
        v_t := v_swap;
        v_swap := v_new_r;
        v_new_r := v_r - v_q * v_new_r;
        v_r := v_swap;
    end loop;
    if v_r <> 1 then
        return null;  -- not coprime: no inverse
    end if;
    return case when v_t < 0 then v_t + p_modulus else v_t end;
end
$$;

comment on function tenancy.numeric_mod_inverse(numeric, numeric) is
'pgtenancy internal: x in [1, p_modulus) with x * p_value = 1 modulo p_modulus (integers, '
'p_modulus >= 2); NULL when there is none (p_value and p_modulus not coprime).';

revoke all on function tenancy.numeric_mod_inverse(numeric, numeric) from public;
