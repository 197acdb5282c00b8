-- tenancy.add_member: an owner or admin adds a user to the current tenant.

create or replace function tenancy.add_member(p_user_id text, p_role text)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_caller record := tenancy.require_member_manager();
    v_user tenancy.user_id;
    v_existing tenancy.member_role;
    v_role tenancy.member_role;
begin
    perform tenancy.validate_member_role(p_role);
    v_role := p_role::tenancy.member_role;
    v_user := tenancy.checked_user_id(p_user_id);
    if v_role = 'owner' and v_caller.role = 'admin' then
        raise exception using
            errcode = '42501',
            message = format('an admin cannot make user %L an owner of tenant %s', p_user_id, v_caller.tenant_id);
    end if;
    -- Locked: under REPEATABLE READ a membership removed after the snapshot raises 40001 here
    -- instead of being reported as present (see tenancy.require_member_manager).
    select m.role into v_existing
    from tenancy.memberships as m
    where m.tenant_id = v_caller.tenant_id and m.user_id = v_user
    for share;
    if found then
        raise exception using
            errcode = '23505',
            message = format(
                'user %L is already a member of tenant %s (role %s)', p_user_id, v_caller.tenant_id, v_existing
            ),
            hint = 'Use tenancy.set_member_role() to change a role.';
    end if;
    insert into tenancy.memberships (tenant_id, user_id, role)
    values (v_caller.tenant_id, v_user, v_role);
end
$$;

comment on function tenancy.add_member(text, text) is
'Owners and admins of the current tenant add a user with a role (one of tenancy.member_role: '
'owner, admin, member, viewer). An admin cannot add an owner.';

revoke all on function tenancy.add_member(text, text) from public;
grant execute on function tenancy.add_member(text, text) to tenancy_app;
