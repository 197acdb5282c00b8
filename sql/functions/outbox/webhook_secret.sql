-- tenancy.webhook_secret: a Standard Webhooks signing secret: the one given, checked, or a new one.

create or replace function tenancy.webhook_secret(p_secret text)
returns text
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_bytes integer;
begin
    if p_secret is null then
        return 'whsec_' || encode(tenancy.base64url_decode(tenancy.random_token('')), 'base64');
    end if;
    if p_secret ~ '^whsec_[A-Za-z0-9+/]+={0,2}$' and (length(p_secret) - 6) % 4 = 0 then
        v_bytes := length(decode(substr(p_secret, 7), 'base64'));
    end if;
    if v_bytes is null or v_bytes not between 24 and 64 then
        raise exception using
            errcode = '22023',
            message = format('signing secret %s is not whsec_ and the base64 of 24 to 64 bytes%s',
                quote_literal(left(p_secret, 10) || '…'),
                case when v_bytes is not null then format(' (it holds %s bytes)', v_bytes) else '' end);
    end if;
    return p_secret;
end
$$;

comment on function tenancy.webhook_secret(text) is
'pgtenancy internal: p_secret when it is whsec_ and the base64 of 24 to 64 bytes (22023 '
'otherwise, naming its first characters only); a new whsec_ secret of 32 random bytes for NULL.';

revoke all on function tenancy.webhook_secret(text) from public;
