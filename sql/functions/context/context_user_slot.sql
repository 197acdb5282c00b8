-- tenancy.context_user_slot: the user slot of this transaction's valid context, checked against its fingerprint.

-- The user slot is not part of the context key (it is read far less often than the tenant): it
-- is bound by the fingerprint, SHA-256 over the whole context value and the transaction start
-- time, which tenancy.establish_context stores with setval() on tenancy.context_fingerprint. The
-- slot holds a user id, '' for a service context, or chr(30) and an API key's id (no user id
-- holds a control character): tenancy.current_user_id and tenancy.current_api_key_id read it
-- through here. Runs as the caller: every name is schema-qualified; no exception block.
create or replace function tenancy.context_user_slot()
returns text
language plpgsql
stable
parallel restricted
as $$
declare
    v_value pg_catalog.text;
begin
    if tenancy.context_tenant_id(null::pg_catalog.text []) is null then
        return null;
    end if;
    v_value := pg_catalog.current_setting('tenancy.context', true);
    if pg_catalog.int8send(pg_catalog.currval('tenancy.context_fingerprint'::pg_catalog.regclass))
        operator(pg_catalog.<>) tenancy.context_fingerprint_of(v_value) then
        return null;
    end if;
    return tenancy.context_value_part(v_value, 'user');
end
$$;

comment on function tenancy.context_user_slot() is
'pgtenancy internal: the user slot of the current context (a user id, empty for a service '
'context, chr(30) and a key id for an API key''s), NULL without a valid context or when the '
'value does not match its fingerprint.';

revoke all on function tenancy.context_user_slot() from public;
grant execute on function tenancy.context_user_slot()
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
