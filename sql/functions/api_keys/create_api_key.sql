-- tenancy.create_api_key: an owner or admin makes an API key for the current tenant; the key is returned once.

-- The key is pgtk_, the tenant's id in base64url (22 characters) and 256 random bits
-- (tenancy.random_token); only its SHA-256 is stored (tenancy.api_key_secrets), with the first 8
-- characters of its random part listed in tenancy.api_keys to tell keys apart.
create or replace function tenancy.create_api_key(
    p_name text, p_role text, p_expires_at timestamptz default null, out id uuid, out key text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_caller record := tenancy.require_member_manager('API keys');  -- TN001, 42501
    v_name text := btrim(p_name);
begin
    perform tenancy.validate_member_role(p_role);  -- 22023
    if v_name is null or length(v_name) not between 1 and 200 then
        raise exception using
            errcode = '22023',
            message = format('invalid API key name %L: 1 to 200 characters once trimmed', tenancy.token_excerpt(p_name, 100));
    end if;
    if p_expires_at <= now() then
        raise exception using
            errcode = '22023',
            message = format('API key expiry %s is not in the future', p_expires_at);
    end if;
    if p_role = 'owner' and v_caller.role = 'admin' then
        raise exception using
            errcode = '42501',
            message = format('an admin cannot create an owner API key in tenant %s', v_caller.tenant_id),
            hint = 'Only owners create owner keys.';
    end if;
    key := tenancy.random_token('pgtk_' || tenancy.base64url_encode(uuid_send(v_caller.tenant_id)));
    insert into tenancy.api_keys as k (tenant_id, name, role, prefix, created_by, expires_at)
    values (v_caller.tenant_id, v_name, p_role::tenancy.member_role, substr(key, 28, 8), v_caller.user_id, p_expires_at)
    returning k.id into id;
    insert into tenancy.api_key_secrets (tenant_id, hash, api_key_id)
    values (v_caller.tenant_id, tenancy.secret_hash(key), id);
    perform tenancy.record_security_event(
        'api_key.created',
        format('API key %s (%s...) created with role %s', id, substr(key, 28, 8), p_role),
        v_caller.tenant_id,
        v_caller.user_id,
        null,
        null,
        jsonb_build_object('name', v_name, 'role', p_role, 'expires_at', p_expires_at),
        id::text
    );
end
$$;

comment on function tenancy.create_api_key(text, text, timestamptz) is
'For owners and admins of the current tenant (and service contexts): makes an API key with a '
'name, a member role (admins cannot make owner keys) and an optional expiry, and returns its id '
'and the key, once: only its hash is stored. Records an api_key.created security event. TN001 '
'without a context, 42501 for other roles and for API key contexts, 22023 for a bad role, name '
'or an expiry not in the future.';

revoke all on function tenancy.create_api_key(text, text, timestamptz) from public;
grant execute on function tenancy.create_api_key(text, text, timestamptz) to tenancy_app, tenancy_service;
