-- tenancy.base64url_decode: decode unpadded base64url (RFC 4648 section 5), as used by JWTs.
-- No SET clause so that the planner inlines it; every name is schema-qualified instead.

create or replace function tenancy.base64url_decode(p_value text)
returns bytea
language sql
immutable
strict
parallel safe
as $$
    -- replace() rather than translate(): several times faster on token-sized strings.
    select pg_catalog.decode(
        pg_catalog.replace(pg_catalog.replace(p_value, '-', '+'), '_', '/')
        operator(pg_catalog.||) pg_catalog.repeat(
            '=',
            -- OPERATOR() syntax has no precedence of its own: every step is parenthesised.
            (4 operator(pg_catalog.-) (pg_catalog.length(p_value) operator(pg_catalog.%) 4))
            operator(pg_catalog.%) 4
        ),
        'base64'
    )
$$;

comment on function tenancy.base64url_decode(text) is
'pgtenancy internal: base64url without padding to bytea; raises 22023 on invalid input.';

revoke all on function tenancy.base64url_decode(text) from public;
