-- pgtenancy core tables: tenants, memberships, JWT settings and the context sequences.

create table tenancy.tenants (
    id uuid not null default gen_random_uuid(),
    slug text not null,
    name text not null,
    status text not null default 'active',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint tenants_pkey primary key (id),
    constraint tenants_slug_key unique (slug),
    constraint tenants_status_check check (status in ('active', 'suspended', 'deleted')),
    constraint tenants_slug_check check (slug ~ '^[a-z0-9]([a-z0-9-]{1,61})[a-z0-9]$'),
    constraint tenants_name_check check (length(btrim(name)) between 1 and 200)
);
comment on table tenancy.tenants is
'pgtenancy: one row per tenant. Platform table: not tenant-scoped, not readable by tenancy_app.';
comment on column tenancy.tenants.slug is
'Lower-case DNS label (3-63 characters: a-z, 0-9, inner hyphens); unique; the tenant subdomain.';
comment on column tenancy.tenants.status is
'active, suspended (context refused, data kept) or deleted.';

create table tenancy.memberships (
    tenant_id uuid not null,
    user_id uuid not null,
    role text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint memberships_pkey primary key (tenant_id, user_id),
    constraint memberships_tenant_id_fkey foreign key (tenant_id)
    references tenancy.tenants (id) on delete cascade,
    constraint memberships_role_check check (role in ('owner', 'admin', 'member', 'viewer'))
);
create index memberships_tenant_id_role_idx on tenancy.memberships (tenant_id, role);
create index memberships_user_id_idx on tenancy.memberships (user_id);
comment on table tenancy.memberships is
'pgtenancy: which users belong to which tenant, with a role (owner, admin, member, viewer).';
comment on column tenancy.memberships.role is
'owner and admin manage members; member writes; viewer reads.';

create table tenancy.jwt_config (
    singleton boolean not null default true,
    secret text not null,
    issuer text,
    audience text,
    updated_at timestamptz not null default now(),
    constraint jwt_config_pkey primary key (singleton),
    constraint jwt_config_singleton_check check (singleton)
);
comment on table tenancy.jwt_config is
'pgtenancy: the HS256 secret and expected issuer/audience; readable by tenancy_owner alone.';

-- The context fingerprint: set only by tenancy.set_context/authenticate (as tenancy_owner);
-- currval() is per session and cannot be changed by roles without UPDATE or USAGE.
create sequence tenancy.context_fingerprint
as bigint minvalue -9223372036854775808 maxvalue 9223372036854775807 no cycle;
comment on sequence tenancy.context_fingerprint is
'pgtenancy: per-session fingerprint of the last context set by pgtenancy (read with currval).';

-- Bumped whenever a tenant status or a membership changes, so open contexts revalidate.
create sequence tenancy.context_epoch as bigint;
select nextval('tenancy.context_epoch');
comment on sequence tenancy.context_epoch is
'pgtenancy: incremented on tenant status and membership changes; contexts made under an older '
'value are revalidated.';

revoke all on all tables in schema tenancy from public;
revoke all on all sequences in schema tenancy from public;
grant select on tenancy.context_fingerprint, tenancy.context_epoch
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
grant select on tenancy.tenants to tenancy_service, tenancy_admin, tenancy_auditor;
grant select on tenancy.memberships to tenancy_app;

-- Unlogged: setval() on it writes no WAL and assigns no transaction id (sqlfluff lacks the syntax).
alter sequence tenancy.context_fingerprint set unlogged; -- noqa: PRS
