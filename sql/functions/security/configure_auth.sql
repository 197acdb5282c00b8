-- tenancy.configure_auth: set the token size limit, the verified-token cache size and the lockout rule.

create or replace function tenancy.configure_auth(
    p_max_token_bytes integer default null,
    p_cache_slots integer default null,
    p_lockout_failures integer default null,
    p_lockout_window interval default null
)
returns tenancy.auth_config
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_config tenancy.auth_config;
begin
    -- NULL keeps a setting. Each bound is checked here so that the message names the value.
    if p_max_token_bytes not between 1024 and 1048576 then
        raise exception using
            errcode = '22023',
            message = format('maximum token size %s is out of range: 1024 to 1048576 bytes', p_max_token_bytes);
    end if;
    if p_cache_slots not between 0 and 16777216 then
        raise exception using
            errcode = '22023',
            message = format('verified-token cache size %s is out of range: 0 to 16777216 slots', p_cache_slots);
    end if;
    if p_lockout_failures not between 0 and 1000000 then
        raise exception using
            errcode = '22023',
            message = format('lockout failure count %s is out of range: 0 (never) to 1000000', p_lockout_failures);
    end if;
    if p_lockout_window not between interval '1 second' and interval '1 day' then
        raise exception using
            errcode = '22023',
            message = format('lockout window %s is out of range: 1 second to 1 day', p_lockout_window);
    end if;
    update tenancy.auth_config as c
    set max_token_bytes = coalesce(p_max_token_bytes, c.max_token_bytes),
        cache_slots = coalesce(p_cache_slots, c.cache_slots),
        lockout_failures = coalesce(p_lockout_failures, c.lockout_failures),
        lockout_window = coalesce(p_lockout_window, c.lockout_window),
        updated_at = now()
    where c.singleton
    returning c.* into v_config;
    -- The cache has exactly cache_slots slots, numbered from 0; the slot of a token is its hash
    -- modulo their number, so resizing empties every slot.
    delete from tenancy.verified_tokens as t where t.slot >= v_config.cache_slots;
    insert into tenancy.verified_tokens (slot)
    select generate_series(0, v_config.cache_slots - 1)
    on conflict (slot) do nothing;
    if p_cache_slots is not null then
        update tenancy.verified_tokens as t
        set token_hash = '\x'::bytea, issuer_id = null, kid = null, subject = null, tenant_claim = null,
            issuer_tenant_id = null, expires_at = '-infinity'
        where t.token_hash <> '\x'::bytea;
    end if;
    return v_config;
end
$$;

comment on function tenancy.configure_auth(integer, integer, integer, interval) is
'For tenancy_admin: sets the largest token authenticate looks at (bytes), the number of '
'verified-token cache slots (0 disables the cache), and the lockout rule (failures within the '
'window; 0 never locks out); NULL keeps a setting. Returns the configuration.';

revoke all on function tenancy.configure_auth(integer, integer, integer, interval) from public;
grant execute on function tenancy.configure_auth(integer, integer, integer, interval) to tenancy_admin;
