-- tenancy.checked_email: an e-mail address given to a pgtenancy function, its domain lower-cased and checked against tenancy.email_address.

-- The rule is the domain's (sql/migrations/0017); this function gives the 22023 naming the value
-- that the domain's check violation would not. The domain part (after the last @) is lower-cased
-- (DNS names are case-insensitive); the local part is kept as given. Surrounding whitespace is
-- refused, not trimmed: an application trims what a user typed before it invites.
create or replace function tenancy.checked_email(p_email text)
returns tenancy.email_address
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_at integer;
begin
    if p_email is null then
        raise exception using errcode = '22023', message = 'e-mail address is NULL';
    end if;
    v_at := length(p_email) + 1 - strpos(reverse(p_email), '@');
    if v_at > length(p_email) then
        v_at := 0;
    end if;
    return (left(p_email, v_at) || lower(substr(p_email, v_at + 1)))::tenancy.email_address;
exception when check_violation then
    raise exception using
        errcode = '22023',
        message = format('invalid e-mail address %L', tenancy.token_excerpt(p_email, 300)),
        hint = 'An address of at most 254 characters: a local part of at most 64 letters, digits, '
        || 'inner dots and !#$%&''*+/=?^_`{|}~-, then @ and a DNS name with a dot (ASCII: '
        || 'internationalised domains punycoded).';
end
$$;

comment on function tenancy.checked_email(text) is
'pgtenancy internal: p_email as a tenancy.email_address, its domain lower-cased; 22023 naming the '
'value when it is NULL or not a plausible address.';

revoke all on function tenancy.checked_email(text) from public;
