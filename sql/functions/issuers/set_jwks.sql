-- tenancy.set_jwks: store an issuer's JWKS: tenancy_admin for any issuer, a tenant's owner for the tenant's own.

-- Runs as the caller, so that it can tell a tenancy_admin from an application: it resolves
-- nothing through search_path (every name qualified) and hands over to the SECURITY DEFINER
-- function the caller is allowed to execute. PL/pgSQL prepares a statement when it first runs,
-- so the branch not taken needs no privilege.
create or replace function tenancy.set_jwks(p_issuer text, p_jwks jsonb)
returns table (added integer, removed integer, kept integer, skipped integer)
language plpgsql
volatile
as $$
begin
    if pg_catalog.pg_has_role(current_user, 'tenancy_admin', 'USAGE') then
        return query select s.added, s.removed, s.kept, s.skipped from tenancy.set_platform_jwks(p_issuer, p_jwks) as s;
    else
        return query select s.added, s.removed, s.kept, s.skipped from tenancy.set_tenant_jwks(p_issuer, p_jwks) as s;
    end if;
end
$$;

comment on function tenancy.set_jwks(text, jsonb) is
'Stores the JWKS of a trusted issuer as its whole set of signing keys: a new kid is a rotation, a '
'kid no longer listed a revocation (its cached verifications go at once), keys of another use or '
'algorithm are skipped. For tenancy_admin: every issuer named p_issuer. For the owner of the '
'current tenant (tenancy_app): the tenant''s own issuer only. 22023 for a malformed set or key; '
'returns how many keys were added, removed, kept and skipped.';

revoke all on function tenancy.set_jwks(text, jsonb) from public;
grant execute on function tenancy.set_jwks(text, jsonb) to tenancy_admin, tenancy_app;
