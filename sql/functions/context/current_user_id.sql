-- tenancy.current_user_id: the user of this transaction's valid context, or NULL.

-- The user slot, checked against the context's fingerprint, comes from
-- tenancy.context_user_slot. Runs as the caller: every name is schema-qualified; no exception
-- block.
create or replace function tenancy.current_user_id()
returns text
language plpgsql
stable
parallel restricted
as $$
declare
    v_user pg_catalog.text := tenancy.context_user_slot();
begin
    -- Empty for a service context; an API key's id behind chr(30), which no user id holds
    -- (tenancy.user_id forbids control characters), for a context set with an API key.
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
