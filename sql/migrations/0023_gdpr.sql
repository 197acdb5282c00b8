-- pgtenancy GDPR: the registry of personal data, the erasure ledger and the data subject request log.
-- tenancy.personal_data is filled by the generated policy files (tenancy.declare_personal_data):
-- per table, whose rows they are, which columns are personal, what erasure does and the two
-- generated functions that export and erase a subject's rows. The ledger keeps, per erasure, a
-- hash of the subject id (never the id or a personal value), so an erasure can be applied again
-- to rows a restore from backup brought back (tenancy.reapply_erasures). Requests carry the
-- statutory clock: due one month after receipt, extendable once by two months.

create table tenancy.personal_data (
    table_name regclass not null,
    subject_column name not null,
    subject_references regclass,
    pii text[] not null default '{}',
    erase text not null,
    depth integer not null default 0,
    subject_direct boolean not null default false,
    export_function text not null,
    erase_function text not null,
    declared_at timestamptz not null default pg_catalog.now(),
    constraint personal_data_pkey primary key (table_name),
    constraint personal_data_erase_check check (
        erase operator (pg_catalog.=) any('{anonymize,delete}'::pg_catalog.text[])  -- noqa: LT01
    ),
    constraint personal_data_depth_check check (depth operator (pg_catalog.>=) 0)  -- noqa: LT01
);
comment on table tenancy.personal_data is
'pgtenancy: the tables holding personal data, as the spec declares them (subject, pii, erase): '
'written by the generated policy files through tenancy.declare_personal_data. '
'tenancy.export_subject and tenancy.erase_subject call each table''s generated functions '
'(export_function, erase_function: signatures, resolved when called). Platform table.';
comment on column tenancy.personal_data.depth is
'How many references lead from this table to a table naming its subjects itself (0): erasure '
'runs the deepest tables first.';
grant select on tenancy.personal_data to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;

create table tenancy.erasure_ledger (
    tenant_id uuid not null,
    id uuid not null,
    erased_at timestamptz not null default pg_catalog.now(),
    subject_hash text not null,
    reason text not null,
    counts jsonb not null default '{}',
    audit_rows integer not null default 0,
    request_id uuid,
    erased_by text,
    reapplied_at timestamptz,
    reapplied_rows bigint not null default 0,
    constraint erasure_ledger_pkey primary key (tenant_id, id),
    constraint erasure_ledger_subject_hash_check check (subject_hash operator (pg_catalog.~) '^[0-9a-f]{64}$')
);
create index erasure_ledger_tenant_id_subject_hash_idx on tenancy.erasure_ledger (tenant_id, subject_hash);
comment on table tenancy.erasure_ledger is
'pgtenancy: one row per erasure of a data subject (tenancy.erase_subject): the SHA-256 of tenant '
'and subject id (tenancy.subject_hash), the reason, the rows changed per table and the audit rows '
'redacted. No personal value. tenancy.reapply_erasures applies every entry again after a restore '
'from backup. Tenant table: owners and admins read it; only pgtenancy''s functions write it.';

create table tenancy.subject_requests (
    tenant_id uuid not null,
    id uuid not null,
    kind text not null,
    subject_hash text not null,
    received_at timestamptz not null,
    due_at timestamptz not null,
    extended_at timestamptz,
    extension_reason text,
    status text not null default 'open',
    closed_at timestamptz,
    outcome text,
    note text,
    created_by text,
    constraint subject_requests_pkey primary key (tenant_id, id),
    constraint subject_requests_kind_check check (
        kind operator (pg_catalog.=) any(  -- noqa: LT01
            '{access,portability,erasure,rectification,restriction,objection}'::pg_catalog.text[]
        )
    ),
    constraint subject_requests_status_check check (
        status operator (pg_catalog.=) any('{open,completed,refused}'::pg_catalog.text[])  -- noqa: LT01
    ),
    constraint subject_requests_subject_hash_check check (subject_hash operator (pg_catalog.~) '^[0-9a-f]{64}$')
);
create index subject_requests_tenant_id_subject_hash_idx on tenancy.subject_requests (tenant_id, subject_hash);
comment on table tenancy.subject_requests is
'pgtenancy: data subject requests (GDPR articles 15 to 21) and their statutory clock: due one '
'month after receipt, extendable once by two more months with a reason. tenancy.export_subject '
'completes open access and portability requests of its subject, tenancy.erase_subject open '
'erasure requests. Holds the subject''s hash, never its id. Tenant table: owners and admins read '
'it; only pgtenancy''s functions write it.';
