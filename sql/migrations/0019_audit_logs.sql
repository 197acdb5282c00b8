-- pgtenancy audit trail: the role owning it, tenancy.audit_logs and its seals, holds and retention.
-- migrate: as-migrating-user
-- Runs as the migrating user (it creates a role). The trail belongs to tenancy_audit_owner, a
-- NOLOGIN role nobody but the migrating user is a member of: tenancy_owner, which owns every other
-- pgtenancy object, may only INSERT into it (its trigger and log functions write the rows), so
-- neither it nor any role it could grant to can UPDATE, DELETE or TRUNCATE a row, change the
-- table's triggers or grant itself more. Sealing, verification, retention and redaction are
-- functions owned by tenancy_audit_owner (sql/functions/audit/).

do $role$
declare
    v_bad text;
begin
    select
        pg_catalog.concat_ws(
            ', ',
            case when r.rolcanlogin then 'LOGIN' end,
            case when r.rolsuper then 'SUPERUSER' end,
            case when r.rolbypassrls then 'BYPASSRLS' end,
            case when r.rolcreaterole then 'CREATEROLE' end,
            case when r.rolcreatedb then 'CREATEDB' end
        )
    into v_bad
    from pg_catalog.pg_roles as r
    where r.rolname operator (pg_catalog.=) 'tenancy_audit_owner';
    if not found then
        create role tenancy_audit_owner nologin nosuperuser nocreatedb nocreaterole nobypassrls;
    elsif v_bad operator (pg_catalog.<>) '' then
        raise exception using
            errcode = '42501',
            message = pg_catalog.format(
                'role tenancy_audit_owner already exists with %s; pgtenancy does not adopt it', v_bad
            ),
            hint = 'Run: alter role tenancy_audit_owner nologin nosuperuser nobypassrls nocreaterole nocreatedb; or drop it.';
    end if;
end
$role$;

comment on role tenancy_audit_owner is
'pgtenancy: owns the audit trail (tenancy.audit_logs, its seals, holds and retention) and the '
'functions that seal, verify, redact and drop it; NOLOGIN. tenancy_owner may only insert rows.';

-- The migrating user creates the trail's objects as their owner, now and in later migrations.
grant tenancy_audit_owner to current_user;
set local role tenancy_owner;
grant usage, create on schema tenancy to tenancy_audit_owner;
reset role;
set local role tenancy_audit_owner;

create sequence tenancy.audit_logs_id_seq as bigint;
comment on sequence tenancy.audit_logs_id_seq is
'pgtenancy: numbers tenancy.audit_logs in the order rows are written (no cache: the order of a '
'record''s rows is the order of its changes).';

create table tenancy.audit_logs (
    id bigint not null default pg_catalog.nextval('tenancy.audit_logs_id_seq'::pg_catalog.regclass),
    tenant_id uuid,
    logged_at timestamptz not null default pg_catalog.now(),
    statement_at timestamptz not null default pg_catalog.statement_timestamp(),
    txid bigint not null,
    action text not null,
    entity_type text not null,
    entity_id text,
    schema_name text,
    table_name text,
    old_data jsonb,
    new_data jsonb,
    changed_columns text[],
    actor_user_id text,
    actor_role text,
    api_key_id uuid,
    db_user name not null default session_user,
    metadata jsonb not null default '{}',
    body_digest bytea,
    redacted_at timestamptz
) partition by range (logged_at);
alter sequence tenancy.audit_logs_id_seq owned by tenancy.audit_logs.id;

