-- tenancy.authenticate: verify a JWT and set tenant, user and role for the rest of the transaction.

create or replace function tenancy.authenticate(p_token text)
returns table (tenant_id uuid, user_id uuid, role text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_claims jsonb := tenancy.verify_jwt(p_token);
    v_tenant_id uuid;
    v_user_id uuid;
    v_role text;
    v_status text;
begin
    begin
        v_user_id := (v_claims ->> 'sub')::uuid;
        v_tenant_id := (v_claims ->> 'tenant_id')::uuid;
    exception when invalid_text_representation then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token claims sub %s and tenant_id %s must be UUIDs',
                coalesce(v_claims -> 'sub', '"missing"'::jsonb),
                coalesce(v_claims -> 'tenant_id', '"missing"'::jsonb)
            );
    end;
    if v_user_id is null or v_tenant_id is null then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token claims sub %s and tenant_id %s are required',
                coalesce(v_claims -> 'sub', '"missing"'::jsonb),
                coalesce(v_claims -> 'tenant_id', '"missing"'::jsonb)
            );
    end if;
    select c.status, c.role into v_status, v_role
    from tenancy.context_preconditions(v_tenant_id, v_user_id) as c;
    if v_status is distinct from 'active' then
        perform tenancy.require_active_tenant(v_tenant_id);  -- raises P0002 or TN002
    end if;
    if v_role is null then
        raise exception using
            errcode = 'TN003',
            message = format('user %s is not a member of tenant %s', v_user_id, v_tenant_id);
    end if;
    perform tenancy.establish_context(v_tenant_id, v_user_id, v_role);
    return query select v_tenant_id, v_user_id, v_role;
end
$$;

comment on function tenancy.authenticate(text) is
'For tenancy_app: verifies an HS256 JWT (signature, exp, nbf, iss/aud when configured), takes '
'the user from sub and the tenant from the tenant_id claim, requires an active tenant and a '
'membership (as committed now: 40001 under REPEATABLE READ when they changed after the snapshot) '
'and a clean session (TN008), and sets tenant, user and role for the rest of the transaction.';

revoke all on function tenancy.authenticate(text) from public;
grant execute on function tenancy.authenticate(text) to tenancy_app;
