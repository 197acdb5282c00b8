-- tenancy.apply_host_token: the body of tenancy.authenticate(p_token, p_host): resolve the host, then apply the token.

-- The host is resolved first (tenancy.resolve_tenant): a malformed host is TN010 and a host
-- without a tenant TN012, whatever the token; then the token is applied as by
-- authenticate(p_token) (tenancy.apply_token), its tenant claim optional but, when present, the
-- host's tenant. Not called by policies: the exception block (a subtransaction) is allowed here.
create or replace function tenancy.apply_host_token(p_token text, p_host text)
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

comment on function tenancy.apply_host_token(text, text) is
'pgtenancy internal: the body of tenancy.authenticate(p_token, p_host) and of '
'tenancy.try_authenticate with a host: TN010 for a malformed host, TN012 when no active tenant is '
'there, then tenancy.apply_token with the host''s tenant.';

revoke all on function tenancy.apply_host_token(text, text) from public;
