-- pgtenancy tenant settings: branding, data-residency region and feature flags, with their rules.
-- Tables: tenancy.regions and tenancy.feature_defaults (platform lists, set by tenancy_admin);
-- tenancy.tenant_settings, tenancy.tenant_region_changes and tenancy.feature_flags (tenant
-- tables: tenant_id leads every key, row level security from sql/policies/). Domains:
-- tenancy.region_tag, tenancy.branding and tenancy.feature_flag_name, each rule written once,
-- here; the functions of sql/functions/settings/ cast to them and report a refused value as
-- 22023 naming it. Functions rather than operators where that reads as well, and every name
-- qualified by schema, so nothing is resolved through the migrating session's search_path.

-- Region tags ---------------------------------------------------------------------------------

create domain tenancy.region_tag as text
constraint region_tag_check check (pg_catalog.regexp_like(value, '^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$'));
comment on domain tenancy.region_tag is
'pgtenancy: a data-residency region tag such as eu or us-east-1: 1 to 32 characters of a-z, 0-9 '
'and hyphens, starting with a letter and not ending with a hyphen.';

create table tenancy.regions (
    region tenancy.region_tag not null,
    created_at timestamptz not null default pg_catalog.now(),
    constraint regions_pkey primary key (region)
);
comment on table tenancy.regions is
'pgtenancy: the data-residency regions a tenant may be placed in (platform list, set with '
'tenancy.configure_regions()). Platform table: not readable by tenancy_app.';

revoke all on tenancy.regions from public;
grant select on tenancy.regions to tenancy_service, tenancy_admin, tenancy_auditor;

-- Branding ------------------------------------------------------------------------------------

