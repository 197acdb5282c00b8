-- pgtenancy domains tenancy.tenant_slug and tenancy.tenant_name: the rules for tenants' slugs and names.
-- Used by the columns of tenancy.tenants, in place of their check constraints, and by
-- tenancy.create_tenant, which casts its arguments to them: each rule is written once, here.
-- Functions rather than operators (regexp_like for ~, int4ge/int4le for >=/<=): qualified by
-- schema, so nothing is resolved through the migrating session's search_path.

create domain tenancy.tenant_slug as text
constraint tenant_slug_check check (pg_catalog.regexp_like(value, '^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$'));
comment on domain tenancy.tenant_slug is
'pgtenancy: a tenant slug, a lower-case DNS label: 3 to 63 characters of a-z, 0-9 and hyphens, '
'starting and ending with a letter or digit.';

create domain tenancy.tenant_name as text
constraint tenant_name_check check (
    pg_catalog.int4ge(pg_catalog.length(pg_catalog.btrim(value)), 1)
    and pg_catalog.int4le(pg_catalog.length(pg_catalog.btrim(value)), 200)
);
comment on domain tenancy.tenant_name is
'pgtenancy: a tenant''s display name, 1 to 200 characters once leading and trailing spaces are '
'trimmed.';

alter table tenancy.tenants drop constraint tenants_slug_check;
alter table tenancy.tenants drop constraint tenants_name_check;
alter table tenancy.tenants
alter column slug type tenancy.tenant_slug,
alter column name type tenancy.tenant_name;
