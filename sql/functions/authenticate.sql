-- tenancy.authenticate: verify a JWT and set tenant, user and role for the rest of the transaction.

create or replace function tenancy.authenticate(p_token text)
returns table (tenant_id uuid, user_id uuid, role text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_claims jsonb := tenancy.verify_jwt(p_token);
    v_tenant_id uuid;
    v_user_id uuid;
    v_role text;
    v_status text;
begin
    begin
        v_user_id := (v_claims ->> 'sub')::uuid;
        v_tenant_id := (v_claims ->> 'tenant_id')::uuid;
    exception when invalid_text_representation then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token claims sub %s and tenant_id %s must be UUIDs',
                coalesce(v_claims -> 'sub', '"missing"'::jsonb),
                coalesce(v_claims -> 'tenant_id', '"missing"'::jsonb)
            );
    end;
    if v_user_id is null or v_tenant_id is null then
        raise exception using
            errcode = 'TN004',
            message = format(
                'token claims sub %s and tenant_id %s are required',
                coalesce(v_claims -> 'sub', '"missing"'::jsonb),
                coalesce(v_claims -> 'tenant_id', '"missing"'::jsonb)
            );
    end if;
    -- Leftovers of an earlier borrower (TN008 unless allowed); the common clean case costs one
    -- catalog function and a look at the session's cursors and SQL-level prepared statements.
    if (pg_my_temp_schema() <> 0 and exists (
        select 1 from pg_depend as d
        where d.refclassid = 'pg_namespace'::regclass and d.refobjid = pg_my_temp_schema()
    )) or exists (select 1 from pg_cursors as c where c.is_holdable)
    or exists (select 1 from pg_prepared_statements as p where p.from_sql) then
        perform tenancy.require_clean_session();
    end if;
    -- Tenant status and membership as committed now (the locking variant under REPEATABLE READ
    -- and SERIALIZABLE).
    if current_setting('transaction_isolation') = 'read committed' then
        select t.status, m.role into v_status, v_role
        from tenancy.tenants as t
        left join tenancy.memberships as m on m.tenant_id = t.id and m.user_id = v_user_id
        where t.id = v_tenant_id;
    else
        select c.status, c.role into v_status, v_role
        from tenancy.context_membership(v_tenant_id, v_user_id) as c;
    end if;
    if v_status is distinct from 'active' then
        perform tenancy.require_active_tenant(v_tenant_id);  -- raises P0002 or TN002
    end if;
    if v_role is null then
        raise exception using
            errcode = 'TN003',
            message = format('user %s is not a member of tenant %s', v_user_id, v_tenant_id);
    end if;
    perform tenancy.establish_context(v_tenant_id, v_user_id, v_role);
    return query select v_tenant_id, v_user_id, v_role;
end
$$;

comment on function tenancy.authenticate(text) is
'For tenancy_app: verifies an HS256 JWT (signature, exp, nbf, iss/aud when configured), takes '
'the user from sub and the tenant from the tenant_id claim, requires an active tenant and a '
'membership (as committed now: 40001 under REPEATABLE READ when they changed after the snapshot) '
'and a clean session (TN008), and sets tenant, user and role for the rest of the transaction.';

revoke all on function tenancy.authenticate(text) from public;
grant execute on function tenancy.authenticate(text) to tenancy_app;
