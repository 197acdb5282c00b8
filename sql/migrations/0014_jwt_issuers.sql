-- pgtenancy trusted token issuers: tenancy.jwt_issuers, their keys and the verified-token cache.
-- tenancy.jwt_issuers: one row per trusted issuer (the iss claim), platform-wide (tenant_id NULL)
-- or a tenant's own identity provider (tokens from it authenticate into that tenant only).
-- tenancy.jwt_keys: the issuer's public keys by kid, as published in its JWKS, with the numbers
-- verification needs computed once when stored. tenancy.verified_tokens: a fixed number of slots
-- (bounded by construction), each holding the outcome of one verified token keyed by the
-- SHA-256 of the token (never the token). All three are platform tables readable by
-- tenancy_owner alone; pgtenancy's functions write them.

create table tenancy.jwt_issuers (
    id bigint generated always as identity,
    issuer text not null,
    tenant_id uuid,
    audience text[] not null,
    algorithms text[] not null default array['RS256'],
    leeway interval not null default interval '60 seconds',
    max_lifetime interval,
    tenant_claim text not null default 'tenant_id',
    jwks_url text,
    jwks_synced_at timestamptz,
    created_at timestamptz not null default pg_catalog.now(),
    updated_at timestamptz not null default pg_catalog.now(),
    constraint jwt_issuers_pkey primary key (id),
    constraint jwt_issuers_issuer_tenant_key unique nulls not distinct (issuer, tenant_id),
    constraint jwt_issuers_tenant_id_fkey foreign key (tenant_id)
    references tenancy.tenants (id) on delete cascade,
    constraint jwt_issuers_issuer_check check (
        pg_catalog.length(issuer) operator (pg_catalog.>=) 1 and pg_catalog.length(issuer) operator (pg_catalog.<=) 2048  -- noqa: LT01
    ),
    constraint jwt_issuers_audience_check check (
        pg_catalog.cardinality(audience) operator (pg_catalog.>) 0
        and pg_catalog.array_position(audience, null) is null
        and pg_catalog.array_position(audience, '') is null
    ),
    constraint jwt_issuers_algorithms_check check (
        pg_catalog.cardinality(algorithms) operator (pg_catalog.>) 0
        and algorithms operator (pg_catalog.<@) array['RS256', 'ES256']
    ),
    constraint jwt_issuers_leeway_check check (
        leeway operator (pg_catalog.>=) interval '0'  -- noqa: LT01
        and leeway operator (pg_catalog.<=) interval '5 minutes'  -- noqa: LT01
    ),
    constraint jwt_issuers_max_lifetime_check check (max_lifetime operator (pg_catalog.>) interval '0'),
    constraint jwt_issuers_jwks_url_check check (jwks_url operator (pg_catalog.~) '^https?://[^[:space:]]+$')
);
create index jwt_issuers_tenant_id_idx on tenancy.jwt_issuers (tenant_id);
comment on table tenancy.jwt_issuers is
'pgtenancy: trusted token issuers (iss), each with the audiences and algorithms it is accepted '
'for, its clock-skew leeway and JWKS URL; tenant_id NULL for platform-wide issuers, else the one '
'tenant whose own identity provider it is. Set with tenancy.configure_issuer(), keys with '
'tenancy.set_jwks(). Platform table, readable by tenancy_owner alone.';
comment on column tenancy.jwt_issuers.tenant_claim is
'The claim naming the tenant (a uuid) when a token is presented without a host: tenant_id unless '
'the identity provider needs a namespaced claim (e.g. https://example.com/tenant_id).';
comment on sequence tenancy.jwt_issuers_id_seq is 'pgtenancy: numbers tenancy.jwt_issuers.';
revoke all on tenancy.jwt_issuers from public;

