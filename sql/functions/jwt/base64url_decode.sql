-- tenancy.base64url_decode: decode unpadded base64url (RFC 4648 section 5), refusing non-zero unused bits.
-- No SET clause so that the planner inlines it; every name is schema-qualified instead.

create or replace function tenancy.base64url_decode(p_value text)
returns bytea
language sql
stable
parallel safe
as $$
    -- Not STRICT, or the planner would not inline the CASE below; NULL gives NULL all the same.
    -- STABLE because textsend() is (it converts to the client encoding, which leaves ASCII as
    -- it is): an IMMUTABLE function calling it would not be inlined.
    -- The last character of a length of 2 (3) mod 4 carries 4 (2) unused low bits, which
    -- decode() ignores: a value with any of them set is another spelling of the same bytes (a
    -- malleable token) and gives NULL. The last byte is read through textsend(): right() and
    -- substr() count the characters of the whole string first (several times slower).
    -- Characters outside the alphabet pass this test and make decode() raise 22023.
    -- decode() also accepts '=' padding, whitespace and the '+/' alphabet: callers that need
    -- the one canonical spelling refuse those characters first (decode_token does, once for the
    -- whole token, which costs less than the same test on each part here).
    -- OPERATOR() syntax has no precedence of its own: every step is parenthesised.
    select case
        -- Searched CASEs with qualified operators: a simple CASE (CASE x WHEN 2 ...) compares with
        -- an implicit = that would be resolved through the caller's search_path. The last
        -- character is read once, for the alphabet its length calls for.
        when case
            when (pg_catalog.octet_length(p_value) operator(pg_catalog.%) 4) operator(pg_catalog.<) 2
                then true
            else
                pg_catalog.strpos(
                    case
                        when (pg_catalog.octet_length(p_value) operator(pg_catalog.%) 4) operator(pg_catalog.=) 2
                            then 'BCDEFGHIJKLMNOPRSTUVWXYZabcdefhijklmnopqrstuvxyz0123456789-_'
                        else 'BCDFGHJKLNOPRSTVWXZabdefhijlmnpqrtuvxyz1235679-_'
                    end,
                    pg_catalog.chr(
                        pg_catalog.get_byte(
                            pg_catalog.textsend(p_value), pg_catalog.octet_length(p_value) operator(pg_catalog.-) 1
                        )
                    )
                ) operator(pg_catalog.=) 0
        end
            then pg_catalog.decode(
                -- replace() rather than translate(): several times faster on token-sized strings.
                pg_catalog.replace(pg_catalog.replace(p_value, '-', '+'), '_', '/')
                operator(pg_catalog.||) pg_catalog.repeat(
                    '=',
                    (4 operator(pg_catalog.-) (pg_catalog.octet_length(p_value) operator(pg_catalog.%) 4))
                    operator(pg_catalog.%) 4
                ),
                'base64'
            )
    end
$$;

comment on function tenancy.base64url_decode(text) is
'pgtenancy internal: unpadded base64url to bytea; NULL when the last character has non-zero '
'unused bits; raises 22023 on characters outside both base64 alphabets or a length of 1 mod 4. '
'Does not refuse =, whitespace or +/: callers needing the canonical form (RFC 7515) refuse them.';

revoke all on function tenancy.base64url_decode(text) from public;
