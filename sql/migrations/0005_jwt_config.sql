-- pgtenancy table tenancy.jwt_config: the HS256 secret, expected issuer, audience and lifetime.
-- migrate: replaces 0002_core 0005_jwt

create table tenancy.jwt_config (
    singleton boolean not null default true,
    secret text not null,
    issuer text,
    audience text,
    updated_at timestamptz not null default pg_catalog.now(),
    max_lifetime interval,
    constraint jwt_config_pkey primary key (singleton),
    constraint jwt_config_singleton_check check (singleton),
    constraint jwt_config_max_lifetime_check check (max_lifetime operator (pg_catalog.>) interval '0')
);
comment on table tenancy.jwt_config is
'pgtenancy: the HS256 secret and expected issuer/audience; readable by tenancy_owner alone.';
comment on column tenancy.jwt_config.max_lifetime is
'pgtenancy: when set, tokens whose exp is further than this from now, or from their iat, are '
'refused (TN004); NULL accepts any lifetime. Set with tenancy.configure_jwt_limits().';

revoke all on tenancy.jwt_config from public;
