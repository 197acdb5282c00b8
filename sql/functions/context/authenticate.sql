-- tenancy.authenticate: verify a JWT and set tenant, user and role for the rest of the transaction.

create or replace function tenancy.authenticate(p_token text)
returns table (tenant_id uuid, user_id text, role text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_claims jsonb := tenancy.verify_jwt(p_token);
    v_tenant_id uuid;
    v_user_id tenancy.user_id;
    v_role text;
    v_status text;
    v_key text;
begin
    if v_claims -> 'sub' is null or v_claims -> 'tenant_id' is null then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token claims sub %s and tenant_id %s are required',
                coalesce(v_claims -> 'sub', '"missing"'::jsonb),
                coalesce(v_claims -> 'tenant_id', '"missing"'::jsonb)
            );
    end if;
    -- The subject is the user id verbatim: a JSON string of 1 to 255 characters without control
    -- characters (tenancy.user_id), whatever the identity provider's format.
    begin
        if jsonb_typeof(v_claims -> 'sub') <> 'string' then
            raise exception using errcode = '23514';
        end if;
        v_user_id := v_claims ->> 'sub';
    exception when check_violation then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token claim sub %s must be a string of 1 to 255 characters without control characters',
                tenancy.token_excerpt((v_claims -> 'sub')::text, 300)
            );
    end;
    begin
        if jsonb_typeof(v_claims -> 'tenant_id') <> 'string' then
            raise exception using errcode = '22P02';
        end if;
        v_tenant_id := (v_claims ->> 'tenant_id')::uuid;
    exception when invalid_text_representation then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token claim tenant_id %s must be a UUID', tenancy.token_excerpt((v_claims -> 'tenant_id')::text, 100)
            );
    end;
    select c.status, c.role, c.key into v_status, v_role, v_key
    from tenancy.context_preconditions(v_tenant_id, v_user_id) as c;
    if v_status is distinct from 'active' then
        perform tenancy.require_active_tenant(v_tenant_id);  -- raises P0002 or TN002
    end if;
    if v_role is null then
        raise exception using
            errcode = 'TN003',
            message = format('user %L is not a member of tenant %s', v_user_id, v_tenant_id);
    end if;
    perform tenancy.establish_context(v_tenant_id, v_user_id, v_role, v_key);
    return query select v_tenant_id, v_user_id::text, v_role;
end
$$;

comment on function tenancy.authenticate(text) is
'For tenancy_app: verifies an HS256 JWT (signature, exp, nbf, iss/aud when configured), takes '
'the user from sub (verbatim, tenancy.user_id) and the tenant from the tenant_id claim, requires an active tenant and a '
'membership (as committed now: 40001 under REPEATABLE READ when they changed after the snapshot) '
'and a clean session (TN008), and sets tenant, user and role for the rest of the transaction.';

revoke all on function tenancy.authenticate(text) from public;
grant execute on function tenancy.authenticate(text) to tenancy_app;
