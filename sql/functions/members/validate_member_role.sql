-- tenancy.validate_member_role: raise 22023 unless the text is a membership role.

create or replace function tenancy.validate_member_role(p_role text)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_role is null or p_role not in ('owner', 'admin', 'member', 'viewer') then
        raise exception using
            errcode = '22023',
            message = format('invalid member role %L', p_role),
            hint = 'Roles are owner, admin, member and viewer.';
    end if;
end
$$;

comment on function tenancy.validate_member_role(text) is
'pgtenancy internal: 22023 unless p_role is owner, admin, member or viewer.';

revoke all on function tenancy.validate_member_role(text) from public;
