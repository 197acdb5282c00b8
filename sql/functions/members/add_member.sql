-- tenancy.add_member: an owner or admin adds a user to the current tenant.

create or replace function tenancy.add_member(p_user_id uuid, p_role text)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_caller record := tenancy.require_member_manager();
    v_existing tenancy.member_role;
    v_role tenancy.member_role;
begin
    perform tenancy.validate_member_role(p_role);
    v_role := p_role::tenancy.member_role;
    if p_user_id is null then
        raise exception using errcode = '22023', message = 'p_user_id is NULL';
    end if;
    if v_role = 'owner' and v_caller.role = 'admin' then
        raise exception using
            errcode = '42501',
            message = format('an admin cannot make user %s an owner of tenant %s', p_user_id, v_caller.tenant_id);
    end if;
    -- Locked: under REPEATABLE READ a membership removed after the snapshot raises 40001 here
    -- instead of being reported as present (see tenancy.require_member_manager).
    select m.role into v_existing
    from tenancy.memberships as m
    where m.tenant_id = v_caller.tenant_id and m.user_id = p_user_id
    for share;
    if found then
        raise exception using
            errcode = '23505',
            message = format(
                'user %s is already a member of tenant %s (role %s)', p_user_id, v_caller.tenant_id, v_existing
            ),
            hint = 'Use tenancy.set_member_role() to change a role.';
    end if;
    insert into tenancy.memberships (tenant_id, user_id, role)
    values (v_caller.tenant_id, p_user_id, v_role);
end
$$;

comment on function tenancy.add_member(uuid, text) is
'Owners and admins of the current tenant add a user with a role (one of tenancy.member_role: '
'owner, admin, member, viewer). An admin cannot add an owner.';

revoke all on function tenancy.add_member(uuid, text) from public;
grant execute on function tenancy.add_member(uuid, text) to tenancy_app;
