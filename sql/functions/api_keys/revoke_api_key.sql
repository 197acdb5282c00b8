-- tenancy.revoke_api_key: an owner or admin revokes one of the current tenant's API keys.

-- Every authenticate_api_key that starts after the revocation commits refuses the key (under
-- REPEATABLE READ or SERIALIZABLE one whose snapshot is older raises 40001); a transaction that
-- authenticated with the key before keeps its context until it ends (a context lives one
-- transaction). Revoking a revoked key changes nothing and returns when it was revoked. The
-- revocation waits for a transaction that is refreshing the key's last_used_at (at most one a
-- minute) to end.
create or replace function tenancy.revoke_api_key(p_id uuid)
returns timestamptz
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_caller record := tenancy.require_member_manager('API keys');  -- TN001, 42501
    v_role text;
    v_prefix text;
    v_revoked_at timestamptz;
begin
    select k.role, k.prefix, k.revoked_at into v_role, v_prefix, v_revoked_at
    from tenancy.api_keys as k
    where k.tenant_id = v_caller.tenant_id and k.id = p_id
    for update;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('API key %s is not a key of tenant %s', coalesce(p_id::text, 'NULL'), v_caller.tenant_id);
    end if;
    if v_role = 'owner' and v_caller.role = 'admin' then
        raise exception using
            errcode = '42501',
            message = format('an admin cannot revoke owner API key %s of tenant %s', p_id, v_caller.tenant_id),
            hint = 'Only owners revoke owner keys.';
    end if;
    if v_revoked_at is not null then
        return v_revoked_at;
    end if;
    update tenancy.api_keys as k
    set revoked_at = now(), revoked_by = v_caller.user_id
    where k.tenant_id = v_caller.tenant_id and k.id = p_id;
    update tenancy.api_key_secrets as s
    set revoked_at = now()
    where s.tenant_id = v_caller.tenant_id and s.api_key_id = p_id;
    perform tenancy.record_security_event(
        'api_key.revoked',
        format('API key %s (%s...) revoked', p_id, v_prefix),
        v_caller.tenant_id,
        v_caller.user_id,
        null,
        null,
        '{}',
        p_id::text
    );
    return now();
end
$$;

comment on function tenancy.revoke_api_key(uuid) is
'For owners and admins of the current tenant (and service contexts): revokes an API key (admins '
'cannot revoke owner keys): every later authenticate_api_key refuses it (TN004). Records an '
'api_key.revoked security event; returns the revocation time (the first one for a key revoked '
'already). TN001 without a context, 42501 for other roles and API key contexts, P0002 for a key '
'that is not the tenant''s.';

revoke all on function tenancy.revoke_api_key(uuid) from public;
grant execute on function tenancy.revoke_api_key(uuid) to tenancy_app, tenancy_service;
