-- pgtenancy table tenancy.memberships: which users belong to which tenant, with a role.
-- migrate: replaces 0002_core 0004_keys

create table tenancy.memberships (
    tenant_id uuid not null,
    user_id uuid not null,
    role text not null,
    created_at timestamptz not null default pg_catalog.now(),
    updated_at timestamptz not null default pg_catalog.now(),
    constraint memberships_pkey primary key (tenant_id, user_id),
    constraint memberships_tenant_id_fkey foreign key (tenant_id)
    references tenancy.tenants (id) on delete cascade,
    constraint memberships_role_check check (
        role operator (pg_catalog.=) any(array['owner', 'admin', 'member', 'viewer'])
    )
);
-- Every index starts with tenant_id (docs/key-layout.md): an index on user_id alone would let
-- EXPLAIN ANALYZE count the memberships a user holds in other tenants.
create index memberships_tenant_id_role_idx on tenancy.memberships (tenant_id, role);
comment on table tenancy.memberships is
'pgtenancy: which users belong to which tenant, with a role (owner, admin, member, viewer).';
comment on column tenancy.memberships.role is
'owner and admin manage members; member writes; viewer reads.';

revoke all on tenancy.memberships from public;
grant select on tenancy.memberships to tenancy_app;
