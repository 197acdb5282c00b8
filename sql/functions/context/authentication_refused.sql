-- tenancy.authentication_refused: count and record a refused token, whatever its transaction does next.

-- Called by tenancy.authenticate and tenancy.try_authenticate with the error that refused the
-- token. Refusals of the token, the user, the tenant or the host (TN002, TN003, TN004, TN010,
-- TN012, P0002) are numbered in a sequence no rollback takes back and leave an
-- authentication.failed event; those of a token whose signature was verified also count against
-- its user and the host in the lockout counters (tenancy.authentication_failed). A refusal before
-- the signature was verified (malformed, unknown issuer or key, bad signature, an unknown host)
-- names a user and host the sender chose: counting them would let anyone lock any user out, and
-- made-up names would fill the shared counters until every user were over the limit. Guessing a
-- signature is not what a lockout stops (HS256 and RS256 cannot be guessed); the total and the
-- events still show such a flood. Errors
-- of the server or the session (55000 not configured, 25006 read-only, 40001, TN008) and TN013
-- (already locked out: the lockout event was recorded once) are neither counted nor recorded.
-- The user and tenant of the event are what the token claims (verified or not: the details
-- say which it was); the token itself is never recorded.
create or replace function tenancy.authentication_refused(
    p_token text, p_host text, p_sqlstate text, p_message text
)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_claims jsonb;
    v_user_id text;
    v_tenant_id uuid;
    v_host text;
    v_verified boolean;
begin
    if p_sqlstate not in ('TN002', 'TN003', 'TN004', 'TN010', 'TN012', 'P0002') then
        return false;
    end if;
    -- What the token claims, if it can be read at all (within the size limit).
    begin
        if octet_length(p_token) <= (select c.max_token_bytes from tenancy.auth_config as c) then
            select t.claims into v_claims from tenancy.decode_token(p_token) as t;
        end if;
    exception when others then
        v_claims := null;
    end;
    if jsonb_typeof(v_claims -> 'sub') = 'string' then
        v_user_id := v_claims ->> 'sub';
    end if;
    begin
        v_host := tenancy.normalized_host(p_host);
        v_tenant_id := tenancy.resolve_tenant(p_host);
    exception when others then
        v_host := null;
    end;
    if v_tenant_id is null and jsonb_typeof(v_claims -> 'tenant_id') = 'string'
        and v_claims ->> 'tenant_id' ~ '^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$' then
        v_tenant_id := (v_claims ->> 'tenant_id')::uuid;
    end if;
    -- Refusals raised after the signature was verified: the tenant, the membership, and the
    -- claims checked once the signature held (check_token_claims: times, lifetime, iss of the
    -- shared secret, aud; then sub and the tenant claim in verified_token and apply_token).
    v_verified := p_sqlstate in ('TN002', 'TN003', 'P0002')
        or (p_sqlstate = 'TN004' and p_message ~ (
            '^token (expired at |is not valid before |has no numeric exp |(exp|nbf|iat) claim |lifetime exceeds '
            '|issuer .* does not match |audience |claim |claims sub |of the identity provider of tenant )'
        ));
    perform tenancy.authentication_failed(
        p_sqlstate,
        p_message,
        case when v_verified then array['user:' || v_user_id, 'host:' || v_host] else array[]::text [] end,
        v_tenant_id,
        v_user_id,
        coalesce(v_host, tenancy.token_excerpt(p_host, 255)),
        null,
        jsonb_build_object('credential', 'token', 'signature_verified', v_verified)
    );
    return true;
end
$$;

comment on function tenancy.authentication_refused(text, text, text, text) is
'pgtenancy internal: for a token refused with p_sqlstate (TN002, TN003, TN004, TN010, TN012, '
'P0002), numbers the failure (never rolled back), records an authentication.failed event, and, '
'when the token''s signature was verified, counts it against its user and the host for lockouts; '
'returns false for errors that are not refusals.';

revoke all on function tenancy.authentication_refused(text, text, text, text) from public;
