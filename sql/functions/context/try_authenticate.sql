-- tenancy.try_authenticate: authenticate, or record the refusal and return it instead of raising it.

-- For callers that want the security event of a refused token to outlive the request: a refusal
-- is counted and recorded, and returned as (sqlstate, message) with no context set, so the caller
-- commits (keeping the event) and then reports the failure; pgtenancy's Python helpers do this.
-- Errors that are not refusals of the token (not configured, read-only transaction, 40001,
-- unclean session) are raised as by authenticate.
create or replace function tenancy.try_authenticate(p_token text, p_host text default null)
returns table (tenant_id uuid, user_id text, role text, sqlstate text, message text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_sqlstate text;
    v_message text;
begin
    if p_host is null then
        return query select a.tenant_id, a.user_id, a.role, null::text, null::text
            from tenancy.apply_token(p_token, null, null) as a;
    else
        return query select a.tenant_id, a.user_id, a.role, null::text, null::text
            from tenancy.apply_host_token(p_token, p_host) as a;
    end if;
exception when others then
    get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
    if not tenancy.authentication_refused(p_token, p_host, v_sqlstate, v_message) and v_sqlstate <> 'TN013' then
        raise;
    end if;
    -- Whatever context the transaction had before is gone: a refused token leaves none.
    perform tenancy.clear_context();
    return query select null::uuid, null::text, null::text, v_sqlstate, v_message;
end
$$;

comment on function tenancy.try_authenticate(text, text) is
'For tenancy_app: tenancy.authenticate(p_token) (p_host NULL) or authenticate(p_token, p_host), '
'except that a refused token (TN002, TN003, TN004, TN010, TN012, TN013, P0002) is returned as '
'sqlstate and message, with no context (an earlier one is cleared), instead of raised: the authentication.failed event '
'stays when the caller commits. Other errors are raised.';

revoke all on function tenancy.try_authenticate(text, text) from public;
grant execute on function tenancy.try_authenticate(text, text) to tenancy_app;
