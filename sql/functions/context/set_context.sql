-- tenancy.set_context: a trusted backend sets the tenant (and optionally the user) of the transaction.

-- role is text, not tenancy.member_role: without a user it is service, which is not a member
-- role; authenticate returns the same columns.
create or replace function tenancy.set_context(p_tenant_id uuid, p_user_id text default null)
returns table (tenant_id uuid, user_id text, role text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_role text := 'service';
    v_status text;
    v_member_role text;
    v_key text;
begin
    if p_user_id is not null then
        perform tenancy.checked_user_id(p_user_id);  -- 22023 naming an invalid id
    end if;
    select c.status, c.role, c.key into v_status, v_member_role, v_key
    from tenancy.context_preconditions(p_tenant_id, p_user_id) as c;
    if v_status is distinct from 'active' then
        perform tenancy.require_active_tenant(p_tenant_id);  -- raises P0002 or TN002
    end if;
    if p_user_id is not null then
        if v_member_role is null then
            raise exception using
                errcode = 'TN003',
                message = format('user %L is not a member of tenant %s', p_user_id, p_tenant_id);
        end if;
        v_role := v_member_role;
    end if;
    perform tenancy.establish_context(p_tenant_id, p_user_id, v_role, v_key);
    return query select p_tenant_id, p_user_id, v_role;
end
$$;

comment on function tenancy.set_context(uuid, text) is
'For tenancy_service: sets the tenant (and user, who must be a member) for '
'the rest of the transaction. Without a user the role is service, which every generated '
'policy admits. Returns tenant_id, user_id, role.';

-- Not for tenancy_admin (granted to it before support access existed): an operator reads a
-- tenant's rows through tenancy.begin_support_access, audited, read-only and time-limited.
revoke all on function tenancy.set_context(uuid, text) from public, tenancy_admin;
grant execute on function tenancy.set_context(uuid, text) to tenancy_service;
