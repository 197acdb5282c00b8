-- tenancy.token_subject: the user a token speaks for, once verified for one tenant; no membership needed.

create or replace function tenancy.token_subject(p_token text, p_tenant_id uuid)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_claims jsonb := tenancy.verify_jwt(p_token);
    v_user_id tenancy.user_id;
begin
    -- Until tenant-owned issuers exist every trusted token speaks for any tenant.
    perform p_tenant_id;
    begin
        if jsonb_typeof(v_claims -> 'sub') is distinct from 'string' then
            raise exception using errcode = '23514';
        end if;
        v_user_id := v_claims ->> 'sub';
    exception when check_violation then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token claim sub %s must be a string of 1 to 255 characters without control characters',
                tenancy.token_excerpt(coalesce(v_claims -> 'sub', '"missing"'::jsonb)::text, 300)
            );
    end;
    return v_user_id;
end
$$;

comment on function tenancy.token_subject(text, uuid) is
'pgtenancy internal: verifies p_token as authenticate does for tenant p_tenant_id (signature, '
'claims, issuer trusted for that tenant) and returns its subject; TN004 naming the failed check. '
'Membership is not required (invitations are accepted by users who are not members yet).';

revoke all on function tenancy.token_subject(text, uuid) from public;
