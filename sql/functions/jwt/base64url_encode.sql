-- tenancy.base64url_encode: encode bytea as unpadded base64url (RFC 4648 section 5).

create or replace function tenancy.base64url_encode(p_value bytea)
returns text
language sql
immutable
strict
parallel safe
as $$
    select pg_catalog.rtrim(
        pg_catalog.replace(
            pg_catalog.replace(pg_catalog.replace(pg_catalog.encode(p_value, 'base64'), E'\n', ''), '+', '-'),
            '/',
            '_'
        ),
        '='
    )
$$;

comment on function tenancy.base64url_encode(bytea) is
'pgtenancy internal: bytea to base64url without padding.';

revoke all on function tenancy.base64url_encode(bytea) from public;
