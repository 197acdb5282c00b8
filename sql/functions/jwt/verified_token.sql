-- tenancy.verified_token: verify a token (cached, HS256 or a trusted issuer's RS256/ES256) and return whom it names.

-- The path of a token:
-- 1. its size is checked before anything else (TN004), and a read-only transaction is refused
--    (25006) before the token is looked at: it could never hold a context, and an attempt made
--    there would answer whether the token is valid without the failure being counted;
-- 2. the verified-token cache: the SHA-256 of the token picks one slot; a slot holding that
--    hash, unexpired, answers at the cost of one index lookup (HS256 tokens and issuers' tokens
--    alike; the lockout counters are still read);
-- 3. otherwise the token is decoded (tenancy.decode_token: one canonical spelling, no repeated
--    member names), its claimed user and the host are checked against the lockout counters
--    (TN013) before any signature is computed, and then
--    - alg HS256: the shared secret of tenancy.configure_jwt, never for a
--      token whose iss names a trusted issuer (an HS256 token signed with that issuer's public
--      key as the secret would otherwise pass wherever the secret leaks or is guessed);
--    - alg RS256 or ES256: the issuer is the trusted one named by iss, for the tenant at the host
--      when there is one; the key is the issuer's key named by kid, of that algorithm; then the
--      claims, with the issuer's leeway, lifetime and audiences;
--    a verified token is cached (under READ COMMITTED: a slot another transaction is writing is
--    skipped, not waited for);
-- 4. sub must be a user id and the tenant claim, when present, a uuid.
-- Membership and the tenant's status are the caller's to check, on every call.
create or replace function tenancy.verified_token(
    p_token text,
    p_host text,
    p_host_tenant_id uuid,
    out subject text,
    out claim_tenant_id uuid,
    out issuer_tenant_id uuid
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_config tenancy.auth_config;
    v_hash bytea;
    v_slot integer;
    v_found_slot integer;
    v_other_slot integer;
    v_header jsonb;
    v_claims jsonb;
    v_signature bytea;
    v_signing_input bytea;
    v_issuer tenancy.jwt_issuers;
    v_key tenancy.jwt_keys;
    v_user_id tenancy.user_id;
    v_tenant_claim text := 'tenant_id';
    v_valid boolean;
    v_jwt tenancy.jwt_config;
    v_leeway interval := interval '0';
    v_window bigint;
    v_host text := tenancy.normalized_host(p_host);
begin
    select c.* into v_config from tenancy.auth_config as c where c.singleton;
    if octet_length(p_token) > v_config.max_token_bytes then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token of %s bytes is larger than the %s bytes accepted', octet_length(p_token), v_config.max_token_bytes
            ),
            hint = 'tenancy.configure_auth(p_max_token_bytes) sets the limit.';
    end if;
    if current_setting('transaction_read_only') = 'on' then
        raise exception using
            errcode = '25006',
            message = 'a tenant context needs a read-write transaction (it records its key with setval)',
            hint = 'Start the transaction without READ ONLY; reads stay reads. Hot standbys cannot set a context.';
    end if;

    if v_config.cache_slots > 0 and p_token is not null then
        v_hash := tenancy.secret_hash(p_token);
        -- Two candidate slots from two parts of the hash: a token is cached in whichever holds
        -- nothing current, so tokens rarely evict each other (with one slot each, 1,000 tokens in
        -- 8,192 slots would share a slot 12% of the time).
        v_slot := (('x' || encode(substr(v_hash, 1, 4), 'hex'))::bit(32)::integer & 2147483647) % v_config.cache_slots;
        v_other_slot := (('x' || encode(substr(v_hash, 5, 4), 'hex'))::bit(32)::integer & 2147483647) % v_config.cache_slots;
        select t.subject, t.tenant_claim::uuid, t.issuer_tenant_id, t.slot
        into subject, claim_tenant_id, issuer_tenant_id, v_found_slot
        from tenancy.verified_tokens as t
        where t.slot in (v_slot, v_other_slot) and t.token_hash = v_hash and t.expires_at > clock_timestamp()
        limit 1;
        -- A token verified for one tenant's own issuer is verified again for another tenant
        -- (which may trust an issuer of the same name with its own row).
        if found and (issuer_tenant_id is null or p_host_tenant_id is null or issuer_tenant_id = p_host_tenant_id) then
            -- Under REPEATABLE READ and SERIALIZABLE the snapshot may predate the slot's emptying
            -- (a revoked key, a new secret): lock the slot, so that such a change raises 40001.
            if current_setting('transaction_isolation') <> 'read committed' then
                perform from tenancy.verified_tokens as t where t.slot = v_found_slot for share;
            end if;
            -- The lockout counters are read here, cheaply; require_not_locked_out reads them again
            -- only to say which subject is locked out.
            if v_config.lockout_failures > 0 then
                v_window := tenancy.lockout_window_number(v_config.lockout_window);
                if tenancy.auth_failure_count('user:' || subject, v_window) >= v_config.lockout_failures
                    or tenancy.auth_failure_count('host:' || v_host, v_window) >= v_config.lockout_failures then
                    perform tenancy.require_not_locked_out(array['user:' || subject, 'host:' || v_host]);
                end if;
            end if;
            return;
        end if;
        subject := null;
        claim_tenant_id := null;
        issuer_tenant_id := null;
    end if;

    select t.header, t.claims, t.signature, t.signing_input
    into v_header, v_claims, v_signature, v_signing_input
    from tenancy.decode_token(p_token) as t;
    perform tenancy.require_not_locked_out(array[
        'user:' || case when jsonb_typeof(v_claims -> 'sub') = 'string' then v_claims ->> 'sub' end,
        'host:' || v_host
    ]);

    if v_header ->> 'alg' = 'HS256' then
        if v_claims ->> 'iss' is not null and exists (
            select from tenancy.jwt_issuers as i where i.issuer = v_claims ->> 'iss'
        ) then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token algorithm HS256 is not accepted for issuer %L, which signs with %s',
                    tenancy.token_excerpt(v_claims ->> 'iss', 100),
                    (select string_agg(distinct a, ', ') from tenancy.jwt_issuers as i, unnest(i.algorithms) as a
                     where i.issuer = v_claims ->> 'iss')
                ),
                hint = 'An issuer''s tokens are verified with its published keys only.';
        end if;
        -- Under REPEATABLE READ and SERIALIZABLE, locked: a secret changed after the snapshot
        -- raises 40001 instead of verifying with the old one.
        if current_setting('transaction_isolation') = 'read committed' then
            select c.* into v_jwt from tenancy.jwt_config as c where c.singleton;
        else
            select c.* into v_jwt from tenancy.jwt_config as c where c.singleton for share;
        end if;
        if not found then
            raise exception using
                errcode = '55000',
                message = 'JWT verification is not configured',
                hint = 'A tenancy_admin must call tenancy.configure_jwt(secret) first.';
        end if;
        if v_signature is distinct from tenancy.hmac_sha256(v_signing_input, convert_to(v_jwt.secret, 'UTF8')) then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token signature is invalid (subject %L)', tenancy.token_excerpt(v_claims ->> 'sub', 40)
                );
        end if;
        perform tenancy.check_token_claims(
            v_claims, null, v_jwt.max_lifetime, v_jwt.issuer,
            case when v_jwt.audience is not null then array[v_jwt.audience] end
        );
    elsif v_header ->> 'alg' in ('RS256', 'ES256') then
        -- The issuer trusted for the tenant at the host (platform-wide, or that tenant's own);
        -- without a host, the platform-wide one, else the one tenant's own issuer of that name
        -- (several tenants trusting one issuer name: the tenant_id claim chooses).
        select i.* into v_issuer
        from tenancy.jwt_issuers as i
        where i.issuer = v_claims ->> 'iss'
            and (
                i.tenant_id is null
                or i.tenant_id = p_host_tenant_id
                or (p_host_tenant_id is null and (
                    i.tenant_id::text = v_claims ->> 'tenant_id'
                    or not exists (
                        select from tenancy.jwt_issuers as o
                        where o.issuer = i.issuer and o.id <> i.id
                    )
                ))
            )
        order by i.tenant_id nulls first
        limit 1;
        if v_issuer.id is null then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token issuer %s is not trusted%s',
                    tenancy.token_excerpt(coalesce(v_claims -> 'iss', '"missing"'::jsonb)::text, 100),
                    case when p_host_tenant_id is not null then format(' for tenant %s', p_host_tenant_id) else '' end
                );
        end if;
        if not v_header ->> 'alg' = any(v_issuer.algorithms) then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token algorithm %L is not accepted for issuer %L, which signs with %s',
                    v_header ->> 'alg', tenancy.token_excerpt(v_issuer.issuer, 100), array_to_string(v_issuer.algorithms, ', ')
                );
        end if;
        if jsonb_typeof(v_header -> 'kid') is distinct from 'string' then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token names no key: the header''s kid is %s',
                    tenancy.token_excerpt(coalesce(v_header -> 'kid', '"missing"'::jsonb)::text, 60)
                );
        end if;
        -- Under REPEATABLE READ and SERIALIZABLE, locked with its issuer: a key revoked (or an
        -- issuer removed) after the snapshot raises 40001 instead of verifying.
        if current_setting('transaction_isolation') = 'read committed' then
            select k.* into v_key from tenancy.jwt_keys as k where k.issuer_id = v_issuer.id and k.kid = v_header ->> 'kid';
        else
            select k.* into v_key
            from tenancy.jwt_keys as k
            inner join tenancy.jwt_issuers as i on i.id = k.issuer_id
            where k.issuer_id = v_issuer.id and k.kid = v_header ->> 'kid'
            for key share;
        end if;
        if v_key.issuer_id is null then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token key %L is not a key of issuer %L', tenancy.token_excerpt(v_header ->> 'kid', 60),
                    tenancy.token_excerpt(v_issuer.issuer, 100)
                ),
                hint = 'A new key appears with tenancy.set_jwks() or pgtenancy jwks sync; a removed one is revoked.';
        end if;
        if v_key.alg <> v_header ->> 'alg' then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token algorithm %L does not match key %L of issuer %L, which is %s',
                    v_header ->> 'alg', tenancy.token_excerpt(v_key.kid, 60), tenancy.token_excerpt(v_issuer.issuer, 100), v_key.alg
                );
        end if;
        if v_key.alg = 'RS256' then
            v_valid := tenancy.rsa_sha256_verify(v_key.modulus, v_key.exponent, v_key.modulus_bytes, v_signing_input, v_signature);
        else
            v_valid := tenancy.es256_verify(v_key.x, v_key.y, v_signing_input, v_signature);
        end if;
        if not coalesce(v_valid, false) then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token signature is invalid (subject %L, key %L of issuer %L)',
                    tenancy.token_excerpt(v_claims ->> 'sub', 40), tenancy.token_excerpt(v_key.kid, 60),
                    tenancy.token_excerpt(v_issuer.issuer, 100)
                );
        end if;
        perform tenancy.check_token_claims(v_claims, v_issuer.leeway, v_issuer.max_lifetime, null, v_issuer.audience);
        v_tenant_claim := v_issuer.tenant_claim;
        issuer_tenant_id := v_issuer.tenant_id;
        v_leeway := v_issuer.leeway;
    else
        raise exception using
            errcode = 'TN004',
            message = format(
                'token algorithm %L is not accepted: HS256, RS256 and ES256 are', tenancy.token_excerpt(v_header ->> 'alg', 40)
            );
    end if;

    -- The subject is the user id verbatim: a JSON string of 1 to 255 characters without control
    -- characters (tenancy.user_id), whatever the identity provider's format.
    if v_claims -> 'sub' is null then
        raise exception using errcode = 'TN004', message = 'token claim sub "missing" is required';
    end if;
    begin
        if jsonb_typeof(v_claims -> 'sub') <> 'string' then
            raise exception using errcode = '23514';
        end if;
        v_user_id := v_claims ->> 'sub';
    exception when check_violation then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token claim sub %s must be a string of 1 to 255 characters without control characters',
                tenancy.token_excerpt((v_claims -> 'sub')::text, 300)
            );
    end;
    subject := v_user_id;
    if v_claims -> v_tenant_claim is not null then
        begin
            if jsonb_typeof(v_claims -> v_tenant_claim) <> 'string' then
                raise exception using errcode = '22P02';
            end if;
            claim_tenant_id := (v_claims ->> v_tenant_claim)::uuid;
        exception when invalid_text_representation then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token claim %s %s must be a UUID', v_tenant_claim,
                    tenancy.token_excerpt((v_claims -> v_tenant_claim)::text, 100)
                );
        end;
    end if;

    -- Cache what was verified, for the token's lifetime (plus the issuer's leeway; none for HS256,
    -- whose slots have no issuer and are emptied when the secret or its limits change).
    if v_hash is not null and current_setting('transaction_isolation') = 'read committed' then
        update tenancy.verified_tokens as t
        set token_hash = v_hash,
            issuer_id = v_issuer.id,
            kid = v_key.kid,
            subject = v_user_id,
            tenant_claim = claim_tenant_id::text,
            issuer_tenant_id = v_issuer.tenant_id,
            expires_at = to_timestamp(((v_claims -> 'exp')::numeric + extract(epoch from v_leeway))::double precision)
        where t.slot = (
            -- An empty or expired candidate first, else the one expiring first; a candidate another
            -- transaction is writing is passed over.
            select s.slot from tenancy.verified_tokens as s
            where s.slot in (v_slot, v_other_slot)
            order by s.expires_at > clock_timestamp(), s.expires_at
            limit 1
            for update skip locked
        )
            -- Only while what verified the token is unchanged, held until this transaction ends:
            -- a revocation, an issuer's change or a new secret that committed since it was read
            -- would otherwise find no slot to empty and leave one written after it. A revocation
            -- (a deleted key or issuer) or a new secret still running is waited for and then seen
            -- (no slot is written); one that comes later waits for this transaction and then
            -- empties the slot. Keys and issuers are held FOR KEY SHARE, which a key's deletion
            -- waits for and an issuer's update (its jwks_synced_at at each sync) does not.
            and case
                when v_issuer.id is null then exists (
                    select from tenancy.jwt_config as c
                    where c.singleton and c::text = v_jwt::text
                    for share
                )
                else exists (
                    select from tenancy.jwt_issuers as i
                    inner join tenancy.jwt_keys as k on k.issuer_id = i.id
                    where i.id = v_issuer.id and i::text = v_issuer::text
                        and k.kid = v_key.kid and k.jwk = v_key.jwk
                    for key share
                )
            end;
    end if;
end
$$;

comment on function tenancy.verified_token(text, text, uuid) is
'pgtenancy internal: verifies p_token (size, then the verified-token cache, else HS256 with the '
'shared secret or RS256/ES256 with the key of the trusted issuer named by iss and kid, for the '
'tenant at the host when p_host_tenant_id is given; lockouts before any signature) and returns '
'its subject, its tenant claim and the tenant of its issuer (NULL: platform-wide). TN004 naming '
'the failed check, TN013 when locked out, 25006 in a read-only transaction.';

revoke all on function tenancy.verified_token(text, text, uuid) from public;
