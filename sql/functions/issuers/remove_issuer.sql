-- tenancy.remove_issuer: stop trusting an issuer (platform-wide, or one tenant's).

create or replace function tenancy.remove_issuer(p_issuer text, p_tenant_id uuid default null)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_id bigint;
begin
    delete from tenancy.jwt_issuers as i
    where i.issuer = p_issuer and i.tenant_id is not distinct from p_tenant_id
    returning i.id into v_id;
    if v_id is null then
        raise exception using
            errcode = 'P0002',
            message = format(
                'issuer %L is not trusted %s', tenancy.token_excerpt(p_issuer, 200),
                coalesce('for tenant ' || p_tenant_id, 'platform-wide')
            );
    end if;
    perform tenancy.forget_verified_tokens(v_id, null);
end
$$;

comment on function tenancy.remove_issuer(text, uuid) is
'For tenancy_admin: removes a trusted issuer (p_tenant_id NULL: the platform-wide one) with its '
'keys and cached verifications: its tokens are refused from the next authentication on. P0002 '
'when no such issuer is trusted.';

revoke all on function tenancy.remove_issuer(text, uuid) from public;
grant execute on function tenancy.remove_issuer(text, uuid) to tenancy_admin;
