-- tenancy.authenticate(p_token, p_host): authenticate with the tenant taken from the request's Host header.

-- The body is tenancy.apply_host_token (host first, then the token); refusals are counted as by
-- authenticate(p_token).
create or replace function tenancy.authenticate(p_token text, p_host text)
returns table (tenant_id uuid, user_id text, role text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_sqlstate text;
    v_message text;
begin
    return query select a.tenant_id, a.user_id, a.role from tenancy.apply_host_token(p_token, p_host) as a;
exception when others then
    get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
    perform tenancy.authentication_refused(p_token, p_host, v_sqlstate, v_message);
    raise;
end
$$;

comment on function tenancy.authenticate(text, text) is
'For tenancy_app: authenticate(p_token) with the tenant taken from a raw Host header '
'(tenancy.resolve_tenant: TN010 when malformed, TN012 when no active tenant is there); the '
'token''s tenant_id claim is optional and, when present, must name that tenant (TN004); a token of '
'a tenant''s own identity provider authenticates into that tenant only. The user must be a member '
'(TN003); everything else as authenticate(p_token). Under REPEATABLE READ or SERIALIZABLE, 40001 '
'when the host''s domain changed after the snapshot.';

revoke all on function tenancy.authenticate(text, text) from public;
grant execute on function tenancy.authenticate(text, text) to tenancy_app;
