-- tenancy.context_value: the layout of the context value, which tenancy.context_value_part reads back.

-- The one definition of the value pgtenancy stores in the setting tenancy.context:
--     v2|<tenant uuid>|<role>|<user uuid, empty for a service context>
-- The user comes last: identity providers' subjects may contain '|', and everything after the
-- third '|' is the user. establish_context writes the value with this function;
-- tenancy.context_value_part reads it for current_member_role and current_user_id. The policies'
-- hot path, tenancy.context_tenant_id, reads the tenant and role itself (see there for why), and
-- tests/pgtap/12-one_source.sql checks that all three agree. The tests build forged values with
-- this function too.
-- Inlinable SQL: no SET clause, every name schema-qualified.
create or replace function tenancy.context_value(p_tenant_id uuid, p_role text, p_user_id uuid)
returns text
language sql
immutable
parallel safe
as $$
    select 'v2|'
        operator(pg_catalog.||) p_tenant_id::pg_catalog.text
        operator(pg_catalog.||) '|'
        operator(pg_catalog.||) p_role
        operator(pg_catalog.||) '|'
        operator(pg_catalog.||) coalesce(p_user_id::pg_catalog.text, '')
$$;

comment on function tenancy.context_value(uuid, text, uuid) is
'pgtenancy internal: the context value for a tenant, a role and a user (NULL for none), '
'''v2|tenant|role|user''; read back with tenancy.context_value_part. Holds no proof by itself: '
'establish_context binds it to the transaction.';

revoke all on function tenancy.context_value(uuid, text, uuid) from public;
