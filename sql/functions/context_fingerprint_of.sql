-- tenancy.context_fingerprint_of: the 64-bit fingerprint of a context value (first 8 bytes of SHA-256).

create or replace function tenancy.context_fingerprint_of(p_value text)
returns bigint
language sql
immutable
parallel safe
as $$
    select (
        'x' operator(pg_catalog.||) pg_catalog.encode(
            pg_catalog.substring(pg_catalog.sha256(pg_catalog.convert_to(p_value, 'UTF8')), 1, 8),
            'hex'
        )
    )::pg_catalog.bit(64)::pg_catalog.int8
$$;

comment on function tenancy.context_fingerprint_of(text) is
'pgtenancy internal: fingerprint of a context value, compared with currval(tenancy.context_fingerprint).';

revoke all on function tenancy.context_fingerprint_of(text) from public;
grant execute on function tenancy.context_fingerprint_of(text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
