-- tenancy.set_member_role: an owner or admin changes another member's role.

create or replace function tenancy.set_member_role(p_user_id text, p_role text)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_caller record := tenancy.require_member_manager();
    v_user tenancy.user_id := tenancy.checked_user_id(p_user_id);
    v_current tenancy.member_role;
    v_role tenancy.member_role;
begin
    perform tenancy.validate_member_role(p_role);
    v_role := p_role::tenancy.member_role;
    if v_user = v_caller.user_id then
        raise exception using
            errcode = '42501',
            message = format('user %L cannot change their own role', p_user_id);
    end if;
    -- Locked: a row changed after this transaction's snapshot raises 40001 rather than being
    -- judged on its old role (see tenancy.require_member_manager).
    select m.role into v_current
    from tenancy.memberships as m
    where m.tenant_id = v_caller.tenant_id and m.user_id = v_user
    for update;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('user %L is not a member of tenant %s', p_user_id, v_caller.tenant_id);
    end if;
    if v_caller.role = 'admin' and 'owner' in (v_current, v_role) then
        raise exception using
            errcode = '42501',
            message = format(
                'an admin cannot change the role of user %L from %s to %s: owners are managed by owners',
                p_user_id, v_current, v_role
            );
    end if;
    if v_current = v_role then
        return;
    end if;
    perform tenancy.require_another_owner(v_caller.tenant_id, v_user, v_caller.user_id);
    update tenancy.memberships as m
    set role = v_role, updated_at = now()
    where m.tenant_id = v_caller.tenant_id and m.user_id = v_user;
end
$$;

comment on function tenancy.set_member_role(text, text) is
'Owners and admins of the current tenant change another member''s role. Nobody changes their '
'own role, admins neither grant nor revoke owner, and the last owner stays an owner.';

revoke all on function tenancy.set_member_role(text, text) from public;
grant execute on function tenancy.set_member_role(text, text) to tenancy_app;
