-- tenancy.auth_failures: how many failed attempts a subject has in the current lockout window.

create or replace function tenancy.auth_failures(p_subject text)
returns integer
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_window bigint;
    v_count integer;
    v_value bigint;
begin
    select floor(extract(epoch from clock_timestamp()) / extract(epoch from c.lockout_window))::bigint
    into v_window
    from tenancy.auth_config as c;
    -- The smaller of the subject's two counters, each counting only within the current window:
    -- never fewer than the subject's failures, more only if another subject shares both.
    for r in 0..1 loop
        v_value := pg_sequence_last_value(tenancy.auth_failure_counter(p_subject, r));
        if v_value is null or (v_value >> 20) <> v_window then
            return 0;
        end if;
        v_count := least(coalesce(v_count, 2147483647), (v_value & 1048575)::integer);
    end loop;
    return v_count;
end
$$;

comment on function tenancy.auth_failures(text) is
'For tenancy_admin and tenancy_auditor: the failed attempts of p_subject (user:<id>, host:<host> '
'or api_key:<id>) in the current lockout window, counted even when their transactions rolled '
'back (an upper bound: another subject sharing both counters adds to it, with probability 1/4096).';

revoke all on function tenancy.auth_failures(text) from public;
grant execute on function tenancy.auth_failures(text) to tenancy_admin, tenancy_auditor;
