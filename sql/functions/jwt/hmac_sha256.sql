-- tenancy.hmac_sha256: HMAC-SHA256 through pgcrypto, wherever pgcrypto is installed.
-- No SET clause so that the planner inlines it; the pgcrypto schema is spelled out instead.

do $hmac$
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
    execute pg_catalog.format(
        $ddl$
        create or replace function tenancy.hmac_sha256(p_data bytea, p_key bytea)
        returns bytea
        language sql
        immutable
        strict
        parallel safe
        as 'select %I.hmac(p_data, p_key, ''sha256''::pg_catalog.text)'
        $ddl$,
        v_schema
    );
end
$hmac$;

comment on function tenancy.hmac_sha256(bytea, bytea) is
'pgtenancy internal: HMAC-SHA256 of p_data under p_key (pgcrypto).';

revoke all on function tenancy.hmac_sha256(bytea, bytea) from public;
