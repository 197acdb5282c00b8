-- tenancy.configure_jwt_limits: set or remove the maximum lifetime of the tokens authenticate accepts.

create or replace function tenancy.configure_jwt_limits(p_max_lifetime interval)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_max_lifetime <= interval '0' then
        raise exception using
            errcode = '22023',
            message = format('maximum token lifetime must be positive or NULL, got %s', p_max_lifetime);
    end if;
    update tenancy.jwt_config as c
    set max_lifetime = p_max_lifetime, updated_at = now()
    where c.singleton;
    if not found then
        raise exception using
            errcode = '55000',
            message = 'JWT verification is not configured',
            hint = 'Call tenancy.configure_jwt(secret) first.';
    end if;
    -- HS256 tokens verified under the old settings are verified again under the new ones.
    perform tenancy.forget_verified_tokens(null, null);
end
$$;

comment on function tenancy.configure_jwt_limits(interval) is
'For tenancy_admin: tokens whose exp lies more than p_max_lifetime after now, or after their iat, '
'are refused by tenancy.authenticate() (TN004); NULL removes the limit. tenancy.configure_jwt() '
'keeps it.';

revoke all on function tenancy.configure_jwt_limits(interval) from public;
grant execute on function tenancy.configure_jwt_limits(interval) to tenancy_admin;
