-- tenancy.member_management_refused: number and record a refused change of members or domains, then raise 42501.

-- The event row is written in the caller's transaction, and the error raised next rolls it back
-- with the statement, always: nothing in core PostgreSQL writes outside the transaction. What
-- stays is its number, drawn from tenancy.auth_failures_total (never rolled back) before the row
-- is written: a number missing from tenancy.security_events.attempt is a refused attempt (or a
-- failed authentication) whose transaction rolled back, so refusals are counted even though their
-- rows are not kept. A LOG line in the server log, which no rollback takes back either, names
-- the number, tenant, user, role and what was refused.
create or replace function tenancy.member_management_refused(
    p_tenant_id uuid, p_user_id text, p_role text, p_what text, p_message text, p_hint text
)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_attempt bigint := nextval('tenancy.auth_failures_total'::regclass);
begin
    perform tenancy.record_security_event(
        'member_management.refused', p_message, p_tenant_id, p_user_id, null, '42501',
        jsonb_build_object('role', p_role, 'what', p_what), null, v_attempt
    );
    raise log 'pgtenancy: refused attempt %: %', v_attempt, p_message;
    raise exception using errcode = '42501', message = p_message, hint = p_hint;
end
$$;

comment on function tenancy.member_management_refused(uuid, text, text, text, text, text) is
'pgtenancy internal: numbers a refused change of members or domains (tenancy.auth_failures_total, '
'never rolled back), records a member_management.refused event (tenant, user, role, what) that '
'the error then rolls back, logs it, and raises 42501 with the message and hint.';

revoke all on function tenancy.member_management_refused(uuid, text, text, text, text, text) from public;
