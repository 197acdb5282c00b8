-- pgtenancy table tenancy.tenants: one row per tenant.
-- migrate: replaces 0002_core

create table tenancy.tenants (
    id uuid not null default pg_catalog.gen_random_uuid(),
    slug text not null,
    name text not null,
    status text not null default 'active',
    created_at timestamptz not null default pg_catalog.now(),
    updated_at timestamptz not null default pg_catalog.now(),
    constraint tenants_pkey primary key (id),
    constraint tenants_slug_key unique (slug),
    constraint tenants_status_check check (
        status operator (pg_catalog.=) any(array['active', 'suspended', 'deleted'])
    ),
    constraint tenants_slug_check check (slug operator (pg_catalog.~) '^[a-z0-9]([a-z0-9-]{1,61})[a-z0-9]$'),
    constraint tenants_name_check check (
        pg_catalog.length(pg_catalog.btrim(name)) operator (pg_catalog.>=) 1  -- noqa: LT01
        and pg_catalog.length(pg_catalog.btrim(name)) operator (pg_catalog.<=) 200  -- noqa: LT01
    )
);
comment on table tenancy.tenants is
'pgtenancy: one row per tenant. Platform table: not tenant-scoped, not readable by tenancy_app.';
comment on column tenancy.tenants.slug is
'Lower-case DNS label (3-63 characters: a-z, 0-9, inner hyphens); unique; the tenant subdomain.';
comment on column tenancy.tenants.status is
'active, suspended (context refused, data kept) or deleted.';

revoke all on tenancy.tenants from public;
grant select on tenancy.tenants to tenancy_service, tenancy_admin, tenancy_auditor;