create table tenancy.jwt_keys (
    issuer_id bigint not null,
    kid text not null,
    kty text not null,
    alg text not null,
    modulus numeric,
    exponent numeric,
    modulus_bytes integer,
    x numeric,
    y numeric,
    jwk jsonb not null,
    added_at timestamptz not null default pg_catalog.now(),
    constraint jwt_keys_pkey primary key (issuer_id, kid),
    constraint jwt_keys_issuer_id_fkey foreign key (issuer_id)
    references tenancy.jwt_issuers (id) on delete cascade,
    constraint jwt_keys_kid_check check (
        pg_catalog.length(kid) operator (pg_catalog.>=) 1 and pg_catalog.length(kid) operator (pg_catalog.<=) 256  -- noqa: LT01
    ),
    constraint jwt_keys_material_check check (
        (
            kty operator (pg_catalog.=) 'RSA' and alg operator (pg_catalog.=) 'RS256'
            and modulus is not null and exponent is not null and modulus_bytes is not null
        )
        or (
            kty operator (pg_catalog.=) 'EC' and alg operator (pg_catalog.=) 'ES256'
            and x is not null and y is not null
        )
    )
);
comment on table tenancy.jwt_keys is
'pgtenancy: the public signing keys of each trusted issuer by kid (its JWKS), with the numbers '
'verification needs. Replaced as a whole by tenancy.set_jwks(): a new kid is a rotation, a '
'missing kid a revocation. Platform table, readable by tenancy_owner alone.';
revoke all on tenancy.jwt_keys from public;

create table tenancy.verified_tokens (
    slot integer not null,
    token_hash bytea not null,
    issuer_id bigint not null,
    kid text not null,
    subject text not null,
    tenant_claim text,
    issuer_tenant_id uuid,
    expires_at timestamptz not null,
    constraint verified_tokens_pkey primary key (slot),
    constraint verified_tokens_key_fkey foreign key (issuer_id, kid)
    references tenancy.jwt_keys (issuer_id, kid) on delete cascade
) with (fillfactor = 50);
create index verified_tokens_key_idx on tenancy.verified_tokens (issuer_id, kid);
comment on table tenancy.verified_tokens is
'pgtenancy: tokens whose signature and claims were verified, in a fixed number of slots chosen by '
'the SHA-256 of the token (the token itself is never stored): a later presentation of the same '
'token costs one index lookup. A slot is overwritten by the next token hashed to it; entries go '
'with their key (revocation) and are never used past their expiry. Membership and tenant status '
'are checked on every authentication, never cached.';
revoke all on tenancy.verified_tokens from public;

create table tenancy.auth_config (
    singleton boolean not null default true,
    max_token_bytes integer not null default 16384,
    cache_slots integer not null default 65536,
    lockout_failures integer not null default 10,
    lockout_window interval not null default interval '15 minutes',
    updated_at timestamptz not null default pg_catalog.now(),
    constraint auth_config_pkey primary key (singleton),
    constraint auth_config_singleton_check check (singleton),
    constraint auth_config_max_token_bytes_check check (
        max_token_bytes operator (pg_catalog.>=) 1024 and max_token_bytes operator (pg_catalog.<=) 1048576  -- noqa: LT01
    ),
    constraint auth_config_cache_slots_check check (
        cache_slots operator (pg_catalog.>=) 0 and cache_slots operator (pg_catalog.<=) 16777216  -- noqa: LT01
    ),
    constraint auth_config_lockout_failures_check check (
        lockout_failures operator (pg_catalog.>=) 0 and lockout_failures operator (pg_catalog.<=) 1000000  -- noqa: LT01
    ),
    constraint auth_config_lockout_window_check check (
        lockout_window operator (pg_catalog.>=) interval '1 second' and lockout_window operator (pg_catalog.<=) interval '1 day'  -- noqa: LT01
    )
);
insert into tenancy.auth_config default values;
comment on table tenancy.auth_config is
'pgtenancy: limits of authentication: the largest token looked at, the number of verified-token '
'cache slots (0: no cache), and the lockout rule (lockout_failures failed attempts for one user, '
'API key or host within one lockout_window refuse further attempts until the window ends; 0: '
'never). One row; set with tenancy.configure_auth().';
revoke all on tenancy.auth_config from public;
grant select on tenancy.auth_config to tenancy_admin, tenancy_auditor;
