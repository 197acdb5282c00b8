-- tenancy.current_api_key_id: the API key of this transaction's valid context, or NULL.

-- tenancy.authenticate_api_key writes the key's id in the context's user slot behind chr(30),
-- a character no user id holds (tenancy.user_id forbids control characters), so a key is never
-- taken for a user and a user never for a key. Like the user, the id is bound by the
-- fingerprint over the whole context value (tenancy.context_user_slot): a value written by hand
-- naming another key gives NULL. Runs as the caller: every name is schema-qualified; no
-- exception block.
create or replace function tenancy.current_api_key_id()
returns uuid
language plpgsql
stable
parallel restricted
as $$
declare
    v_user pg_catalog.text := tenancy.context_user_slot();
begin
    if not pg_catalog.starts_with(v_user, pg_catalog.chr(30)) then
        return null;
    end if;
    return pg_catalog.substr(v_user, 2)::pg_catalog.uuid;
end
$$;

comment on function tenancy.current_api_key_id() is
'The id of the API key that set the current context (tenancy.authenticate_api_key); NULL for '
'a context set otherwise or when there is no valid context.';

revoke all on function tenancy.current_api_key_id() from public;
grant execute on function tenancy.current_api_key_id()
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
