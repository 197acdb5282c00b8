-- tenancy.context_mac_valid: whether a signed context (tenancy.context_mac) is unexpired and signed under the current key for this context value.

-- The part of the Citus flavour's check that needs the key, which only tenancy_owner reads: it
-- runs as the owner (SECURITY DEFINER, search_path pinned). p_mac must be exactly
-- 'm1|<expiry>|<nonce>|<hmac>' (digits, 32 and 64 lowercase hex digits); the expiry is compared
-- with the start of the transaction (so a context is good for a whole transaction that began in
-- time, on every node, and a value replayed in a transaction that begins later is refused), and
-- the HMAC is recomputed over the head and p_value. No key row (the form is off): false.
-- Stable and parallel safe: it reads settings passed in and one row of a table.
create or replace function tenancy.context_mac_valid(p_value text, p_mac text)
returns boolean
language sql
stable
security definer
parallel safe
set search_path = pg_catalog, pg_temp
as $$
    select coalesce((
        select
            to_timestamp(split_part(p_mac, '|', 2)::float8) > transaction_timestamp()
            and split_part(p_mac, '|', 4) = encode(
                tenancy.hmac_sha256(
                    convert_to(left(p_mac, -64) || p_value, 'UTF8'), k.secret
                ),
                'hex'
            )
        from tenancy.context_mac_keys as k
        where k.singleton and p_mac ~ '^m1\|[0-9]{1,12}\|[0-9a-f]{32}\|[0-9a-f]{64}$'
    ), false)
$$;

comment on function tenancy.context_mac_valid(text, text) is
'pgtenancy internal: true when p_mac (tenancy.context_mac) is well formed, unexpired at the start '
'of the transaction and the HMAC-SHA-256 under the current key of its head and the context '
'value p_value; false otherwise (and when the Citus flavour''s form is off).';

revoke all on function tenancy.context_mac_valid(text, text) from public;
grant execute on function tenancy.context_mac_valid(text, text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
