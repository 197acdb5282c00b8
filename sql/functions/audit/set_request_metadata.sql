-- tenancy.set_request_metadata: request metadata (request id, IP, user agent …) for the audit rows of the rest of the transaction.

create or replace function tenancy.set_request_metadata(p_metadata jsonb)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_metadata is null or jsonb_typeof(p_metadata) <> 'object' then
        raise exception using
            errcode = '22023',
            message = format('request metadata must be a JSON object, got %s', coalesce(left(p_metadata::text, 100), 'NULL'));
    end if;
    if octet_length(p_metadata::text) > 8192 then
        raise exception using
            errcode = '22023',
            message = format(
                'request metadata of %s bytes is too large: at most 8192 (it is copied into every audit row)',
                octet_length(p_metadata::text)
            );
    end if;
    -- Tagged with the transaction's start (now(), in microseconds since 1970, independent of
    -- every setting): readers take the value only in the transaction that set it, so a value
    -- left in the session with set_config(…, false) (a pooled connection's next borrower) is
    -- ignored, never recorded or parsed (tenancy.request_metadata reads it).
    perform set_config(
        'tenancy.request_metadata', extract(epoch from now())::text || '|' || p_metadata::text, true
    );
end
$$;

comment on function tenancy.set_request_metadata(jsonb) is
'Sets request metadata (a JSON object of at most 8 KB: request id, IP address, user agent …) '
'that every audit row written later in this transaction carries in metadata; it ends with the '
'transaction (22023 for anything but an object, or a larger one).';

revoke all on function tenancy.set_request_metadata(jsonb) from public;
grant execute on function tenancy.set_request_metadata(jsonb)
to tenancy_app, tenancy_service, tenancy_admin;
