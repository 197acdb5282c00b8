-- tenancy.normalized_host: a raw Host header as the hostname pgtenancy stores, NULL for an IP literal, TN010 when malformed.

-- Accepted and normalised: surrounding whitespace, upper case, a :port (digits, at most 65535),
-- one trailing dot. An IP literal ([v6], bare v6, v4 and every hostname whose last label is
-- all digits, which resolvers read as an IPv4 address: 127.1, 0x7f.1) is never a tenant's:
-- NULL. Anything else must be a DNS name of letters, digits and inner hyphens, labels of 1-63
-- characters, 253 characters in all; non-ASCII must arrive punycoded (xn--...). Refusals name
-- the value (cut to 100 characters) and the rule.
create or replace function tenancy.normalized_host(p_host text)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_host text;
    v_port text;
    v_colon integer;
    v_label text;
    v_reason text;
begin
    if p_host is null then
        return null;
    end if;
    v_host := btrim(p_host, E' \t\r\n');
    if length(v_host) <= 260 then
        if left(v_host, 1) = '[' then
            if v_host ~ '^\[[0-9A-Fa-f:.]+\](:[0-9]{0,5})?$' then
                return null;
            end if;
        else
            v_colon := strpos(v_host, ':');
            if v_colon > 0 then
                if v_host ~ '^[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*$' then
                    return null;  -- a bare IPv6 address
                end if;
                v_port := substr(v_host, v_colon + 1);
                v_host := left(v_host, v_colon - 1);
                if v_port !~ '^[0-9]{0,5}$' or (v_port <> '' and v_port::integer > 65535) then
                    v_reason := format('port %L is not a number from 0 to 65535', v_port);
                end if;
            end if;
            if v_reason is null then
                if right(v_host, 1) = '.' then
                    v_host := left(v_host, -1);
                end if;
                v_host := lower(v_host);
                if length(v_host) between 1 and 253
                    and v_host ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' then
                    if v_host ~ '(^|\.)[0-9]+$' then
                        return null;  -- an IPv4 address, in any of the forms resolvers accept
                    end if;
                    return v_host;
                end if;
            end if;
        end if;
    end if;
    -- Refused: say why.
    if v_reason is null then
        if v_host = '' then
            v_reason := 'it is empty';
        elsif length(v_host) > 253 then
            v_reason := format('it is %s characters long, over 253', length(v_host));
        elsif left(v_host, 1) = '[' then
            v_reason := 'a bracketed host must be an IPv6 address, optionally followed by :port';
        elsif v_host ~ '[^\x01-\x7f]' then
            v_reason := 'it holds non-ASCII characters: send internationalised names punycoded (xn--...)';
        elsif v_host ~ '[^a-z0-9.-]' then
            v_reason := format(
                'it holds %L, outside a DNS name (letters, digits, hyphens, dots)',
                substring(v_host from '[^a-z0-9.-]')
            );
        else
            foreach v_label in array string_to_array(v_host, '.') loop
                if v_label = '' then
                    v_reason := 'it has an empty label';
                elsif length(v_label) > 63 then
                    v_reason := format('its label %L is over 63 characters', tenancy.token_excerpt(v_label, 20));
                elsif v_label ~ '^-|-$' then
                    v_reason := format('its label %L starts or ends with a hyphen', v_label);
                end if;
                exit when v_reason is not null;
            end loop;
            v_reason := coalesce(v_reason, 'it is not a DNS name');
        end if;
    end if;
    raise exception using
        errcode = 'TN010',
        message = format('malformed host %L: %s', tenancy.token_excerpt(p_host, 100), v_reason),
        hint = 'A host is a DNS name (labels of 1-63 letters, digits and inner hyphens, 253 '
            'characters in all), optionally with :port; non-ASCII names arrive punycoded.';
end
$$;

comment on function tenancy.normalized_host(text) is
'pgtenancy internal: a raw Host header normalised (trimmed, lower-case, without :port and '
'trailing dot); NULL for NULL and IP literals; TN010 naming the value when it is not a DNS name.';

revoke all on function tenancy.normalized_host(text) from public;
