-- tenancy.authenticate_api_key: set the context of an API key's tenant, with the key's role, for the rest of the transaction.

-- The body is tenancy.api_key_attempt, which counts a refusal before raising it: the count
-- survives the rollback, the event row does not (tenancy.try_authenticate_api_key keeps it).
create or replace function tenancy.authenticate_api_key(p_key text)
returns table (tenant_id uuid, role text, api_key_id uuid)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    return query select a.tenant_id, a.role, a.api_key_id from tenancy.api_key_attempt(p_key, true) as a;
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
