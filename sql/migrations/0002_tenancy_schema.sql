-- pgtenancy schema: the tenancy schema owned by tenancy_owner, default privileges, and pgcrypto.
-- migrate: as-migrating-user
-- migrate: replaces 0001_roles
-- Runs as the migrating user, who needs CREATE on the database.

-- pgcrypto (HMAC for HS256 tokens): an existing installation, in whatever schema, is used as it
-- is (tenancy.hmac_sha256 finds it); otherwise it goes into a schema of its own, not public.
do $pgcrypto$
begin
    if not exists (select from pg_catalog.pg_extension where extname operator (pg_catalog.=) 'pgcrypto') then
        create schema pgcrypto;
        comment on schema pgcrypto is 'pgtenancy: the pgcrypto extension, outside public.';
        revoke all on schema pgcrypto from public;
        grant usage on schema pgcrypto to tenancy_owner;
        create extension pgcrypto schema pgcrypto;
    end if;
end
$pgcrypto$;

-- No IF NOT EXISTS: a schema someone else created beforehand must not be silently adopted.
create schema tenancy authorization tenancy_owner;
comment on schema tenancy is 'pgtenancy: tenants, memberships, tenant context and their functions.';

revoke all on schema tenancy from public;
grant usage on schema tenancy to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;

-- Nothing pgtenancy creates is executable by PUBLIC unless granted explicitly.
alter default privileges for role tenancy_owner revoke execute on functions from public;
alter default privileges for role tenancy_owner in schema tenancy
revoke execute on functions from public;
