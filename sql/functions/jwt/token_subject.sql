-- tenancy.token_subject: the user a token speaks for, once verified for one tenant; no membership needed.

create or replace function tenancy.token_subject(p_token text, p_tenant_id uuid)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_subject text;
    v_issuer_tenant_id uuid;
begin
    -- Verified as for the tenant at a host: the tenant's own issuer or a platform-wide one.
    select v.subject, v.issuer_tenant_id into v_subject, v_issuer_tenant_id
    from tenancy.verified_token(p_token, null, p_tenant_id) as v;
    if v_issuer_tenant_id is distinct from p_tenant_id and v_issuer_tenant_id is not null then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token of the identity provider of tenant %s cannot speak for a user of tenant %s',
                v_issuer_tenant_id, p_tenant_id
            );
    end if;
    return v_subject;
end
$$;

comment on function tenancy.token_subject(text, uuid) is
'pgtenancy internal: verifies p_token as authenticate does for tenant p_tenant_id (signature, '
'claims, an issuer trusted for that tenant; the cache, lockouts) and returns its subject; TN004 '
'naming the failed check. Membership is not required (invitations are accepted by users who are '
'not members yet).';

revoke all on function tenancy.token_subject(text, uuid) from public;
