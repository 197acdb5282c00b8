-- tenancy.uuid_v7: a time-ordered UUID (RFC 9562 version 7) with microseconds in its sub-millisecond bits.

-- 48 bits of Unix milliseconds, the version, 12 bits of the microseconds within the millisecond
-- (RFC 9562, method 3), then the variant and 62 random bits of a version 4 UUID: ids made one
-- after another by a session sort in the order they were made (clock_timestamp() advances
-- between calls), and ids of different sessions sort by time to the microsecond. PL/pgSQL
-- without SET (its plan is cached): every name is schema-qualified.
create or replace function tenancy.uuid_v7()
returns uuid
language plpgsql
volatile
parallel safe
as $$
declare
    v_us pg_catalog.int8 := (
        extract(epoch from pg_catalog.clock_timestamp()) operator(pg_catalog.*) 1000000
    )::pg_catalog.int8;
begin
    return pg_catalog.encode(
        pg_catalog.substr(pg_catalog.int8send(v_us operator(pg_catalog./) 1000), 3)
        operator(pg_catalog.||) pg_catalog.int2send((
            28672 operator(pg_catalog.+) (
                ((v_us operator(pg_catalog.%) 1000) operator(pg_catalog.*) 4096) operator(pg_catalog./) 1000
            )
        )::pg_catalog.int2)
        operator(pg_catalog.||) pg_catalog.substr(pg_catalog.uuid_send(pg_catalog.gen_random_uuid()), 9),
        'hex'
    )::pg_catalog.uuid;
end
$$;

comment on function tenancy.uuid_v7() is
'A version 7 UUID (RFC 9562): Unix milliseconds, then microseconds, then random bits; ids sort '
'by the time they were made. Outbox event ids.';

revoke all on function tenancy.uuid_v7() from public;
grant execute on function tenancy.uuid_v7() to tenancy_app, tenancy_service, tenancy_admin;
