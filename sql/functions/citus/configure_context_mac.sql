-- tenancy.configure_context_mac: turn the worker-verifiable context form (Citus flavour) on or off, or replace its key.

-- On: the key row of tenancy.context_mac_keys exists, and every context established from then
-- on is also signed into tenancy.context_mac (tenancy.sign_context_mac). Off: the row is deleted;
-- contexts are no longer signed and policies of the Citus flavour show no row. p_rotate
-- replaces the key: contexts signed before are refused at once (they would expire within the
-- lifetime anyway). The key is 32 bytes from two gen_random_uuid() (pg_strong_random), 244 of
-- its bits random.
create or replace function tenancy.configure_context_mac(
    p_enabled boolean, p_lifetime_seconds integer default 30, p_rotate boolean default false
)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_secret bytea := decode(
        replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''), 'hex'
    );
begin
    if p_enabled is null or p_rotate is null then
        raise exception using errcode = '22004', message = 'p_enabled and p_rotate must not be null';
    end if;
    if not p_enabled then
        delete from tenancy.context_mac_keys;
        return 'off';
    end if;
    if p_lifetime_seconds is null or p_lifetime_seconds < 1 or p_lifetime_seconds > 3600 then
        raise exception using
            errcode = '22023',
            message = format('a signed context lives 1 to 3600 seconds, not %s', p_lifetime_seconds);
    end if;
    insert into tenancy.context_mac_keys (singleton, secret, lifetime_seconds)
    values (true, v_secret, p_lifetime_seconds)
    on conflict (singleton) do update
    set
        lifetime_seconds = excluded.lifetime_seconds,
        secret = case when p_rotate then excluded.secret else tenancy.context_mac_keys.secret end,
        created_at = case when p_rotate then now() else tenancy.context_mac_keys.created_at end;
    return case when p_rotate then 'on (new key)' else 'on' end;
end
$$;

comment on function tenancy.configure_context_mac(boolean, integer, boolean) is
'Turns the worker-verifiable context form of the Citus flavour on (a key row, contexts signed '
'into tenancy.context_mac, accepted for p_lifetime_seconds) or off; p_rotate replaces the key. '
'Returns the state. tenancy_admin; sql/citus/distribute.sql calls it.';

revoke all on function tenancy.configure_context_mac(boolean, integer, boolean) from public;
grant execute on function tenancy.configure_context_mac(boolean, integer, boolean) to tenancy_admin;
