-- tenancy.checked_endpoint_url: a connector endpoint URL if it is https (or http to a loopback host); 22023 otherwise.

create or replace function tenancy.checked_endpoint_url(p_url text)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    -- A host is DNS labels of 1 to 63 characters and a port is 1 to 65535: an HTTP client
    -- refuses anything else, and the relay would retry it for a day.
    if p_url is null or length(p_url) > 2000
        or p_url !~ '^https://[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*\.?(:[0-9]{1,5})?(/[^[:space:][:cntrl:]]*)?$'
        and p_url !~ '^http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?(/[^[:space:][:cntrl:]]*)?$'
        or substring(p_url from '^https?://(?:[A-Za-z0-9.-]+|\[::1\]):([0-9]{1,5})(?:/|$)')::integer not between 1 and 65535 then
        -- The message shows the scheme and the host, never what follows the host (a port-like
        -- part may be a password with a / in it, a path or query may hold a secret).
        raise exception using
            errcode = '22023',
            message = format('endpoint URL %s is not an https URL (http only to localhost) without credentials, spaces or control characters, of at most 2000 characters',
                coalesce(quote_literal(tenancy.token_excerpt(regexp_replace(
                    p_url, '^[[:space:]]*([A-Za-z][A-Za-z0-9+.-]*://)?([^/?#]*@)?(\[[^]/?#@]*\]|[^/?#@:]*).*$', '\1\3/…'
                ), 100)), 'NULL'));
    end if;
    return p_url;
end
$$;

comment on function tenancy.checked_endpoint_url(text) is
'pgtenancy internal: p_url when it is https://host[:port][/path] (http:// only for localhost, '
'127.0.0.1 and [::1]), the host DNS labels of 1 to 63 characters, the port 1 to 65535, without '
'credentials, at most 2000 characters; 22023 naming its scheme and host (never its credentials, '
'port or path, which may hold a secret, whatever the case of the scheme or the spaces before it) '
'otherwise.';

revoke all on function tenancy.checked_endpoint_url(text) from public;