-- A JSON object with optional string fields; an absent field means "not branded". Each field
-- has a constraint of its own, commented with its rule: tenancy.checked_branding checks the
-- fields one at a time against this domain and quotes the comment of the constraint a field
-- fails. The shape is documented in the README (White-label settings and feature flags).
create domain tenancy.branding as jsonb
constraint branding_object_check check (pg_catalog.jsonb_typeof(value) operator (pg_catalog.=) 'object')
constraint branding_fields_check check (
    case
        when pg_catalog.jsonb_typeof(value) operator (pg_catalog.=) 'object'
            then pg_catalog.jsonb_delete(
                value,
                variadic array[
                    'display_name', 'logo_url', 'primary_color', 'secondary_color', 'accent_color',
                    'background_color', 'text_color', 'support_email'
                ]
            ) operator (pg_catalog.=) '{}'::pg_catalog.jsonb
        else true
    end
)
constraint branding_display_name_check check (
    pg_catalog.jsonb_object_field(value, 'display_name') is null
    or (
        pg_catalog.jsonb_typeof(pg_catalog.jsonb_object_field(value, 'display_name')) operator (pg_catalog.=) 'string'
        and pg_catalog.regexp_like(
            pg_catalog.jsonb_object_field_text(value, 'display_name'),
            '^[^[:space:][:cntrl:]]([^[:cntrl:]]{0,198}[^[:space:][:cntrl:]])?$'
        )
    )
)
constraint branding_logo_url_check check (
    pg_catalog.jsonb_object_field(value, 'logo_url') is null
    or (
        pg_catalog.jsonb_typeof(pg_catalog.jsonb_object_field(value, 'logo_url')) operator (pg_catalog.=) 'string'
        and pg_catalog.int4le(pg_catalog.length(pg_catalog.jsonb_object_field_text(value, 'logo_url')), 2048)
        and pg_catalog.regexp_like(
            pg_catalog.jsonb_object_field_text(value, 'logo_url'),
            '^https://[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+'
            '(:[0-9]{1,5})?([/?#][^[:space:][:cntrl:]"<>\\^`{|}]*)?$'
        )
    )
)
constraint branding_primary_color_check check (
    pg_catalog.jsonb_object_field(value, 'primary_color') is null
    or pg_catalog.jsonb_object_field(value, 'primary_color') operator (pg_catalog.@?) '$ ? (@ like_regex "^#([0-9a-f]{3}|[0-9a-f]{6})$")'
)
constraint branding_secondary_color_check check (
    pg_catalog.jsonb_object_field(value, 'secondary_color') is null
    or pg_catalog.jsonb_object_field(value, 'secondary_color') operator (pg_catalog.@?) '$ ? (@ like_regex "^#([0-9a-f]{3}|[0-9a-f]{6})$")'
)
constraint branding_accent_color_check check (
    pg_catalog.jsonb_object_field(value, 'accent_color') is null
    or pg_catalog.jsonb_object_field(value, 'accent_color') operator (pg_catalog.@?) '$ ? (@ like_regex "^#([0-9a-f]{3}|[0-9a-f]{6})$")'
)
constraint branding_background_color_check check (
    pg_catalog.jsonb_object_field(value, 'background_color') is null
    or pg_catalog.jsonb_object_field(value, 'background_color') operator (pg_catalog.@?) '$ ? (@ like_regex "^#([0-9a-f]{3}|[0-9a-f]{6})$")'
)
constraint branding_text_color_check check (
    pg_catalog.jsonb_object_field(value, 'text_color') is null
    or pg_catalog.jsonb_object_field(value, 'text_color') operator (pg_catalog.@?) '$ ? (@ like_regex "^#([0-9a-f]{3}|[0-9a-f]{6})$")'
)
constraint branding_support_email_check check (
    pg_catalog.jsonb_object_field(value, 'support_email') is null
    or (
        pg_catalog.jsonb_typeof(pg_catalog.jsonb_object_field(value, 'support_email')) operator (pg_catalog.=) 'string'
        and pg_catalog.int4le(pg_catalog.length(pg_catalog.jsonb_object_field_text(value, 'support_email')), 254)
        and pg_catalog.regexp_like(
            pg_catalog.jsonb_object_field_text(value, 'support_email'),
            '^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$'
        )
    )
);
comment on domain tenancy.branding is
'pgtenancy: a tenant''s branding, a JSON object whose fields are all optional strings: '
'display_name, logo_url (https), primary_color, secondary_color, accent_color, background_color, '
'text_color (#rgb or #rrggbb, lower case) and support_email.';
comment on constraint branding_object_check on domain tenancy.branding is
'branding is a JSON object';
comment on constraint branding_fields_check on domain tenancy.branding is
'the fields are display_name, logo_url, primary_color, secondary_color, accent_color, '
'background_color, text_color and support_email';
comment on constraint branding_display_name_check on domain tenancy.branding is
'display_name is a string of 1 to 200 characters without control characters (leading and '
'trailing spaces are trimmed)';
comment on constraint branding_logo_url_check on domain tenancy.branding is
'logo_url is an https:// URL of at most 2048 characters: a DNS host name with a dot, an '
'optional port and path, no user name, no spaces and none of " < > \ ^ ` { | }';
comment on constraint branding_primary_color_check on domain tenancy.branding is
'primary_color is a hex colour string, #rgb or #rrggbb';
comment on constraint branding_secondary_color_check on domain tenancy.branding is
'secondary_color is a hex colour string, #rgb or #rrggbb';
comment on constraint branding_accent_color_check on domain tenancy.branding is
'accent_color is a hex colour string, #rgb or #rrggbb';
comment on constraint branding_background_color_check on domain tenancy.branding is
'background_color is a hex colour string, #rgb or #rrggbb';
comment on constraint branding_text_color_check on domain tenancy.branding is
'text_color is a hex colour string, #rgb or #rrggbb';
comment on constraint branding_support_email_check on domain tenancy.branding is
'support_email is an e-mail address of at most 254 characters: local@domain.example, the local '
'part of letters, digits and . _ % + -';

-- Per-tenant settings -------------------------------------------------------------------------

