-- tenancy.auth_failure_count: one subject's failures in a lockout window, read from its two counters.

create or replace function tenancy.auth_failure_count(p_subject text, p_window bigint)
returns integer
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_hash bytea;
    v_value bigint;
    v_count integer := 2147483647;
begin
    -- A NULL subject (no host, no readable user) has no counters.
    if p_subject is null then
        return 0;
    end if;
    -- The smaller of the subject's two counters (tenancy.auth_failure_counter: row r uses counter
    -- r * 64 + byte r of the subject's SHA-256, mod 64), each counting only within window
    -- p_window: never fewer than the subject's failures, more only if another subject shares both.
    v_hash := sha256(convert_to(p_subject, 'UTF8'));
    for r in 0..1 loop
        v_value := pg_sequence_last_value(
            format('tenancy.auth_failures_%s', lpad((r * 64 + get_byte(v_hash, r) % 64)::text, 3, '0'))::regclass
        );
        if v_value is null or (v_value >> 20) <> p_window then
            return 0;
        end if;
        v_count := least(v_count, (v_value & 1048575)::integer);
    end loop;
    return v_count;
end
$$;

comment on function tenancy.auth_failure_count(text, bigint) is
'pgtenancy internal: the failures of p_subject (user:<id>, host:<host>, api_key:<id>) counted in '
'lockout window p_window (seconds since 1970 divided by the window''s length), from the two '
'counters of the sketch; an upper bound (another subject sharing both adds to it).';

revoke all on function tenancy.auth_failure_count(text, bigint) from public;
