-- pgtenancy API keys: tenancy.api_keys (a tenant's keys, without secrets) and tenancy.api_key_secrets (their hashes).
-- A key is 'pgtk_', its tenant's id (22 characters of base64url) and 256 random bits (43
-- characters): 70 characters. The tenant in the key lets every lookup lead with tenant_id, as
-- every key and index of a tenant table does. The key itself is never stored, only its SHA-256
-- (tenancy.secret_hash), and the hash lives apart from the list the tenant reads:
-- * tenancy.api_keys, a tenant table (row level security, generated policies): owners and admins
--   read their tenant's keys there: name, role, the prefix that tells keys apart, times;
-- * tenancy.api_key_secrets, a platform table no application role can read: the hash of each
--   key, the one index tenancy.authenticate_api_key probes, and the key's revocation time (a
--   revocation after a REPEATABLE READ transaction's snapshot makes locking this row raise 40001).
-- Both are written together by pgtenancy's functions only (create_api_key, revoke_api_key).

create table tenancy.api_keys (
    tenant_id uuid not null,
    id uuid not null default pg_catalog.gen_random_uuid(),
    name text not null,
    role tenancy.member_role not null,
    prefix text not null,
    created_by text,
    created_at timestamptz not null default pg_catalog.now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    revoked_by text,
    last_used_at timestamptz,
    constraint api_keys_pkey primary key (tenant_id, id),
    constraint api_keys_tenant_id_fkey foreign key (tenant_id)
    references tenancy.tenants (id) on delete cascade,
    constraint api_keys_name_check check (
        pg_catalog.length(name) operator (pg_catalog.>=) 1  -- noqa: LT01
        and pg_catalog.length(name) operator (pg_catalog.<=) 200  -- noqa: LT01
    )
);
comment on table tenancy.api_keys is
'pgtenancy: a tenant''s API keys for machine access (tenancy.create_api_key), without their '
'secrets: owners and admins of the tenant read them here. Tenant table; written only by '
'pgtenancy''s functions.';
comment on column tenancy.api_keys.role is
'The member role a context set with the key has (tenancy.authenticate_api_key).';
comment on column tenancy.api_keys.prefix is
'The first 8 characters of the key''s random part (after pgtk_ and the tenant): enough to tell '
'keys apart, not enough to use one.';
comment on column tenancy.api_keys.created_by is
'The user who created the key; NULL when a service context did.';
comment on column tenancy.api_keys.last_used_at is
'When the key last authenticated, refreshed at most once a minute.';

create table tenancy.api_key_secrets (
    tenant_id uuid not null,
    hash bytea not null,
    api_key_id uuid not null,
    revoked_at timestamptz,
    constraint api_key_secrets_pkey primary key (tenant_id, hash) include (api_key_id),
    constraint api_key_secrets_api_key_fkey foreign key (tenant_id, api_key_id)
    references tenancy.api_keys (tenant_id, id) on delete cascade
);
create unique index api_key_secrets_tenant_id_api_key_id_idx
on tenancy.api_key_secrets (tenant_id, api_key_id);
comment on table tenancy.api_key_secrets is
'pgtenancy: the SHA-256 of every API key (never the key), looked up by tenancy.authenticate_api_key. '
'Platform table, readable by tenancy_owner alone; written with tenancy.api_keys.';
comment on column tenancy.api_key_secrets.revoked_at is
'Set with tenancy.api_keys.revoked_at: authenticate_api_key locks this row under REPEATABLE READ '
'and SERIALIZABLE, so a revocation committed after the snapshot raises 40001.';

revoke all on tenancy.api_keys from public;
revoke all on tenancy.api_key_secrets from public;
