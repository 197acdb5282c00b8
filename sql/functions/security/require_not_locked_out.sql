-- tenancy.require_not_locked_out: TN013 when any of the subjects is locked out.

create or replace function tenancy.require_not_locked_out(p_subjects text[])
returns void
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_config tenancy.auth_config;
    v_subject text;
begin
    select c.* into v_config from tenancy.auth_config as c;
    if v_config.lockout_failures = 0 then
        return;
    end if;
    foreach v_subject in array p_subjects loop
        if v_subject is not null and tenancy.auth_failure_count(
            v_subject, tenancy.lockout_window_number(v_config.lockout_window)
        ) >= v_config.lockout_failures then
            raise exception using
                errcode = 'TN013',
                message = format(
                    'too many failed attempts for %s: locked out until %s',
                    tenancy.token_excerpt(v_subject, 120),
                    to_timestamp(
                        (tenancy.lockout_window_number(v_config.lockout_window) + 1)
                        * extract(epoch from v_config.lockout_window)
                    )
                ),
                hint = 'Wait until the lockout window ends; tenancy.security_events has the lockout event.';
        end if;
    end loop;
end
$$;

comment on function tenancy.require_not_locked_out(text[]) is
'pgtenancy internal: raises TN013 naming the first subject (user:<id>, host:<host>, api_key:<id>) '
'that has reached tenancy.auth_config.lockout_failures in the current window.';

revoke all on function tenancy.require_not_locked_out(text[]) from public;
