-- tenancy.auth_failures: how many failed attempts a subject has in the current lockout window.

create or replace function tenancy.auth_failures(p_subject text)
returns integer
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    return (
        select tenancy.auth_failure_count(
            p_subject, tenancy.lockout_window_number(c.lockout_window)
        )
        from tenancy.auth_config as c
    );
end
$$;

comment on function tenancy.auth_failures(text) is
'For tenancy_admin and tenancy_auditor: the failed attempts of p_subject (user:<id>, host:<host> '
'or api_key:<id>) in the current lockout window, counted even when their transactions rolled '
'back (an upper bound: another subject sharing both counters adds to it, with probability 1/4096).';

revoke all on function tenancy.auth_failures(text) from public;
grant execute on function tenancy.auth_failures(text) to tenancy_admin, tenancy_auditor;
