-- tenancy.replace_issuer_keys: make a JWKS the whole set of keys of some issuers; rotation and revocation.

create or replace function tenancy.replace_issuer_keys(p_issuer_ids bigint[], p_jwks jsonb)
returns table (added integer, removed integer, kept integer, skipped integer)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_issuer text := (select i.issuer from tenancy.jwt_issuers as i where i.id = p_issuer_ids[1]);
    v_jwk jsonb;
    v_kid text;
    v_kids text [] := array[]::text [];
    v_jwks jsonb [] := array[]::jsonb [];
    v_added integer := 0;
    v_removed integer := 0;
    v_kept integer := 0;
    v_skipped integer := 0;
    v_issuer_id bigint;
    v_existing jsonb;
begin
    if jsonb_typeof(p_jwks) is distinct from 'object' or jsonb_typeof(p_jwks -> 'keys') is distinct from 'array' then
        raise exception using
            errcode = '22023',
            message = format(
                'JWKS of issuer %L must be a JSON object with a "keys" array, got %s',
                v_issuer, tenancy.token_excerpt(coalesce(p_jwks::text, 'NULL'), 100)
            );
    end if;
    if jsonb_array_length(p_jwks -> 'keys') > 100 or octet_length(p_jwks::text) > 1048576 then
        raise exception using
            errcode = '22023',
            message = format(
                'JWKS of issuer %L is too large: %s keys, %s bytes (at most 100 keys and 1 MB)',
                v_issuer, jsonb_array_length(p_jwks -> 'keys'), octet_length(p_jwks::text)
            );
    end if;
    for v_jwk in select k from jsonb_array_elements(p_jwks -> 'keys') as k loop
        -- Keys for another use (enc) or of another algorithm family are not signing keys of
        -- ours: they are skipped, not refused, since identity providers publish them together.
        if jsonb_typeof(v_jwk) is distinct from 'object' then
            raise exception using
                errcode = '22023',
                message = format('JWKS of issuer %L holds a key that is not an object: %s', v_issuer, tenancy.token_excerpt(v_jwk::text, 60));
        end if;
        if (v_jwk ? 'use' and v_jwk ->> 'use' is distinct from 'sig')
            or coalesce(v_jwk ->> 'kty', '') not in ('RSA', 'EC')
            or (v_jwk ? 'alg' and coalesce(v_jwk ->> 'alg', '') not in ('RS256', 'ES256'))
            or (v_jwk ->> 'kty' = 'EC' and v_jwk ->> 'crv' is distinct from 'P-256') then
            v_skipped := v_skipped + 1;
            continue;
        end if;
        v_kid := case when jsonb_typeof(v_jwk -> 'kid') = 'string' then v_jwk ->> 'kid' end;
        if v_kid is null or length(v_kid) not between 1 and 256 then
            raise exception using
                errcode = '22023',
                message = format(
                    'JWKS of issuer %L holds a signing key without a kid of 1 to 256 characters (kid %s)',
                    v_issuer, tenancy.token_excerpt(coalesce((v_jwk -> 'kid')::text, 'missing'), 60)
                ),
                hint = 'Tokens name their key by kid; a key without one cannot be chosen.';
        end if;
        if v_kid = any(v_kids) then
            raise exception using
                errcode = '22023',
                message = format('JWKS of issuer %L holds kid %L twice', v_issuer, tenancy.token_excerpt(v_kid, 60));
        end if;
        perform from tenancy.jwk_key_material(v_jwk);  -- 22023 naming the kid for a bad key
        v_kids := v_kids || v_kid;
        v_jwks := v_jwks || v_jwk;
    end loop;
    foreach v_issuer_id in array p_issuer_ids loop
        -- Revoked: a kid no longer published, or published with other material.
        for v_kid, v_existing in
            select k.kid, k.jwk from tenancy.jwt_keys as k where k.issuer_id = v_issuer_id for update
        loop
            if v_existing = v_jwks[array_position(v_kids, v_kid)] then
                v_kept := v_kept + 1;
                continue;
            end if;
            delete from tenancy.jwt_keys as k where k.issuer_id = v_issuer_id and k.kid = v_kid;
            perform tenancy.forget_verified_tokens(v_issuer_id, v_kid);
            v_removed := v_removed + 1;
        end loop;
        insert into tenancy.jwt_keys (issuer_id, kid, kty, alg, modulus, exponent, modulus_bytes, x, y, jwk)
        select v_issuer_id, n.kid, m.kty, m.alg, m.modulus, m.exponent, m.modulus_bytes, m.x, m.y, n.jwk
        from unnest(v_kids, v_jwks) as n (kid, jwk)
        cross join lateral tenancy.jwk_key_material(n.jwk) as m
        on conflict (issuer_id, kid) do nothing;
        get diagnostics v_added = row_count;
        update tenancy.jwt_issuers as i set jwks_synced_at = now() where i.id = v_issuer_id;
    end loop;
    return query select v_added, v_removed, v_kept, v_skipped;
end
$$;

comment on function tenancy.replace_issuer_keys(bigint[], jsonb) is
'pgtenancy internal: makes the signing keys of JWKS p_jwks the keys of each issuer in '
'p_issuer_ids: new kids added (rotation), kids no longer published removed with their cached '
'verifications (revocation), keys of another use or algorithm skipped; 22023 for a malformed set '
'or key (nothing is changed). Counts per call (added and removed of the last issuer).';

revoke all on function tenancy.replace_issuer_keys(bigint[], jsonb) from public;
