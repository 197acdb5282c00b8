-- tenancy.validate_member_role: raise 22023 unless the text is a label of tenancy.member_role.

-- Callers take roles as text so that a bad one gets this 22023 naming it, not the cast's 22P02;
-- the roles themselves are read from the type.
create or replace function tenancy.validate_member_role(p_role text)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_roles text[] := enum_range(null::tenancy.member_role)::text [];
begin
    if p_role is null or not p_role = any(v_roles) then
        raise exception using
            errcode = '22023',
            message = format('invalid member role %L', p_role),
            hint = format(
                'Roles are %s and %s.',
                array_to_string(v_roles[1:cardinality(v_roles) - 1], ', '),
                v_roles[cardinality(v_roles)]
            );
    end if;
end
$$;

comment on function tenancy.validate_member_role(text) is
'pgtenancy internal: 22023 unless p_role is one of tenancy.member_role (owner, admin, member, '
'viewer).';

revoke all on function tenancy.validate_member_role(text) from public;
