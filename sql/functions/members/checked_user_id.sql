-- tenancy.checked_user_id: a user id given to a pgtenancy function, checked against tenancy.user_id.

-- One message for every function taking a user id: 22023 naming the value, rather than the
-- domain's check violation, which does not.
create or replace function tenancy.checked_user_id(p_user_id text)
returns tenancy.user_id
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_user_id is null then
        raise exception using errcode = '22023', message = 'user id is NULL';
    end if;
    return p_user_id::tenancy.user_id;
exception when check_violation then
    raise exception using
        errcode = '22023',
        message = format('invalid user id %L: 1 to 255 characters, no control characters', p_user_id);
end
$$;

comment on function tenancy.checked_user_id(text) is
'pgtenancy internal: p_user_id as a tenancy.user_id (1 to 255 characters, no control '
'characters); 22023 naming the value otherwise, and for NULL.';

revoke all on function tenancy.checked_user_id(text) from public;
