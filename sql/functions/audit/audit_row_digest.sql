-- tenancy.audit_row_digest: the SHA-256 digest of one audit row that the seals chain.
-- migrate: as-role tenancy_audit_owner

-- digest = sha256(header || body digest), where header = the bytes of 'pgtenancy.audit_row.v1'
-- followed by, each after a comma: id, tenant_id, txid, logged_at and statement_at (microseconds
-- since 1970-01-01 UTC, as integers, taken from the binary form: no DateStyle, TimeZone or
-- float setting enters), action, entity_type, schema_name, table_name; and body digest =
-- body_digest when the row was redacted (the digest of its body before), else
-- tenancy.audit_body_digest(row). Fields are quoted literals or NULL (quote_nullable), so NULL and
-- '' differ and no field runs into the next; the body digest has a fixed length. Only immutable
-- functions, schema-qualified, and no SET clause: the planner inlines it into the sealing and
-- verifying queries (no function call per row).
create or replace function tenancy.audit_row_digest(p_row tenancy.audit_logs)
returns bytea
language sql
immutable
parallel safe
as $$
select pg_catalog.sha256(
    pg_catalog.replace(
        'pgtenancy.audit_row.v1'
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.id::pg_catalog.text)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.tenant_id::pg_catalog.text)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.txid::pg_catalog.text)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable((
            ('x' operator (pg_catalog.||) pg_catalog.encode(pg_catalog.timestamptz_send(p_row.logged_at), 'hex'))
            ::pg_catalog.bit(64)::pg_catalog.int8::pg_catalog.numeric operator (pg_catalog.+) 946684800000000
        )::pg_catalog.text)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable((
            ('x' operator (pg_catalog.||) pg_catalog.encode(pg_catalog.timestamptz_send(p_row.statement_at), 'hex'))
            ::pg_catalog.bit(64)::pg_catalog.int8::pg_catalog.numeric operator (pg_catalog.+) 946684800000000
        )::pg_catalog.text)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.action)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.entity_type)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.schema_name)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.table_name),
        E'\\', E'\\\\'
    )::pg_catalog.bytea
    operator (pg_catalog.||) case
        -- Only a row marked redacted stands on its stored body digest: a stored digest without
        -- the mark (written around the triggers) counts for nothing.
        when p_row.redacted_at is not null and p_row.body_digest is not null then p_row.body_digest
        else tenancy.audit_body_digest(p_row)
    end
)
$$;

comment on function tenancy.audit_row_digest(tenancy.audit_logs) is
'The 32-byte SHA-256 digest of an audit row that tenancy.seal_audit chains and '
'tenancy.verify_audit recomputes: sha256(header || body digest). The header holds id, tenant_id, '
'txid, logged_at and statement_at (epoch microseconds), action, entity_type, schema_name and '
'table_name; the body digest is body_digest for a redacted row, else the SHA-256 of entity_id, '
'old_data, new_data, changed_columns, the actor, api_key_id, db_user and metadata. Each field is '
'a quoted literal or NULL, comma-separated, independent of every session setting; redaction '
'keeps the digest (it stores the body''s digest first).';

revoke all on function tenancy.audit_row_digest(tenancy.audit_logs) from public;
grant execute on function tenancy.audit_row_digest(tenancy.audit_logs) to tenancy_auditor, tenancy_admin, tenancy_service;
