-- tenancy.subject_hash: the SHA-256 (hex) of a tenant and a data subject id, as the ledger and the request log keep it.

-- sha256 of the UTF-8 bytes of '<tenant id>:<subject id>': pseudonymous (who knows the id can
-- recompute it), never the id itself. Runs as the caller; everything qualified.
create or replace function tenancy.subject_hash(p_tenant_id uuid, p_subject text)
returns text
language sql
stable
parallel safe
as $$
select pg_catalog.encode(
    pg_catalog.sha256(
        pg_catalog.convert_to(
            p_tenant_id::pg_catalog.text operator (pg_catalog.||) ':' operator (pg_catalog.||) p_subject, 'UTF8'
        )
    ),
    'hex'
)
$$;

comment on function tenancy.subject_hash(uuid, text) is
'The hex SHA-256 of ''<tenant id>:<subject id>'' (UTF-8): how the erasure ledger and the request '
'log name a data subject without keeping its id.';

revoke all on function tenancy.subject_hash(uuid, text) from public;
grant execute on function tenancy.subject_hash(uuid, text) to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
