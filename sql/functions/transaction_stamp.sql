-- tenancy.transaction_stamp: the current transaction's start time in microseconds, as text.

create or replace function tenancy.transaction_stamp()
returns text
language sql
stable
parallel safe
as $$
    select ((pg_catalog.date_part('epoch', pg_catalog.transaction_timestamp())
        operator(pg_catalog.*) 1000000)::pg_catalog.int8)::pg_catalog.text
$$;

comment on function tenancy.transaction_stamp() is
'pgtenancy internal: binds a context to the transaction that set it (independent of DateStyle and TimeZone).';

revoke all on function tenancy.transaction_stamp() from public;
grant execute on function tenancy.transaction_stamp()
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