comment on table tenancy.audit_logs is
'pgtenancy: the audit trail. One row per changed row of an audited tenant table (generated '
'triggers: INSERT, UPDATE, DELETE, ON CONFLICT, MERGE, COPY, cascades), per application event '
'(tenancy.log_audit) and per bulk read by pgtenancy itself (support access). Monthly partitions. '
'Nobody but a superuser (or the migrating user, a member of tenancy_audit_owner) can change or '
'delete a row; tenancy.seal_audit chains each tenant''s rows so tenancy.verify_audit detects '
'what was. Owners and admins read their tenant''s rows; tenancy_auditor reads all.';
comment on column tenancy.audit_logs.id is
'Row number, in the order rows were written.';
comment on column tenancy.audit_logs.tenant_id is
'The tenant of the changed row (its tenant column, or the tenant holding that key); NULL for a '
'row whose tenant key names no tenant.';
comment on column tenancy.audit_logs.logged_at is
'Start of the writing transaction (now()); the partition key.';
comment on column tenancy.audit_logs.statement_at is
'Start of the writing statement; the time the point-in-time functions go by.';
comment on column tenancy.audit_logs.txid is
'Top-level transaction id of the writer (pg_current_xact_id): rows of one transaction share it.';
comment on column tenancy.audit_logs.action is
'INSERT, UPDATE or DELETE for row changes; ACCESS for bulk reads; the application''s action '
'for tenancy.log_audit events.';
comment on column tenancy.audit_logs.entity_type is
'"schema"."table" of a row change (the root of a partitioned table); the application''s entity '
'type for tenancy.log_audit events.';
comment on column tenancy.audit_logs.entity_id is
'The changed row''s primary key as a JSON object (the tenant column left out), text; the '
'application''s entity id for tenancy.log_audit events.';
comment on column tenancy.audit_logs.old_data is
'The row before the change (UPDATE, DELETE), without the table''s audit_exclude columns.';
comment on column tenancy.audit_logs.new_data is
'The row after the change (INSERT, UPDATE), without the table''s audit_exclude columns.';
comment on column tenancy.audit_logs.changed_columns is
'UPDATE: the columns whose values differ, by name (excluded columns never appear).';
comment on column tenancy.audit_logs.actor_user_id is
'The user of the tenant context (tenancy.current_user_id), NULL without one.';
comment on column tenancy.audit_logs.actor_role is
'The context''s member role (owner, admin, member, viewer, service, support), NULL without one.';
comment on column tenancy.audit_logs.api_key_id is
'The API key of the context (tenancy.current_api_key_id), NULL otherwise.';
comment on column tenancy.audit_logs.db_user is
'session_user of the writing connection (not the role of a SECURITY DEFINER function).';
comment on column tenancy.audit_logs.metadata is
'Request metadata (tenancy.set_request_metadata) merged with the event''s own.';
comment on column tenancy.audit_logs.body_digest is
'Set by redaction only: the digest of the row''s body before its personal values were erased, '
'so the seal still verifies.';
comment on column tenancy.audit_logs.redacted_at is
'When personal values of this row were erased (tenancy.redact_audit); NULL otherwise.';

create index audit_logs_entity_idx on tenancy.audit_logs (tenant_id, entity_type, entity_id, id);
create index audit_logs_txid_idx on tenancy.audit_logs using brin (txid) with (pages_per_range = 16);

-- Partitions: the previous, this and the next three months, and a default that catches rows of
-- months nobody created a partition for (tenancy.seal_audit creates them three months ahead).
do $partitions$
declare
    v_month pg_catalog.date := pg_catalog.date_trunc(
        'month', pg_catalog.now() operator (pg_catalog.-) pg_catalog.make_interval(months => 1)
    )::pg_catalog.date;
    v_name pg_catalog.text;
begin
    for i in 0..4 loop
        v_name := pg_catalog.concat('audit_logs_', pg_catalog.to_char(v_month, 'YYYY_MM'));
        execute pg_catalog.format(
            'create table tenancy.%I partition of tenancy.audit_logs for values from (%L) to (%L)',
            v_name,
            v_month::pg_catalog.timestamptz,
            (v_month operator (pg_catalog.+) pg_catalog.make_interval(months => 1))::pg_catalog.timestamptz
        );
        execute pg_catalog.format(
            'comment on table tenancy.%I is %L',
            v_name,
            pg_catalog.concat(
                'pgtenancy: the audit rows of ', pg_catalog.to_char(v_month, 'YYYY-MM'),
                ' (a partition of tenancy.audit_logs).'
            )
        );
        v_month := (v_month operator (pg_catalog.+) pg_catalog.make_interval(months => 1))::pg_catalog.date;
    end loop;
