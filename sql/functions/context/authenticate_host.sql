-- tenancy.authenticate(p_token, p_host): authenticate with the tenant taken from the request's Host header.

-- The host is resolved first (tenancy.resolve_tenant): a malformed host is TN010 and a host
-- without a tenant TN012, whatever the token; then the token is verified as by
-- authenticate(p_token) (tenancy.apply_token, their shared body), its tenant_id claim
-- optional but, when present, the host's tenant. Not called by policies: the exception block (a
-- subtransaction) is allowed here.
create or replace function tenancy.authenticate(p_token text, p_host text)
returns table (tenant_id uuid, user_id text, role text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.resolve_tenant(p_host);  -- TN010 when malformed
begin
    -- Under REPEATABLE READ and SERIALIZABLE the snapshot may predate a removed domain or a
    -- changed claim: lock the host's row, so that such a change raises 40001 (retry) as a revoked
    -- membership does in context_preconditions; the lock is released at once.
    if current_setting('transaction_isolation') <> 'read committed' then
        begin
            perform 1 from tenancy.domain_claims as c
            where c.hostname = tenancy.normalized_host(p_host)
            for share;
            raise exception using errcode = 'TN000', message = 'release the row lock';
        exception when sqlstate 'TN000' then
            null;
        end;
    end if;
    if v_tenant_id is null then
        raise exception using
            errcode = 'TN012',
            message = format('no tenant at host %s', coalesce(quote_literal(tenancy.token_excerpt(p_host, 100)), 'NULL')),
            hint = 'The host is unknown, reserved, an IP address, a custom domain not verified, or its tenant '
                'is not active: answer 404.';
    end if;
    return query select a.tenant_id, a.user_id, a.role from tenancy.apply_token(p_token, p_host, v_tenant_id) as a;
end
$$;

comment on function tenancy.authenticate(text, text) is
'For tenancy_app: authenticate(p_token) with the tenant taken from a raw Host header '
'(tenancy.resolve_tenant: TN010 when malformed, TN012 when no active tenant is there); the '
'token''s tenant_id claim is optional and, when present, must name that tenant (TN004). The '
'user must be a member (TN003); everything else as authenticate(p_token). Under REPEATABLE READ '
'or SERIALIZABLE, 40001 when the host''s domain changed after the snapshot.';

revoke all on function tenancy.authenticate(text, text) from public;
grant execute on function tenancy.authenticate(text, text) to tenancy_app;
