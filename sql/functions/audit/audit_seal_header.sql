-- tenancy.audit_seal_header: the bytes that describe one seal in its chain head.
-- migrate: as-role tenancy_audit_owner

-- head = sha256(prev_head (empty for the first seal) || header || digests), header = the bytes of
-- 'pgtenancy.audit_seal.v1' followed by, each after a comma: tenant_id (quoted, or NULL), seq,
-- month (days since 1970-01-01), txid_from, txid_to, row_count, total_rows. Every field is
-- written as an integer or a quoted literal, so no two headers share their bytes and no setting
-- changes them. Immutable and inlinable, like tenancy.audit_row_digest; tenancy.seal_audit and
-- tenancy.verify_audit both build heads with it.
create or replace function tenancy.audit_seal_header(
    p_tenant_id uuid,
    p_seq bigint,
    p_month date,
    p_txid_from bigint,
    p_txid_to bigint,
    p_row_count integer,
    p_total_rows bigint
)
returns bytea
language sql
immutable
parallel safe
as $$
select (
    'pgtenancy.audit_seal.v1'
    operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_tenant_id::pg_catalog.text)
    operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_seq::pg_catalog.text)
    operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(
        (p_month operator (pg_catalog.-) '1970-01-01'::pg_catalog.date)::pg_catalog.text
    )
    operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_txid_from::pg_catalog.text)
    operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_txid_to::pg_catalog.text)
    operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row_count::pg_catalog.text)
    operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_total_rows::pg_catalog.text)
)::pg_catalog.bytea
$$;

comment on function tenancy.audit_seal_header(uuid, bigint, date, bigint, bigint, integer, bigint) is
'The header of an audit seal as it enters the chain head: head = sha256(prev_head || header || '
'digests). Fields: tenant_id, seq, month (days since 1970-01-01), txid_from, txid_to, row_count, '
'total_rows, comma-separated quoted literals after the tag pgtenancy.audit_seal.v1.';

revoke all on function tenancy.audit_seal_header(uuid, bigint, date, bigint, bigint, integer, bigint) from public;
grant execute on function tenancy.audit_seal_header(uuid, bigint, date, bigint, bigint, integer, bigint)
to tenancy_auditor, tenancy_admin, tenancy_service;
