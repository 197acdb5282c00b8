-- JWT strictness: one spelling per token, no crit, NumericDates in range, and the optional
-- maximum token lifetime set with tenancy.configure_jwt_limits (TN004, 22023, 55000).
-- Fixtures: the superuser signs test tokens with pgtenancy's own base64url and HMAC functions
-- (internal, not executable by any pgtenancy role) and removes any JWT configuration at the
-- start; everything else runs as the real roles.

begin;
select plan(27);

delete from tenancy.jwt_config;

\set secret 'pgtap-jwt-strict-secret-0123456789abcdefghijklmnopqrstuvwxyz'

-- signed(header, claims): header.claims.signature, signed over the parts exactly as given.
create function pg_temp.signed(p_header text, p_claims text)
returns text
language sql
as $$
    select p_header || '.' || p_claims || '.' || tenancy.base64url_encode(
        tenancy.hmac_sha256(
            convert_to(p_header || '.' || p_claims, 'UTF8'),
            convert_to('pgtap-jwt-strict-secret-0123456789abcdefghijklmnopqrstuvwxyz', 'UTF8')
        )
    )
$$;

\ir setup/helpers.psql

select
    gen_random_uuid() as owner_a,
    extract(epoch from now())::bigint as now_s
\gset

set local role tenancy_admin;
select tenancy.create_tenant('strict-a', 'Strict A', :'owner_a') as tenant_a \gset
reset role;

-- The standard header and claims, as JSON text (so that numbers are written as given).
select
    '{"alg":"HS256","typ":"JWT"}' as header,
    format(
        '{"sub":"%s","tenant_id":"%s","iat":%s,"exp":%s',
        :'owner_a', :'tenant_a', :now_s, :now_s + 300
    ) as claims_open,
    format('{"sub":"%s","tenant_id":"%s","iat":%s', :'owner_a', :'tenant_a', :now_s) as claims_no_exp
\gset

select
    pg_temp.signed(pg_temp.b64(:'header'), pg_temp.b64(:'claims_open' || '}')) as t_good,
    pg_temp.signed(pg_temp.b64(:'header'), pg_temp.b64(format(
        '{"sub":"%s","tenant_id":"%s","iat":%s,"exp":%s}', :'owner_a', :'tenant_a', :now_s, :now_s + 3600
    ))) as t_hour,
    pg_temp.signed(
        pg_temp.b64('{"alg":"HS256","typ":"JWT","crit":["exp"]}'), pg_temp.b64(:'claims_open' || '}')
    ) as t_crit,
    pg_temp.signed(pg_temp.b64(:'header'), pg_temp.b64(:'claims_no_exp' || ',"exp":-1e300}')) as t_exp_negative,
    pg_temp.signed(pg_temp.b64(:'header'), pg_temp.b64(:'claims_no_exp' || ',"exp":1e400}')) as t_exp_huge,
    pg_temp.signed(pg_temp.b64(:'header'), pg_temp.b64(:'claims_open' || ',"nbf":1e400}')) as t_nbf_huge,
    -- Without iat: only exp - now counts.
    pg_temp.signed(pg_temp.b64(:'header'), pg_temp.b64(format(
        '{"sub":"%s","tenant_id":"%s","exp":%s}', :'owner_a', :'tenant_a', :now_s + 3600
    ))) as t_hour_no_iat
\gset

-- base64url_decode --------------------------------------------------------------------------------

-- 1-4: canonical input decodes; a set unused bit gives NULL; other characters raise 22023.
select is(tenancy.base64url_decode('QUI'), '\x4142'::bytea, 'base64url_decode decodes canonical input');
select is(tenancy.base64url_decode('QUJ'), null, 'a last character with a non-zero unused bit gives NULL');
select is(tenancy.base64url_decode(''), '\x'::bytea, 'the empty string decodes to no bytes');
select throws_ok(
    $$select tenancy.base64url_decode('QU!')$$,
    '22023',
    'invalid symbol "!" found while decoding base64 sequence',
    'a character outside the alphabet raises 22023'
);

-- configure_jwt_limits: grants and prerequisites ------------------------------------------------

-- 5-8: only tenancy_admin may call it.
select
    function_privs_are(
        'tenancy', 'configure_jwt_limits', array['interval'], r.role,
        case when r.role = 'tenancy_admin' then array['EXECUTE'] else array[]::text[] end,
        format(
            '%s %s execute tenancy.configure_jwt_limits',
            r.role,
            case when r.role = 'tenancy_admin' then 'may' else 'may not' end
        )
    )
from (values ('tenancy_app'), ('tenancy_service'), ('tenancy_admin'), ('tenancy_auditor')) as r (role)
order by r.role;

