-- tenancy.apply_token: the body of both tenancy.authenticate forms.

-- Named to apply before them (files apply in the order of their paths): upgrading a live
-- database never runs an authenticate whose body calls a function not yet created.

-- p_host_tenant_id NULL: the tenant is the token's tenant_id claim (required). Otherwise the
-- tenant is p_host_tenant_id, the one at p_host (named in messages), and the claim, when present,
-- must name it: the message says which tenant the token names and which the host has, nothing
-- more (the tenant the claim names is not looked up).
create or replace function tenancy.apply_token(p_token text, p_host text, p_host_tenant_id uuid)
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
    if p_host_tenant_id is null and (v_claims -> 'sub' is null or v_claims -> 'tenant_id' is null) then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token claims sub %s and tenant_id %s are required',
                coalesce(v_claims -> 'sub', '"missing"'::jsonb),
                coalesce(v_claims -> 'tenant_id', '"missing"'::jsonb)
            );
    end if;
    if v_claims -> 'sub' is null then
        raise exception using errcode = 'TN004', message = 'token claim sub "missing" is required';
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
    if v_claims -> 'tenant_id' is not null then
        begin
            if jsonb_typeof(v_claims -> 'tenant_id') <> 'string' then
                raise exception using errcode = '22P02';
            end if;
            v_tenant_id := (v_claims ->> 'tenant_id')::uuid;
        exception when invalid_text_representation then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token claim tenant_id %s must be a UUID',
                    tenancy.token_excerpt((v_claims -> 'tenant_id')::text, 100)
                );
        end;
    end if;
    if p_host_tenant_id is not null then
        if v_tenant_id is distinct from p_host_tenant_id and v_tenant_id is not null then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token claim tenant_id %s does not name tenant %s of host %L',
                    v_tenant_id, p_host_tenant_id, tenancy.token_excerpt(p_host, 100)
                ),
                hint = 'A token names at most the tenant of the host it is presented on.';
        end if;
        v_tenant_id := p_host_tenant_id;
    end if;
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

comment on function tenancy.apply_token(text, text, uuid) is
'pgtenancy internal: the body of tenancy.authenticate(p_token) (p_host_tenant_id NULL: the '
'tenant from the tenant_id claim) and tenancy.authenticate(p_token, p_host) (the tenant at the '
'host; a tenant_id claim must name it).';

revoke all on function tenancy.apply_token(text, text, uuid) from public;
