-- pgtenancy Citus: the key of the context form that Citus workers verify on their own.
-- On a single PostgreSQL the tenant context is bound to the session that set it (a sequence
-- value only that session reads). A Citus worker never sees that session: it receives the
-- coordinator's SET LOCAL commands and runs the shard queries. The Citus flavour of the
-- generated policies (pgtenancy generate --flavour citus) therefore checks a second setting,
-- tenancy.context_mac, which tenancy.establish_context writes next to tenancy.context once this
-- table holds its row: an expiry, a nonce and an HMAC-SHA-256 under the key below over them and
-- the whole context value (docs/citus.md). No row: the form is off and costs a context one
-- index lookup. On Citus this is a reference table, so every worker holds the key.

create table tenancy.context_mac_keys (
    singleton boolean not null default true,
    secret bytea not null,
    lifetime_seconds integer not null default 30,
    created_at timestamptz not null default pg_catalog.now(),
    constraint context_mac_keys_pkey primary key (singleton),
    constraint context_mac_keys_singleton_check check (singleton),
    constraint context_mac_keys_secret_check check (
        pg_catalog.octet_length(secret) operator (pg_catalog.>=) 32  -- noqa: LT01
    ),
    constraint context_mac_keys_lifetime_check check (
        lifetime_seconds operator (pg_catalog.>=) 1  -- noqa: LT01
        and lifetime_seconds operator (pg_catalog.<=) 3600  -- noqa: LT01
    )
);
comment on table tenancy.context_mac_keys is
'pgtenancy: the key of the worker-verifiable context form (tenancy.context_mac, Citus flavour); '
'one row while the form is on (tenancy.configure_context_mac). Only tenancy_owner reads it: '
'pgtenancy''s functions sign and verify with it, no other role ever sees the key.';
comment on column tenancy.context_mac_keys.secret is
'The HMAC-SHA-256 key (32 random bytes). Replacing it refuses every context signed before.';
comment on column tenancy.context_mac_keys.lifetime_seconds is
'How long a signed context is accepted: by transactions that start before its expiry.';

revoke all on tenancy.context_mac_keys from public;
