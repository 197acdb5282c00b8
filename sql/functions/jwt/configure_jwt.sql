-- tenancy.configure_jwt: set the HS256 secret and the expected issuer and audience.

create or replace function tenancy.configure_jwt(
    p_secret text, p_issuer text default null, p_audience text default null
)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_secret is null or octet_length(p_secret) < 32 then
        raise exception using
            errcode = '22023',
            message = format(
                'JWT secret must be at least 32 bytes, got %s',
                coalesce(octet_length(p_secret)::text || ' bytes', 'NULL')
            ),
            hint = 'HS256 needs a secret of 256 bits or more.';
    end if;
    if p_issuer = '' or p_audience = '' then
        raise exception using
            errcode = '22023',
            message = format(
                'JWT issuer and audience must be NULL or non-empty (issuer %L, audience %L)',
                p_issuer, p_audience
            );
    end if;
    insert into tenancy.jwt_config as c (singleton, secret, issuer, audience, updated_at)
    values (true, p_secret, p_issuer, p_audience, now())
    on conflict (singleton) do update
        set secret = excluded.secret,
            issuer = excluded.issuer,
            audience = excluded.audience,
            updated_at = excluded.updated_at;
    -- HS256 tokens verified under the old settings are verified again under the new ones.
    perform tenancy.forget_verified_tokens(null, null);
end
$$;

comment on function tenancy.configure_jwt(text, text, text) is
'For tenancy_admin: sets the HS256 secret (>= 32 bytes) that tenancy.authenticate() verifies '
'tokens with, and the iss and aud claims it requires when not NULL.';

revoke all on function tenancy.configure_jwt(text, text, text) from public;
grant execute on function tenancy.configure_jwt(text, text, text) to tenancy_admin;
