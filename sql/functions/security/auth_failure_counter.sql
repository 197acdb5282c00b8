-- tenancy.auth_failure_counter: the sequence counting one subject's failures in one row of the sketch.
-- No SET clause so that the planner inlines it; every name is schema-qualified instead.

create or replace function tenancy.auth_failure_counter(p_subject text, p_row integer)
returns regclass
language sql
stable
parallel safe
as $$
    -- Row 0 uses counters 000-063 and the first byte of the subject's SHA-256, row 1 counters
    -- 064-127 and the second byte: two subjects share both counters with probability 1/4096.
    select pg_catalog.format(
        'tenancy.auth_failures_%s',
        pg_catalog.lpad(
            (
                (p_row operator(pg_catalog.*) 64)
                operator(pg_catalog.+) (
                    pg_catalog.get_byte(pg_catalog.sha256(pg_catalog.convert_to(p_subject, 'UTF8')), p_row)
                    operator(pg_catalog.%) 64
                )
            )::pg_catalog.text,
            3,
            '0'
        )
    )::pg_catalog.regclass
$$;

comment on function tenancy.auth_failure_counter(text, integer) is
'pgtenancy internal: the sequence of row p_row (0 or 1) of the failed-authentication sketch that '
'counts p_subject (user:<id>, host:<host> or api_key:<id>).';

revoke all on function tenancy.auth_failure_counter(text, integer) from public;
