-- pgtenancy column tenancy.tenants.key and domain tenancy.tenant_key: the application's own key.
-- An existing schema names its tenants by its own keys (companies.id = 42); a tenant created for
-- it carries that key as text ('42'), unique across tenants, so data keyed by it maps to the
-- tenant without a hand-made mapping table.

create domain tenancy.tenant_key as text
constraint tenant_key_check check (
    pg_catalog.int4ge(pg_catalog.length(value), 1)
    and pg_catalog.int4le(pg_catalog.length(value), 255)
    and not pg_catalog.regexp_like(value, '[[:cntrl:]]')
);
comment on domain tenancy.tenant_key is
'pgtenancy: an application''s own key for a tenant (for example a companies.id, as text): 1 to '
'255 characters, no control characters.';

alter table tenancy.tenants add column key tenancy.tenant_key;
alter table tenancy.tenants add constraint tenants_key_key unique (key);
comment on column tenancy.tenants.key is
'The application''s own key for this tenant (tenancy.tenant_key), unique when set; see '
'tenancy.create_tenant(p_key) and tenancy.tenant_id_for_key().';
