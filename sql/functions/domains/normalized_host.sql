-- tenancy.normalized_host: a raw Host header as the hostname pgtenancy stores, NULL for an IP literal, TN010 when malformed.

-- Accepted and normalised: surrounding whitespace, upper case, a :port (digits, at most 65535),
-- one trailing dot. An IP literal ([v6], bare v6, v4 and every hostname whose last label is
-- all digits, which resolvers read as an IPv4 address: 127.1, 0x7f.1) is never a tenant's:
-- NULL. Anything else must be a DNS name of letters, digits and inner hyphens, labels of 1-63
-- characters, 253 characters in all; non-ASCII must arrive punycoded (xn--...). Refusals name
-- the value (cut to 100 characters) and the rule.
-- No SET clause: resolve_tenant calls it once per request, and a SET costs every call a
-- search_path change and its restore. It resolves nothing through search_path instead: every
-- type, function and operator is schema-qualified.
create or replace function tenancy.normalized_host(p_host text)
returns text
language plpgsql
immutable
as $$
declare
    v_host pg_catalog.text;
    v_port pg_catalog.text;
    v_colon pg_catalog.int4;
    v_label pg_catalog.text;
    v_reason pg_catalog.text;
    v_last pg_catalog.text;
begin
    if p_host is null then
        return null;
    end if;
    v_host := pg_catalog.btrim(p_host, E' \t\r\n');
    -- The common case costs a few microseconds. ASCII is checked by byte count and lower-cased
    -- under collation "C" (ASCII letters only): a locale's lower() maps some non-ASCII letters
    -- to ASCII ones (the Kelvin sign to k), and a Turkish one ASCII I to a dotless i.
    if pg_catalog.length(v_host) operator(pg_catalog.<=) 260
        and pg_catalog.octet_length(v_host) operator(pg_catalog.=) pg_catalog.length(v_host) then
        if pg_catalog.left(v_host, 1) operator(pg_catalog.=) '[' then
            if v_host operator(pg_catalog.~) '^\[[0-9A-Fa-f:.]+\](:[0-9]{0,5})?$' then
                return null;
            end if;
        else
            v_colon := pg_catalog.strpos(v_host, ':');
            if v_colon operator(pg_catalog.>) 0 then
                if v_host operator(pg_catalog.~) '^[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*$' then
                    return null;  -- a bare IPv6 address
                end if;
                v_port := pg_catalog.substr(v_host, v_colon operator(pg_catalog.+) 1);
                v_host := pg_catalog.left(v_host, v_colon operator(pg_catalog.-) 1);
                if v_port operator(pg_catalog.!~) '^[0-9]{0,5}$'
                    or (
                        v_port operator(pg_catalog.<>) ''
                        and v_port::pg_catalog.int4 operator(pg_catalog.>) 65535
                    ) then
                    v_reason := pg_catalog.format('port %L is not a number from 0 to 65535', v_port);
                end if;
            end if;
            if v_reason is null then
                if pg_catalog.right(v_host, 1) operator(pg_catalog.=) '.' then
                    v_host := pg_catalog.left(v_host, -1);
                end if;
                v_host := pg_catalog.lower(v_host collate pg_catalog."C");
                -- Labels of letters, digits and inner hyphens; then the lengths (a label over
                -- 63 characters needs a host over 63).
                if pg_catalog.length(v_host) operator(pg_catalog.>=) 1
                    and pg_catalog.length(v_host) operator(pg_catalog.<=) 253
                    and v_host operator(pg_catalog.~)
                    '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$'
                    and (
                        pg_catalog.length(v_host) operator(pg_catalog.<=) 63
                        or v_host operator(pg_catalog.!~) '[^.]{64}'
                    ) then
                    v_last := pg_catalog.right(v_host, 1);
                    if v_last operator(pg_catalog.>=) '0' and v_last operator(pg_catalog.<=) '9'
                        and v_host operator(pg_catalog.~) '(^|\.)[0-9]+$' then
                        return null;  -- an IPv4 address, in any of the forms resolvers accept
                    end if;
                    return v_host;
                end if;
            end if;
        end if;
    end if;
    -- Refused: say why.
    if v_reason is null then
        if v_host operator(pg_catalog.=) '' then
            v_reason := 'it is empty';
        elsif pg_catalog.length(v_host) operator(pg_catalog.>) 253 then
            v_reason := pg_catalog.format('it is %s characters long, over 253', pg_catalog.length(v_host));
        elsif pg_catalog.left(v_host, 1) operator(pg_catalog.=) '[' then
            v_reason := 'a bracketed host must be an IPv6 address, optionally followed by :port';
        elsif pg_catalog.octet_length(v_host) operator(pg_catalog.<>) pg_catalog.length(v_host) then
            v_reason := 'it holds non-ASCII characters: send internationalised names punycoded (xn--...)';
        elsif v_host operator(pg_catalog.~) '[^a-z0-9.-]' then
            v_reason := pg_catalog.format(
                'it holds %L, outside a DNS name (letters, digits, hyphens, dots)',
                pg_catalog.substring(v_host, '[^a-z0-9.-]')
            );
        else
            foreach v_label in array pg_catalog.string_to_array(v_host, '.') loop
                if v_label operator(pg_catalog.=) '' then
                    v_reason := 'it has an empty label';
                elsif pg_catalog.length(v_label) operator(pg_catalog.>) 63 then
                    v_reason := pg_catalog.format(
                        'its label %L is over 63 characters', tenancy.token_excerpt(v_label, 20)
                    );
                elsif v_label operator(pg_catalog.~) '^-|-$' then
                    v_reason := pg_catalog.format('its label %L starts or ends with a hyphen', v_label);
                end if;
                exit when v_reason is not null;
            end loop;
            v_reason := coalesce(v_reason, 'it is not a DNS name');
        end if;
    end if;
    raise exception using
        errcode = 'TN010',
        message = pg_catalog.format(
            'malformed host %L: %s', tenancy.token_excerpt(p_host, 100), v_reason
        ),
        hint = 'A host is a DNS name (labels of 1-63 letters, digits and inner hyphens, 253 '
            'characters in all), optionally with :port; non-ASCII names arrive punycoded.';
end
$$;

comment on function tenancy.normalized_host(text) is
'pgtenancy internal: a raw Host header normalised (trimmed, lower-case, without :port and '
'trailing dot); NULL for NULL and IP literals; TN010 naming the value when it is not a DNS name.';

revoke all on function tenancy.normalized_host(text) from public;
