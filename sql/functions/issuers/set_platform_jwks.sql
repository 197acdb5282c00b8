-- tenancy.set_platform_jwks: tenancy.set_jwks for tenancy_admin: the keys of every issuer of that name.

create or replace function tenancy.set_platform_jwks(p_issuer text, p_jwks jsonb)
returns table (added integer, removed integer, kept integer, skipped integer)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ids bigint [];
begin
    -- The keys belong to the issuer, whichever tenants trust it.
    select array_agg(i.id order by i.id) into v_ids
    from tenancy.jwt_issuers as i
    where i.issuer = p_issuer;
    if v_ids is null then
        raise exception using
            errcode = 'P0002',
            message = format('issuer %s is not trusted', coalesce(quote_literal(tenancy.token_excerpt(p_issuer, 200)), 'NULL')),
            hint = 'Trust it with tenancy.configure_issuer() first.';
    end if;
    perform 1 from tenancy.jwt_issuers as i where i.id = any(v_ids) order by i.id for update;
    return query select r.added, r.removed, r.kept, r.skipped from tenancy.replace_issuer_keys(v_ids, p_jwks) as r;
end
$$;

comment on function tenancy.set_platform_jwks(text, jsonb) is
'For tenancy_admin (through tenancy.set_jwks): stores p_jwks as the keys of every trusted issuer '
'named p_issuer, platform-wide or a tenant''s. P0002 when none is trusted.';

revoke all on function tenancy.set_platform_jwks(text, jsonb) from public;
grant execute on function tenancy.set_platform_jwks(text, jsonb) to tenancy_admin;
