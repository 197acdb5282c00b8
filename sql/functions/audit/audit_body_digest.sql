-- tenancy.audit_body_digest: the SHA-256 digest of an audit row's body (what redaction may change).
-- migrate: as-role tenancy_audit_owner

-- sha256 of the bytes of 'pgtenancy.audit_body.v1' followed by, each after a comma: entity_id,
-- old_data, new_data, changed_columns, actor_user_id, actor_role, api_key_id, db_user, metadata.
-- Every field is a quoted literal or NULL (quote_nullable), so NULL and '' differ and no field runs
-- into the next; jsonb as its canonical text; changed_columns as the JSON text
-- json_object(array of '', changed_columns), which keeps order and NULL elements. Text becomes
-- bytes through a cast to bytea with its backslashes doubled (the bytes of the text in the
-- database's encoding): unlike convert_to, immutable. Only immutable functions, schema-qualified,
-- and no SET clause, so the planner inlines it (tenancy.audit_row_digest).
-- tenancy.redact_audit stores it in body_digest before it erases values; from then on
-- tenancy.audit_row_digest takes the stored value instead.
create or replace function tenancy.audit_body_digest(p_row tenancy.audit_logs)
returns bytea
language sql
immutable
parallel safe
as $$
select pg_catalog.sha256(
    pg_catalog.replace(
        'pgtenancy.audit_body.v1'
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.entity_id)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.old_data::pg_catalog.text)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.new_data::pg_catalog.text)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable((
            case when p_row.changed_columns is not null then
                pg_catalog.json_object(
                    pg_catalog.array_fill(''::pg_catalog.text, array[pg_catalog.cardinality(p_row.changed_columns)]),
                    p_row.changed_columns
                )
            end
        )::pg_catalog.text)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.actor_user_id)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.actor_role)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.api_key_id::pg_catalog.text)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.db_user::pg_catalog.text)
        operator (pg_catalog.||) ',' operator (pg_catalog.||) pg_catalog.quote_nullable(p_row.metadata::pg_catalog.text),
        E'\\', E'\\\\'
    )::pg_catalog.bytea
)
$$;

comment on function tenancy.audit_body_digest(tenancy.audit_logs) is
'The SHA-256 digest of an audit row''s body: entity_id, old_data, new_data, changed_columns, '
'actor_user_id, actor_role, api_key_id, db_user and metadata, as comma-separated quoted literals '
'(NULL distinct from ''''). tenancy.redact_audit keeps it in body_digest before erasing values.';

revoke all on function tenancy.audit_body_digest(tenancy.audit_logs) from public;
grant execute on function tenancy.audit_body_digest(tenancy.audit_logs) to tenancy_auditor, tenancy_admin, tenancy_service;
