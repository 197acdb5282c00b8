-- tenancy.context_fingerprint_of: the 8-byte fingerprint binding a context value to this transaction.

create or replace function tenancy.context_fingerprint_of(p_value text)
returns bytea
language sql
stable
parallel safe
as $$
    select pg_catalog.substring(
        pg_catalog.sha256(
            pg_catalog.convert_to(p_value, 'UTF8')
            operator(pg_catalog.||) pg_catalog.timestamptz_send(pg_catalog.transaction_timestamp())
        ),
        1,
        8
    )
$$;

comment on function tenancy.context_fingerprint_of(text) is
'pgtenancy internal: the first 8 bytes of SHA-256 over a context value and the start time of '
'the current transaction, so a value replayed in a later transaction does not match. Compared '
'with int8send(currval(tenancy.context_fingerprint)).';

revoke all on function tenancy.context_fingerprint_of(text) from public;
grant execute on function tenancy.context_fingerprint_of(text)
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
