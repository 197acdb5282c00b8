-- pgtenancy domains: tenancy.domain_config, tenancy.domain_claims and tenancy.tenant_domains.
-- A tenant's hostnames live twice, written together by pgtenancy's functions only:
-- * tenancy.tenant_domains, a tenant table (row level security, generated policies): every key
--   and index leads with tenant_id, so EXPLAIN and unique violations never describe another
--   tenant's rows; the application reads its own tenant's domains there;
-- * tenancy.domain_claims, a platform table no application role can read: the global map from
--   hostname to tenant. Its primary key keeps hostnames unique across tenants, and it is the one
--   index tenancy.resolve_tenant probes. A function refusing a hostname held by another tenant
--   says "already claimed" and never which tenant holds it.
-- Hostnames are stored normalised (lower-case ASCII, punycode, no trailing dot): uniqueness is
-- case-insensitive because nothing else is ever stored.

create table tenancy.domain_config (
    singleton boolean not null default true,
    base_domains text[] not null default '{}',
    reserved_labels text[] not null default array[
        'www', 'api', 'app', 'admin', 'mail', 'smtp', 'imap', 'pop', 'ftp', 'ns1', 'ns2', 'mx',
        'dns', 'cdn', 'static', 'assets', 'auth', 'login', 'sso', 'oauth', 'status', 'docs',
        'help', 'support', 'blog', 'dashboard', 'console', 'billing', 'portal', 'dev', 'staging',
        'test', 'internal', 'localhost', 'autodiscover', 'autoconfig'
    ],
    slug_grace interval not null default interval '30 days',
    updated_at timestamptz not null default pg_catalog.now(),
    constraint domain_config_pkey primary key (singleton),
    constraint domain_config_singleton_check check (singleton),
    constraint domain_config_slug_grace_check check (slug_grace operator (pg_catalog.>=) interval '0')  -- noqa: LT01
);
insert into tenancy.domain_config default values;
comment on table tenancy.domain_config is
'pgtenancy: the platform''s base domains, the labels reserved under them, and how long a renamed '
'slug''s old subdomains keep resolving. One row; set with tenancy.configure_domains().';
comment on column tenancy.domain_config.reserved_labels is
'Labels that are never a tenant''s slug and never resolve under a base domain; the column '
'default is the list tenancy.configure_domains() uses when given none.';
revoke all on tenancy.domain_config from public;
grant select on tenancy.domain_config to tenancy_service, tenancy_admin, tenancy_auditor;

create table tenancy.domain_claims (
    hostname text not null,
    tenant_id uuid not null,
    kind text not null,
    resolves boolean not null default false,
    tenant_active boolean not null default true,
    expires_at timestamptz,
    -- The columns resolve_tenant reads ride in the index: one index-only probe, nothing else.
    constraint domain_claims_pkey primary key (hostname)
    include (tenant_id, resolves, tenant_active, expires_at),
    constraint domain_claims_tenant_id_fkey foreign key (tenant_id)
    references tenancy.tenants (id) on delete cascade,
    constraint domain_claims_kind_check check (
        kind operator (pg_catalog.=) any(array['platform', 'custom'])
    )
);
create index domain_claims_tenant_id_idx on tenancy.domain_claims (tenant_id);
comment on table tenancy.domain_claims is
'pgtenancy: every hostname of every tenant, unique across tenants: the map tenancy.resolve_tenant '
'reads. Platform table, readable by tenancy_owner alone; written by pgtenancy''s functions '
'together with tenancy.tenant_domains.';
comment on column tenancy.domain_claims.resolves is
'true for a platform subdomain and a verified custom domain; a pending or failed custom domain '
'holds its hostname without resolving.';
comment on column tenancy.domain_claims.tenant_active is
'Whether the tenant is active, kept equal to tenancy.tenants.status = ''active'' by the trigger '
'tenancy_domain_claims_tenant_status on tenancy.tenants, so resolution reads no other row.';
comment on column tenancy.domain_claims.expires_at is
'Set on the subdomains of a renamed slug: they resolve until then (the grace period), and the '
'slug stays the renamed tenant''s until then.';
revoke all on tenancy.domain_claims from public;

create table tenancy.tenant_domains (
    tenant_id uuid not null,
    hostname text not null,
    kind text not null,
    is_primary boolean not null default false,
    status text,
    txt_token text,
    created_at timestamptz not null default pg_catalog.now(),
    checked_at timestamptz,
    verified_at timestamptz,
    failed_at timestamptz,
    expires_at timestamptz,
    constraint tenant_domains_pkey primary key (tenant_id, hostname),
    constraint tenant_domains_tenant_id_fkey foreign key (tenant_id)
    references tenancy.tenants (id) on delete cascade,
    constraint tenant_domains_kind_check check (
        kind operator (pg_catalog.=) any(array['platform', 'custom'])
    ),
    constraint tenant_domains_status_check check (
        (kind operator (pg_catalog.=) 'platform' and status is null and txt_token is null)
        or (
            kind operator (pg_catalog.=) 'custom'
            and status operator (pg_catalog.=) any(array['pending', 'verified', 'failed'])
            and txt_token is not null
            and expires_at is null
        )
    )
);
-- At most one primary domain per tenant; led by tenant_id like every index of a tenant table.
create unique index tenant_domains_one_primary_idx on tenancy.tenant_domains (tenant_id)
where is_primary;
comment on table tenancy.tenant_domains is
'pgtenancy: the hostnames of a tenant: its platform subdomains (<slug>.<base domain>) and custom '
'domains with their verification status; at most one is primary. Tenant table: an application '
'sees its own tenant''s rows; written by pgtenancy''s functions only.';
comment on column tenancy.tenant_domains.status is
'Custom domains: pending (added, TXT record not seen yet), verified (resolves), failed (the last '
'check did not find the TXT record). NULL for platform subdomains.';
comment on column tenancy.tenant_domains.txt_token is
'Custom domains: the value to publish as TXT record _pgtenancy-challenge.<hostname>, prefixed '
'pgtenancy-verification= (see tenancy.add_custom_domain).';
comment on column tenancy.tenant_domains.expires_at is
'Platform subdomains of a previous slug: they resolve until then.';

revoke all on tenancy.tenant_domains from public;
