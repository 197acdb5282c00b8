-- tenancy.authentication_failed: count a failed attempt (never rolled back) and record its event.

create or replace function tenancy.authentication_failed(
    p_sqlstate text,
    p_reason text,
    p_subjects text[],
    p_tenant_id uuid default null,
    p_user_id text default null,
    p_host text default null,
    p_api_key_id text default null,
    p_details jsonb default '{}'
)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_config tenancy.auth_config;
    v_window bigint;
    v_attempt bigint;
    v_subject text;
    v_value bigint;
    v_count integer;
    v_least integer;
begin
    select c.* into v_config from tenancy.auth_config as c;
    v_window := tenancy.lockout_window_number(v_config.lockout_window);
    -- nextval and setval are never rolled back: the count stays when the caller's transaction
    -- does not. (authenticate refuses read-only transactions before looking at a token, so no
    -- attempt escapes counting that way.)
    v_attempt := nextval('tenancy.auth_failures_total'::regclass);
    perform tenancy.record_security_event(
        'authentication.failed', p_reason, p_tenant_id, p_user_id, p_host, p_sqlstate, p_details,
        p_api_key_id, v_attempt
    );
    foreach v_subject in array coalesce(p_subjects, '{}') loop
        continue when v_subject is null;
        v_least := null;
        for r in 0..1 loop
            v_value := nextval(tenancy.auth_failure_counter(v_subject, r));
            if (v_value >> 20) <> v_window then
                -- The first failure of a new window restarts the counter.
                perform setval(tenancy.auth_failure_counter(v_subject, r), (v_window << 20) | 1);
                v_count := 1;
            else
                v_count := (v_value & 1048575)::integer;
            end if;
            v_least := least(coalesce(v_least, v_count), v_count);
        end loop;
        -- One lockout event per subject and window: the failure that reaches the limit.
        if v_config.lockout_failures > 0 and v_least = v_config.lockout_failures then
            perform tenancy.record_security_event(
                'authentication.lockout',
                format(
                    '%s failed attempts for %s within %s: further attempts are refused until the window ends',
                    v_least, tenancy.token_excerpt(v_subject, 120), v_config.lockout_window
                ),
                p_tenant_id, p_user_id, p_host, 'TN013', jsonb_build_object('subject', tenancy.token_excerpt(v_subject, 300)),
                p_api_key_id, v_attempt
            );
        end if;
    end loop;
    return v_attempt;
end
$$;

comment on function tenancy.authentication_failed(text, text, text[], uuid, text, text, text, jsonb) is
'pgtenancy internal: numbers a failed attempt (tenancy.auth_failures_total), records it in '
'tenancy.security_events, counts it for each subject (user:<id>, host:<host>, api_key:<id>) in the '
'lockout sketch and records one authentication.lockout event when a subject reaches the limit. '
'The counts survive a rollback of the caller''s transaction; the event rows do not.';

revoke all on function tenancy.authentication_failed(text, text, text[], uuid, text, text, text, jsonb) from public;
