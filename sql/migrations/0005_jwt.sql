-- 0005_jwt: an optional maximum token lifetime that tenancy.verify_jwt enforces.

alter table tenancy.jwt_config add column max_lifetime interval;
alter table tenancy.jwt_config
add constraint jwt_config_max_lifetime_check check (max_lifetime > interval '0');

comment on column tenancy.jwt_config.max_lifetime is
'pgtenancy: when set, tokens whose exp is further than this from now, or from their iat, are '
'refused (TN004); NULL accepts any lifetime. Set with tenancy.configure_jwt_limits().';
