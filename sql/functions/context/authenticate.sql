-- tenancy.authenticate: verify a JWT and set tenant, user and role for the rest of the transaction.

-- The tenant named by the token's tenant_id claim; the host-aware form is
-- authenticate_host.sql. Both share one body, tenancy.apply_token.
create or replace function tenancy.authenticate(p_token text)
returns table (tenant_id uuid, user_id text, role text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    return query select a.tenant_id, a.user_id, a.role from tenancy.apply_token(p_token, null, null) as a;
end
$$;

comment on function tenancy.authenticate(text) is
'For tenancy_app: verifies an HS256 JWT (signature, exp, nbf, iss/aud when configured), takes '
'the user from sub (verbatim, tenancy.user_id) and the tenant from the tenant_id claim, requires an active tenant and a '
'membership (as committed now: 40001 under REPEATABLE READ when they changed after the snapshot) '
'and a clean session (TN008), and sets tenant, user and role for the rest of the transaction.';

revoke all on function tenancy.authenticate(text) from public;
grant execute on function tenancy.authenticate(text) to tenancy_app;
