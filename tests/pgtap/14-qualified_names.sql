-- Functions that run without a SET search_path resolve nothing through the caller's: what
-- scripts/pgspot.sh finds in sql/ (e.g. PS009, the implicit = of a simple CASE) and fixes there.
-- Runs as the superuser: creating an operator in a schema of its own stands in for any caller
-- who may create objects in a schema it puts before pg_catalog (rolled back).

begin;
select plan(4);

create schema shadow;
create function shadow.loud_int4eq(integer, integer)
returns boolean
language plpgsql
as $$
begin
    raise exception 'shadow.= called';
end
$$;
create operator shadow.= (leftarg = integer, rightarg = integer, function = shadow.loud_int4eq); -- noqa: PRS

-- p_sql's first column as text, run with the shadowing schema first in search_path, or the
-- error it raised.
create function pg_temp.shadowed(p_sql text)
returns text
language plpgsql
as $$
declare
    v_path text := current_setting('search_path');
    v_result text;
begin
    perform set_config('search_path', 'shadow, pg_catalog, public', true);
    begin
        execute p_sql into v_result;
    exception when others then
        v_result := 'error: ' || sqlerrm;
    end;
    perform set_config('search_path', v_path, true);
    return v_result;
end
$$;

-- The shadowing operator is live: an unqualified integer = resolves to it.
select is(
    pg_temp.shadowed('select (1 = 1)::text'),
    'error: shadow.= called',
    'the shadowing = is picked by an unqualified comparison of integers'
);

-- base64url_decode (inlined into its callers, so without a SET clause): every length mod 4.
select is(
    pg_temp.shadowed($$select encode(tenancy.base64url_decode('QUI'), 'hex')$$),
    '4142',
    'base64url_decode ignores a shadowing = (length 3 mod 4)'
);
select is(
    pg_temp.shadowed($$select encode(tenancy.base64url_decode('QQ'), 'hex')$$),
    '41',
    'base64url_decode ignores a shadowing = (length 2 mod 4)'
);
select is(
    pg_temp.shadowed($$select encode(tenancy.base64url_decode('QUJD'), 'hex')$$),
    '414243',
    'base64url_decode ignores a shadowing = (length 0 mod 4)'
);

select * from finish();
rollback;
