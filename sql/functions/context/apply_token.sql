-- tenancy.apply_token: the body of both tenancy.authenticate forms and tenancy.try_authenticate.

-- Named to apply before them (files apply in the order of their paths): upgrading a live
-- database never runs an authenticate whose body calls a function not yet created.

-- The token is verified by tenancy.verified_token (cache, HS256 or a trusted issuer's keys). The
-- tenant: p_host_tenant_id, the one at p_host (named in messages), when given; else the tenant
-- of the token's issuer when the issuer is a tenant's own identity provider; else the token's
-- tenant claim (required then). A tenant claim, when present, must name that tenant: the message
-- says which tenant the token names and which the host (or issuer) has, nothing more (the tenant
-- the claim names is not looked up).
create or replace function tenancy.apply_token(p_token text, p_host text, p_host_tenant_id uuid)
returns table (tenant_id uuid, user_id text, role text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user_id text;
    v_claim_tenant_id uuid;
    v_issuer_tenant_id uuid;
    v_tenant_id uuid;
    v_role text;
    v_status text;
    v_key text;
    v_verified record;
    v_preconditions record;
begin
    -- Functions called as expressions, not scanned in a FROM clause: PL/pgSQL evaluates a plain
    -- call without starting an executor (about 15 microseconds less each).
    v_verified := tenancy.verified_token(p_token, p_host, p_host_tenant_id);
    v_user_id := v_verified.subject;
    v_claim_tenant_id := v_verified.claim_tenant_id;
    v_issuer_tenant_id := v_verified.issuer_tenant_id;
    if p_host_tenant_id is not null then
        if v_claim_tenant_id is distinct from p_host_tenant_id and v_claim_tenant_id is not null then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token claim tenant_id %s does not name tenant %s of host %L',
                    v_claim_tenant_id, p_host_tenant_id, tenancy.token_excerpt(p_host, 100)
                ),
                hint = 'A token names at most the tenant of the host it is presented on.';
        end if;
        if v_issuer_tenant_id is distinct from p_host_tenant_id and v_issuer_tenant_id is not null then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token of the identity provider of tenant %s cannot authenticate into tenant %s of host %L',
                    v_issuer_tenant_id, p_host_tenant_id, tenancy.token_excerpt(p_host, 100)
                );
        end if;
        v_tenant_id := p_host_tenant_id;
    elsif v_issuer_tenant_id is not null then
        -- A tenant's own identity provider speaks for that tenant only.
        if v_claim_tenant_id is distinct from v_issuer_tenant_id and v_claim_tenant_id is not null then
            raise exception using
                errcode = 'TN004',
                message = format(
                    'token claim tenant_id %s does not name tenant %s, whose identity provider issued it',
                    v_claim_tenant_id, v_issuer_tenant_id
                );
        end if;
        v_tenant_id := v_issuer_tenant_id;
    else
        if v_claim_tenant_id is null then
            raise exception using
                errcode = 'TN004',
                message = format('token claims sub %s and tenant_id "missing" are required', to_jsonb(v_user_id));
        end if;
        v_tenant_id := v_claim_tenant_id;
    end if;
    v_preconditions := tenancy.context_preconditions(v_tenant_id, v_user_id);
    v_status := v_preconditions.status;
    v_role := v_preconditions.role;
    v_key := v_preconditions.key;
    if v_status is distinct from 'active' then
        perform tenancy.require_active_tenant(v_tenant_id);  -- raises P0002 or TN002
    end if;
    if v_role is null then
        raise exception using
            errcode = 'TN003',
            message = format('user %L is not a member of tenant %s', v_user_id, v_tenant_id);
    end if;
    perform tenancy.establish_context(v_tenant_id, v_user_id, v_role, v_key);
    return query select v_tenant_id, v_user_id, v_role;
end
$$;

comment on function tenancy.apply_token(text, text, uuid) is
'pgtenancy internal: the body of tenancy.authenticate(p_token) (p_host_tenant_id NULL: the '
'tenant of the token''s own-tenant issuer, else of its tenant claim), tenancy.authenticate(p_token, '
'p_host) (the tenant at the host; a tenant claim must name it) and tenancy.try_authenticate.';

revoke all on function tenancy.apply_token(text, text, uuid) from public;
