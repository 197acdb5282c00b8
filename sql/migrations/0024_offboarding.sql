-- pgtenancy offboarding: the record of each tenant's offboarding, step by step, and its deletion certificate.
-- tenancy.offboard_tenant works through a tenant in steps a caller commits one by one: the first
-- suspends the tenant and records here how many rows of it every tenant table holds; each
-- further step deletes a batch of them (children before parents) and adds to the table's
-- deleted count; the step that finds none left sets the tenant's status to deleted, records the
-- counts after, and keeps the deletion certificate, also sealed into the tenant's audit trail.
-- A platform table: the record outlives the tenant's rows, and no tenant context reads it.

create table tenancy.tenant_offboardings (
    tenant_id uuid not null,
    slug text not null,
    reason text not null,
    requested_by name not null default session_user,
    started_at timestamptz not null default pg_catalog.now(),
    started_xid bigint not null,
    watched text[],
    steps integer not null default 1,
    last_step_at timestamptz not null default pg_catalog.clock_timestamp(),
    counts jsonb not null default '{}',
    platform_rows jsonb not null default '{}',
    finished_at timestamptz,
    certificate jsonb,
    constraint tenant_offboardings_pkey primary key (tenant_id),
    constraint tenant_offboardings_reason_check check (
        pg_catalog.length(reason) operator (pg_catalog.>=) 1  -- noqa: LT01
        and pg_catalog.length(reason) operator (pg_catalog.<=) 500  -- noqa: LT01
    ),
    constraint tenant_offboardings_counts_check check (
        pg_catalog.jsonb_typeof(counts) operator (pg_catalog.=) 'object'  -- noqa: LT01
    ),
    constraint tenant_offboardings_finished_check check (
        (finished_at is null) operator (pg_catalog.=) (certificate is null)
    )
);
comment on table tenancy.tenant_offboardings is
'pgtenancy: one row per tenant offboarded or being offboarded (tenancy.offboard_tenant): who '
'asked, why, when, how many rows of the tenant each tenant table held before and how many were '
'deleted, and, once finished, the deletion certificate (also in the tenant''s audit trail). '
'Platform table: tenancy_admin and tenancy_auditor read it; only pgtenancy''s functions write it.';
comment on column tenancy.tenant_offboardings.requested_by is
'session_user of the connection that began the offboarding.';
comment on column tenancy.tenant_offboardings.started_xid is
'The transaction that suspended the tenant (the first step).';
comment on column tenancy.tenant_offboardings.watched is
'The virtual transaction ids of the client sessions of this database that were running when a '
'step first ran after the suspension had committed: any of them may hold a context of the tenant '
'set before it was suspended, so the last step waits until every one has ended. NULL until then.';
comment on column tenancy.tenant_offboardings.counts is
'Per tenant table ("schema"."table"): {"before": rows of the tenant when the offboarding began '
'(or when the table was first seen), "deleted": rows deleted so far, "after": rows left once '
'finished (0)}.';
comment on column tenancy.tenant_offboardings.platform_rows is
'Rows of the tenant deleted from platform tables, which have no tenant policy: per table '
'("schema.table"), how many (connector secrets of its endpoints, its hostnames in '
'tenancy.domain_claims, its own token issuers and their cached verifications).';
comment on column tenancy.tenant_offboardings.certificate is
'The deletion certificate, as tenancy.deletion_certificate returns it: its sha256 covers every '
'key but sha256 and audit_id (tenancy.canonical_json), and audit_id is the tenancy.audit_logs '
'row (action tenant.offboarded) holding the same certificate.';

revoke all on tenancy.tenant_offboardings from public;
grant select on tenancy.tenant_offboardings to tenancy_admin, tenancy_auditor;
