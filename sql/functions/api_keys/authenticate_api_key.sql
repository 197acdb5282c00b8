-- tenancy.authenticate_api_key: set the context of an API key's tenant, with the key's role, for the rest of the transaction.

create or replace function tenancy.authenticate_api_key(p_key text)
returns table (tenant_id uuid, role text, api_key_id uuid)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_attempt record;
begin
    select a.* into v_attempt from tenancy.api_key_attempt(p_key) as a;
    if v_attempt.error_code is not null then
        -- Counted already: the count survives this error's rollback, the event row does not
        -- (tenancy.try_authenticate_api_key keeps it).
        raise exception using
            errcode = v_attempt.error_code,
            message = v_attempt.error_message,
            hint = 'The failure is counted even when the transaction rolls back; repeated failures lock the key out.';
    end if;
    return query select v_attempt.tenant_id, v_attempt.role, v_attempt.api_key_id;
end
$$;

comment on function tenancy.authenticate_api_key(text) is
'For tenancy_app: checks an API key (tenancy.create_api_key) and sets a context in its tenant '
'with its role, no user (current_user_id() NULL) and the key id (current_api_key_id()) for the '
'rest of the transaction; returns tenant_id, role, api_key_id. 25006 in a read-only '
'transaction; TN004 for a malformed, unknown, revoked or expired key; TN013 when the key is '
'locked out; TN002 when its tenant is not active; 40001 under REPEATABLE READ or SERIALIZABLE '
'when it was revoked after the snapshot. Failures are counted even when the transaction rolls '
'back.';

revoke all on function tenancy.authenticate_api_key(text) from public;
grant execute on function tenancy.authenticate_api_key(text) to tenancy_app;
