-- tenancy.remove_member: an owner or admin removes a user from the current tenant.

create or replace function tenancy.remove_member(p_user_id text)
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
begin
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
    if v_caller.role = 'admin' and v_current = 'owner' then
        raise exception using
            errcode = '42501',
            message = format('an admin cannot remove owner %L of tenant %s', p_user_id, v_caller.tenant_id);
    end if;
    perform tenancy.require_another_owner(v_caller.tenant_id, v_user, v_caller.user_id);
    delete from tenancy.memberships as m
    where m.tenant_id = v_caller.tenant_id and m.user_id = v_user;
end
$$;

comment on function tenancy.remove_member(text) is
'Owners and admins of the current tenant remove a member (themselves included). Admins cannot '
'remove owners; the last owner cannot be removed.';

revoke all on function tenancy.remove_member(text) from public;
grant execute on function tenancy.remove_member(text) to tenancy_app;