create table tenancy.tenant_settings (
    tenant_id uuid not null,
    branding tenancy.branding not null default '{}'::pg_catalog.jsonb,
    region tenancy.region_tag,
    created_at timestamptz not null default pg_catalog.now(),
    updated_at timestamptz not null default pg_catalog.now(),
    constraint tenant_settings_pkey primary key (tenant_id),
    constraint tenant_settings_tenant_id_fkey foreign key (tenant_id)
    references tenancy.tenants (id) on delete cascade,
    constraint tenant_settings_region_fkey foreign key (region) references tenancy.regions (region)
);
comment on table tenancy.tenant_settings is
'pgtenancy: one row per tenant with white-label settings: branding and data-residency region. '
'Tenant table (members read their tenant''s row); written by tenancy.set_branding() and '
'tenancy.set_tenant_region(). A tenant without a row has no branding and no region.';
comment on column tenancy.tenant_settings.branding is
'The tenant''s branding (tenancy.branding: display_name, logo_url, colours, support_email).';
comment on column tenancy.tenant_settings.region is
'The tenant''s data-residency region, one of tenancy.regions, or NULL for none; changes are '
'recorded in tenancy.tenant_region_changes.';

revoke all on tenancy.tenant_settings from public;

create table tenancy.tenant_region_changes (
    tenant_id uuid not null,
    id bigint generated always as identity,
    old_region text,
    new_region text,
    changed_by text not null,
    changed_at timestamptz not null default pg_catalog.now(),
    constraint tenant_region_changes_pkey primary key (tenant_id, id),
    constraint tenant_region_changes_tenant_id_fkey foreign key (tenant_id)
    references tenancy.tenants (id) on delete cascade
);
comment on table tenancy.tenant_region_changes is
'pgtenancy: every change of a tenant''s region (who, when, from, to), for placement work. '
'Tenant table: owners and admins of the tenant read its rows; written by '
'tenancy.set_tenant_region() only.';
comment on column tenancy.tenant_region_changes.changed_by is
'The login (session_user) that called tenancy.set_tenant_region().';
comment on column tenancy.tenant_region_changes.old_region is
'The region before the change (NULL: none); not a foreign key, a region may be removed later.';
comment on sequence tenancy.tenant_region_changes_id_seq is
'pgtenancy: ids of tenancy.tenant_region_changes, in the order the changes were made.';

revoke all on tenancy.tenant_region_changes from public;
grant select on tenancy.tenant_region_changes to tenancy_admin;

-- Feature flags -------------------------------------------------------------------------------

create domain tenancy.feature_flag_name as text
constraint feature_flag_name_check check (
    pg_catalog.int4le(pg_catalog.length(value), 100)
    and pg_catalog.regexp_like(value, '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$')
);
comment on domain tenancy.feature_flag_name is
'pgtenancy: a feature flag name, lower-case identifiers joined by dots (billing.invoices_v2): '
'each part starts with a letter a-z and continues with a-z, 0-9 or _; at most 100 characters.';

create table tenancy.feature_defaults (
    flag tenancy.feature_flag_name not null,
    value jsonb not null,
    created_at timestamptz not null default pg_catalog.now(),
    updated_at timestamptz not null default pg_catalog.now(),
    constraint feature_defaults_pkey primary key (flag)
);
comment on table tenancy.feature_defaults is
'pgtenancy: the feature flags of the platform and their default values (set with '
'tenancy.set_feature_default()). A flag must be here before a tenant can override it. Platform '
'table, the same for every tenant: readable by the roles that call tenancy.feature_value(), '
'which runs as its caller.';

revoke all on tenancy.feature_defaults from public;
grant select on tenancy.feature_defaults to tenancy_app, tenancy_admin, tenancy_auditor;

create table tenancy.feature_flags (
    tenant_id uuid not null,
    flag tenancy.feature_flag_name not null,
    value jsonb not null,
    created_at timestamptz not null default pg_catalog.now(),
    updated_at timestamptz not null default pg_catalog.now(),
    constraint feature_flags_pkey primary key (tenant_id, flag),
    constraint feature_flags_tenant_id_fkey foreign key (tenant_id)
    references tenancy.tenants (id) on delete cascade,
    constraint feature_flags_flag_fkey foreign key (flag) references tenancy.feature_defaults (flag)
);
comment on table tenancy.feature_flags is
'pgtenancy: per-tenant overrides of the platform''s feature flags (set with '
'tenancy.set_feature_flag()). Tenant table: members read their tenant''s overrides.';

revoke all on tenancy.feature_flags from public;
-- tenancy_app's grant comes with the generated policies (sql/policies/); these roles read it
-- through tenancy.feature_value() in a context, under the same row level security.
grant select on tenancy.feature_flags to tenancy_admin, tenancy_auditor;
