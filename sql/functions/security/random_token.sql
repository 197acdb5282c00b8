-- tenancy.random_token: a new secret: a recognisable prefix and 256 bits of randomness in base64url.

do $random_token$
declare
    v_schema text;
begin
    select n.nspname into v_schema
    from pg_catalog.pg_extension as e
    inner join pg_catalog.pg_namespace as n on e.extnamespace operator(pg_catalog.=) n.oid
    where e.extname operator(pg_catalog.=) 'pgcrypto';
    if v_schema is null then
        raise exception using
            errcode = '55000',
            message = 'pgcrypto is not installed in this database',
            hint = 'Run pgtenancy migrate as a user who may create extensions.';
    end if;
    -- pgcrypto's gen_random_bytes reads the operating system's cryptographic random source.
    execute pg_catalog.format(
        $ddl$
        create or replace function tenancy.random_token(p_prefix text)
        returns text
        language sql
        volatile
        strict
        parallel safe
        as 'select p_prefix operator(pg_catalog.||) tenancy.base64url_encode(%I.gen_random_bytes(32))'
        $ddl$,
        v_schema
    );
end
$random_token$;

comment on function tenancy.random_token(text) is
'pgtenancy internal: p_prefix followed by 32 random bytes (pgcrypto gen_random_bytes) in unpadded '
'base64url: 43 characters, 256 bits. For API keys and invitation tokens, which are stored only '
'as tenancy.secret_hash().';

revoke all on function tenancy.random_token(text) from public;
