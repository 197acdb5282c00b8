-- tenancy.authentication_refused: count and record a refused token, whatever its transaction does next.

-- Called by tenancy.authenticate and tenancy.try_authenticate with the error that refused the
-- token. Refusals of the token, the user, the tenant or the host (TN002, TN003, TN004, TN010,
-- TN012, P0002) count against the token's claimed user and the host, in counters no rollback
-- takes back (tenancy.authentication_failed), and leave an authentication.failed event. Errors
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
    perform tenancy.authentication_failed(
        p_sqlstate,
        p_message,
        array['user:' || v_user_id, 'host:' || v_host],
        v_tenant_id,
        v_user_id,
        coalesce(v_host, tenancy.token_excerpt(p_host, 255)),
        null,
        jsonb_build_object('credential', 'token', 'signature_verified', p_sqlstate in ('TN002', 'TN003', 'P0002'))
    );
    return true;
end
$$;

comment on function tenancy.authentication_refused(text, text, text, text) is
'pgtenancy internal: for a token refused with p_sqlstate (TN002, TN003, TN004, TN010, TN012, '
'P0002), counts the failure against the claimed user and the host (never rolled back) and '
'records an authentication.failed event; returns false for errors that are not refusals.';

revoke all on function tenancy.authentication_refused(text, text, text, text) from public;
