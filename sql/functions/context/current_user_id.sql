-- tenancy.current_user_id: the user of this transaction's valid context, or NULL.

-- The user is not part of the context key (it is read far less often than the tenant): it is
-- bound by the fingerprint, SHA-256 over the whole context value and the transaction start time,
-- which tenancy.establish_context stores with setval() on tenancy.context_fingerprint.
-- Runs as the caller: every name is schema-qualified; no exception block.
create or replace function tenancy.current_user_id()
returns text
language plpgsql
stable
parallel restricted
as $$
declare
    v_value pg_catalog.text;
    v_user pg_catalog.text;
begin
    if tenancy.context_tenant_id(null::pg_catalog.text []) is null then
        return null;
    end if;
    v_value := pg_catalog.current_setting('tenancy.context', true);
    if pg_catalog.int8send(pg_catalog.currval('tenancy.context_fingerprint'::pg_catalog.regclass))
        operator(pg_catalog.<>) tenancy.context_fingerprint_of(v_value) then
        return null;
    end if;
    -- Empty for a service context; an API key's id behind chr(30), which no user id holds
    -- (tenancy.user_id forbids control characters), for a context set with an API key.
    v_user := tenancy.context_value_part(v_value, 'user');
    if v_user operator(pg_catalog.=) '' or pg_catalog.starts_with(v_user, pg_catalog.chr(30)) then
        return null;
    end if;
    return v_user;
end
$$;

comment on function tenancy.current_user_id() is
'The current user id, text: the JWT subject verbatim, or the user given to set_context; NULL '
'for a service context without a user, a context set with an API key '
'(tenancy.current_api_key_id), or when there is no valid context.';

revoke all on function tenancy.current_user_id() from public;
grant execute on function tenancy.current_user_id()
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
