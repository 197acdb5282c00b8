-- tenancy.authenticate: verify a JWT and set tenant, user and role for the rest of the transaction.

-- The tenant named by the token's tenant claim (or its issuer's tenant); the host-aware form is
-- authenticate_host.sql. Both share one body, tenancy.apply_token. A refusal is counted before
-- the error is raised again (tenancy.authentication_refused): the count survives the rollback
-- that the error causes, the event row does not (tenancy.try_authenticate keeps both).
create or replace function tenancy.authenticate(p_token text)
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
    return query select a.tenant_id, a.user_id, a.role from tenancy.apply_token(p_token, null, null) as a;
exception when others then
    get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
    perform tenancy.authentication_refused(p_token, null, v_sqlstate, v_message);
    raise;
end
$$;

comment on function tenancy.authenticate(text) is
'For tenancy_app: verifies a JWT (HS256 with the configured secret, or RS256/ES256 with the key '
'of the trusted issuer named by iss and kid; signature, exp, nbf, iss/aud, cached once verified), '
'takes the user from sub (verbatim, tenancy.user_id) and the tenant from the tenant_id claim (or '
'the token''s issuer, for a tenant''s own identity provider), requires an active tenant and a '
'membership (as committed now: 40001 under REPEATABLE READ when they changed after the snapshot) '
'and a clean session (TN008), and sets tenant, user and role for the rest of the transaction. '
'Refusals are counted for lockouts even when the transaction rolls back (TN013 when locked out).';

revoke all on function tenancy.authenticate(text) from public;
grant execute on function tenancy.authenticate(text) to tenancy_app;
