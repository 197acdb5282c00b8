-- tenancy.set_tenant_jwks: tenancy.set_jwks for a tenant's owner: the keys of the tenant's own issuer.

create or replace function tenancy.set_tenant_jwks(p_issuer text, p_jwks jsonb)
returns table (added integer, removed integer, kept integer, skipped integer)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_manager record;
    v_id bigint;
begin
    -- Owners only: admins manage members, owners decide whom the tenant's identity provider
    -- speaks for (any user id of the tenant).
    select m.tenant_id, m.role into v_manager from tenancy.require_member_manager('identity providers') as m;
    if v_manager.role not in ('owner', 'service') then
        raise exception using
            errcode = '42501',
            message = format('role %s of tenant %s cannot manage identity providers', v_manager.role, v_manager.tenant_id),
            hint = 'Only owners set the keys of their tenant''s own issuer.';
    end if;
    select i.id into v_id
    from tenancy.jwt_issuers as i
    where i.issuer = p_issuer and i.tenant_id = v_manager.tenant_id
    for update;
    if v_id is null then
        raise exception using
            errcode = 'P0002',
            message = format(
                'issuer %s is not an identity provider of tenant %s',
                coalesce(quote_literal(tenancy.token_excerpt(p_issuer, 200)), 'NULL'), v_manager.tenant_id
            ),
            hint = 'A tenancy_admin trusts a tenant''s identity provider with tenancy.configure_issuer(..., p_tenant_id).';
    end if;
    return query select r.added, r.removed, r.kept, r.skipped from tenancy.replace_issuer_keys(array[v_id], p_jwks) as r;
end
$$;

comment on function tenancy.set_tenant_jwks(text, jsonb) is
'For owners of the current tenant (through tenancy.set_jwks): stores p_jwks as the keys of the '
'tenant''s own issuer p_issuer. 42501 for other roles, P0002 when the tenant has no such issuer.';

revoke all on function tenancy.set_tenant_jwks(text, jsonb) from public;
grant execute on function tenancy.set_tenant_jwks(text, jsonb) to tenancy_app, tenancy_service;
