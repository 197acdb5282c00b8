-- tenancy.context_checked: the verified context value of this transaction, or NULL.

-- The context value is 'v1|tenant|user|role|epoch|nonce', set with SET LOCAL by
-- tenancy.establish_context, which also stores its fingerprint (SHA-256 over the value and the
-- transaction start time) with setval() on an unlogged sequence. currval() of that sequence is
-- private to the session and only tenancy_owner may change it, so a value written by
-- set_config() with another tenant does not match, a value replayed in a later transaction
-- does not match, and a value made before a tenant or membership change (epoch) is
-- revalidated against the tables.
-- PL/pgSQL rather than inlined SQL: its expressions are compiled once per transaction, not
-- once per statement, which is what a policy evaluated once per statement pays for. It runs
-- as the caller and has no SET clause, so every name is schema-qualified.
create or replace function tenancy.context_checked(p_roles text[])
returns text
language plpgsql
stable
parallel restricted
as $$
declare
    v_context text := pg_catalog.current_setting('tenancy.context', true);
    v_role text;
    v_fingerprint bytea;
begin
    if v_context is null or v_context operator(pg_catalog.!~~) 'v1|%' then
        return null;
    end if;
    begin
        v_fingerprint := pg_catalog.int8send(
            pg_catalog.currval('tenancy.context_fingerprint'::pg_catalog.regclass)
        );
    exception when object_not_in_prerequisite_state then
        -- currval() is undefined: this session never had a context, so the value was written
        -- by hand. Invalid like any other forgery: no rows, no error.
        return null;
    end;
    v_role := pg_catalog.split_part(v_context, '|', 4);
    if v_fingerprint operator(pg_catalog.=) tenancy.context_fingerprint_of(v_context)
        and (
            p_roles is null
            or v_role operator(pg_catalog.=) 'service'
            or v_role operator(pg_catalog.=) any(p_roles)
        )
        and (
            pg_catalog.split_part(v_context, '|', 5) operator(pg_catalog.=)
            pg_catalog.pg_sequence_last_value('tenancy.context_epoch'::pg_catalog.regclass)::pg_catalog.text
            or tenancy.context_revalidate(v_context)
        ) then
        return v_context;
    end if;
    return null;
end
$$;

comment on function tenancy.context_checked(text[]) is
'pgtenancy internal: the context value when it was set by pgtenancy in this transaction, is '
'still valid, and its role is one of p_roles (NULL: any role); NULL otherwise.';

revoke all on function tenancy.context_checked(text[]) from public;
grant execute on function tenancy.context_checked(text[])
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
