-- tenancy.base64url_decode: decode unpadded base64url (RFC 4648 section 5), as used by JWTs.

create or replace function tenancy.base64url_decode(p_value text)
returns bytea
language sql
immutable
strict
parallel safe
set search_path = pg_catalog, pg_temp
as $$
    select decode(
        rpad(
            translate(p_value, '-_', '+/'),
            length(p_value) + (4 - length(p_value) % 4) % 4,
            '='
        ),
        'base64'
    )
$$;

comment on function tenancy.base64url_decode(text) is
'pgtenancy internal: base64url without padding to bytea; raises 22023 on invalid input.';

revoke all on function tenancy.base64url_decode(text) from public;
