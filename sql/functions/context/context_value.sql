-- tenancy.context_value: the layout of the context value, which tenancy.context_value_part reads back.

-- The one definition of the value pgtenancy stores in the setting tenancy.context:
--     v3|<tenant uuid>|<role>|<length of the key>|<key><user, empty for a service context>
-- for example 'v3|9f0c…|owner|2|42auth0|5f7c'. Tenant and role come first, each free of '|',
-- so the policies' hot path splits on '|'. The tenant key and the user are text that may hold
-- '|' (and the user any printable character): the key is read by its length, and the user is
-- everything after it. establish_context writes the value with this function;
-- tenancy.context_value_part reads it for current_member_role, current_user_id and
-- context_tenant_key. The hot path, tenancy.context_tenant_id, reads the tenant and role itself
-- (see there for why), and tests/pgtap/13-one_source.sql checks that all readers agree. The tests
-- build forged values with this function too.
-- Inlinable SQL: no SET clause, every name schema-qualified.
create or replace function tenancy.context_value(
    p_tenant_id uuid, p_role text, p_key text, p_user_id text
)
returns text
language sql
immutable
parallel safe
as $$
    select 'v3|'
        operator(pg_catalog.||) p_tenant_id::pg_catalog.text
        operator(pg_catalog.||) '|'
        operator(pg_catalog.||) p_role
        operator(pg_catalog.||) '|'
        operator(pg_catalog.||) coalesce(pg_catalog.length(p_key), 0)::pg_catalog.text
        operator(pg_catalog.||) '|'
        operator(pg_catalog.||) coalesce(p_key, '')
        operator(pg_catalog.||) coalesce(p_user_id, '')
$$;

comment on function tenancy.context_value(uuid, text, text, text) is
'pgtenancy internal: the context value for a tenant, a role, the tenant''s key and a user (NULL '
'for none), ''v3|tenant|role|key length|key user''; read back with tenancy.context_value_part. '
'Holds no proof by itself: establish_context binds it to the transaction.';

revoke all on function tenancy.context_value(uuid, text, text, text) from public;