end
$partitions$;
create table tenancy.audit_logs_default partition of tenancy.audit_logs default;
comment on table tenancy.audit_logs_default is
'pgtenancy: audit rows of months without a partition of their own (a partition of '
'tenancy.audit_logs; tenancy.ensure_audit_partitions creates them ahead).';

-- Row level security and its policies: sql/functions/tables/audit_logs_policies.sql (they call
-- functions defined after the migrations).
alter table tenancy.audit_logs enable row level security;
alter table tenancy.audit_logs force row level security;

revoke all on tenancy.audit_logs from public;
revoke all on sequence tenancy.audit_logs_id_seq from public;
grant select on tenancy.audit_logs to tenancy_app, tenancy_auditor;
grant insert on tenancy.audit_logs to tenancy_owner;
grant usage on sequence tenancy.audit_logs_id_seq to tenancy_owner;

-- Seals: per tenant, a chain of batches. A batch holds the tenant's rows of one month whose
-- transactions ended before the batch was sealed, in (txid, id) order: their ids and the
-- SHA-256 digest of each, and the head, SHA-256 over the previous head, the batch's header and
-- its digests.
create table tenancy.audit_seals (
    tenant_id uuid,
    seq bigint not null,
    month date not null,
    txid_from bigint not null,
    txid_to bigint not null,
    row_count integer not null,
    total_rows bigint not null,
    ids bigint[] not null,
    digests bytea not null,
    prev_head bytea,
    head bytea not null,
    sealed_at timestamptz not null default pg_catalog.clock_timestamp(),
    constraint audit_seals_tenant_seq_key unique nulls not distinct (tenant_id, seq)
);
comment on table tenancy.audit_seals is
'pgtenancy: the hash chain of each tenant''s audit trail, one row per sealed batch '
'(tenancy.seal_audit); tenancy.verify_audit recomputes it. tenant_id NULL: rows of no tenant.';
comment on column tenancy.audit_seals.digests is
'The batch''s row digests, 32 bytes each, in the order of ids.';
comment on column tenancy.audit_seals.head is
'sha256(prev_head || header || digests): the chain head after this batch.';
comment on column tenancy.audit_seals.total_rows is
'Rows sealed for the tenant up to and including this batch.';

create table tenancy.audit_seal_state (
    singleton boolean primary key default true check (singleton),
    frontier bigint not null,
    sealed_at timestamptz
);
comment on table tenancy.audit_seal_state is
'pgtenancy: how far tenancy.seal_audit has sealed: every row of a transaction below frontier is '
'in a seal.';
insert into tenancy.audit_seal_state (frontier) values (0);

create table tenancy.audit_legal_holds (
    tenant_id uuid primary key,
    reason text not null,
    held_at timestamptz not null default pg_catalog.now(),
    held_by name not null default session_user
);
comment on table tenancy.audit_legal_holds is
'pgtenancy: tenants under legal hold (tenancy.set_legal_hold): tenancy.drop_audit_before keeps '
'every partition holding one of their rows.';

create table tenancy.audit_retention (
    id bigint generated always as identity primary key,
    before_month date not null,
    partitions text[] not null,
    row_count bigint not null,
    dropped_at timestamptz not null default pg_catalog.now(),
    dropped_by name not null default session_user
);
comment on sequence tenancy.audit_retention_id_seq is 'pgtenancy: numbers tenancy.audit_retention.';
comment on table tenancy.audit_retention is
'pgtenancy: partitions of tenancy.audit_logs dropped by tenancy.drop_audit_before; '
'tenancy.verify_audit checks seals of earlier months by their chain alone.';

revoke all on tenancy.audit_seals, tenancy.audit_seal_state, tenancy.audit_legal_holds,
tenancy.audit_retention from public;
grant select on tenancy.audit_seals, tenancy.audit_seal_state, tenancy.audit_legal_holds,
tenancy.audit_retention to tenancy_auditor;

reset role;