set local role tenancy_admin;
-- 9: before configure_jwt there is nothing to limit: 55000.
select throws_ok(
    $$select tenancy.configure_jwt_limits('15 minutes')$$,
    '55000',
    'JWT verification is not configured',
    'configure_jwt_limits before configure_jwt is 55000'
);
select tenancy.configure_jwt(:'secret') \gset
-- 10-11: a lifetime must be positive: 22023.
select throws_ok(
    $$select tenancy.configure_jwt_limits('0 seconds')$$,
    '22023',
    'maximum token lifetime must be positive or NULL, got 00:00:00',
    'a zero maximum lifetime is 22023'
);
select throws_ok(
    $$select tenancy.configure_jwt_limits('-1 hour')$$,
    '22023',
    'maximum token lifetime must be positive or NULL, got -01:00:00',
    'a negative maximum lifetime is 22023'
);

-- Strict form and claims (no lifetime limit yet) ------------------------------------------------

set local role tenancy_app;
-- 12: the canonical token authenticates.
select results_eq(
    format('select tenant_id from tenancy.authenticate(%L)', :'t_good'),
    format('values (%L::uuid)', :'tenant_a'),
    'a canonical token authenticates'
);
select tenancy.clear_context() \gset
-- 13: the same token with '=' after its signature: TN004.
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_good' || '='),
    'TN004',
    format(
        'malformed token %L: only unpadded base64url is accepted (no =, +, / or whitespace)',
        left(:'t_good', 24) || '...'
    ),
    'a padded signature is TN004'
);
-- 14: the same token with an unused bit of its signature set: TN004.
select throws_ok(
    format(
        'select tenancy.authenticate(%L)',
        left(:'t_good', -1) || translate(right(:'t_good', 1), 'AEIMQUYcgkosw048', 'BFJNRVZdhlptx159')
    ),
    'TN004',
    format('malformed token %L: the last character of the signature has non-zero unused bits', left(:'t_good', 24) || '...'),
    'a signature with a non-zero unused bit is TN004'
);
-- 15: a crit header: TN004.
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_crit'),
    'TN004',
    'token header lists critical extensions ["exp"]; none is understood',
    'a token with a crit header is TN004'
);
-- 16-18: hostile NumericDates: TN004 naming the claim and value (not 22008 or 22003).
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_exp_negative'),
    'TN004',
    'token exp claim -1.000e+300 is out of range: a NumericDate from 0 to 253402300799 (year 9999) is required',
    'exp -1e300 is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_exp_huge'),
    'TN004',
    'token exp claim 1.000e+400 is out of range: a NumericDate from 0 to 253402300799 (year 9999) is required',
    'exp 1e400 is TN004'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_nbf_huge'),
    'TN004',
    'token nbf claim 1.000e+400 is out of range: a NumericDate from 0 to 253402300799 (year 9999) is required',
    'nbf 1e400 is TN004'
);
-- 19: without a limit, a token valid for an hour is accepted.
select lives_ok(format('select tenancy.authenticate(%L)', :'t_hour'), 'with no limit, an hour-long token is accepted');
select tenancy.clear_context() \gset

-- Maximum lifetime ------------------------------------------------------------------------------

set local role tenancy_admin;
select tenancy.configure_jwt_limits('15 minutes') \gset
reset role;
-- 20: stored.
select is(
    (select max_lifetime from tenancy.jwt_config), '15 minutes'::interval, 'configure_jwt_limits stored the lifetime'
);

set local role tenancy_app;
-- 21-22: an hour-long token is refused, with or without iat.
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_hour'),
    'TN004',
    format('token lifetime exceeds the maximum of 00:15:00 (iat %s, exp %s)', :now_s, :now_s + 3600),
    'a token issued for an hour is TN004 under a 15-minute maximum'
);
select throws_ok(
    format('select tenancy.authenticate(%L)', :'t_hour_no_iat'),
    'TN004',
    format('token lifetime exceeds the maximum of 00:15:00 (iat missing, exp %s)', :now_s + 3600),
    'a token without iat expiring in an hour is TN004 under a 15-minute maximum'
);
-- 23: a five-minute token is still accepted.
select results_eq(
    format('select tenant_id from tenancy.authenticate(%L)', :'t_good'),
    format('values (%L::uuid)', :'tenant_a'),
    'a token within the maximum lifetime authenticates'
);
select tenancy.clear_context() \gset

-- 24: configure_jwt (a rotated secret) keeps the limit.
set local role tenancy_admin;
select tenancy.configure_jwt(:'secret', null, null) \gset
reset role;
select is(
    (select max_lifetime from tenancy.jwt_config), '15 minutes'::interval, 'configure_jwt keeps the maximum lifetime'
);

-- 25-26: NULL removes the limit; the hour-long token is accepted again.
set local role tenancy_admin;
select lives_ok($$select tenancy.configure_jwt_limits(null)$$, 'tenancy_admin removes the limit with NULL');
set local role tenancy_app;
select lives_ok(format('select tenancy.authenticate(%L)', :'t_hour'), 'without the limit, an hour-long token is accepted');

-- 27: tenancy_app cannot change the limit: 42501.
select throws_ok(
    $$select tenancy.configure_jwt_limits(null)$$,
    '42501',
    'permission denied for function configure_jwt_limits',
    'tenancy_app cannot call configure_jwt_limits'
);

select * from finish();
rollback;
