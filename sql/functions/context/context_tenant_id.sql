-- tenancy.context_tenant_id: the policy key, the current tenant when the member role is allowed.

-- The context value (layout: tenancy.context_value) is set with SET LOCAL by
-- tenancy.establish_context, which also stores tenancy.context_key_of(tenant, role) with
-- setval() on the unlogged sequence tenancy.context_key. currval() of that sequence is private
-- to the session and only tenancy_owner may change it, so a value written by set_config() with
-- another tenant or role does not match, and a value replayed in a later transaction does not
-- match either (the key covers the transaction start time).
-- PL/pgSQL: its expressions are prepared once per transaction rather than once per statement.
-- It runs as the caller and has no SET clause, so every type, function and operator is
-- schema-qualified (a temporary domain named text must not be picked up at compile time).
-- No exception block (subtransactions are refused in parallel mode) and parallel restricted:
-- it runs in the leader, once per statement, as the initPlan of every generated policy.
-- The one reader of the layout that does not go through tenancy.context_value_part: inlined, the
-- reader still cost every statement under a policy some 1,700 instructions more (bench/shapes.py,
-- per point lookup: 112,818 as written here, 114,580 through context_value_part, against 78,260
-- for an explicit WHERE).
-- tests/pgtap/12-one_source.sql checks, for every role, that this reads what context_value
-- writes.
create or replace function tenancy.context_tenant_id(p_roles text[])
returns uuid
language plpgsql
stable
parallel restricted
as $$
declare
    v_value pg_catalog.text := pg_catalog.current_setting('tenancy.context', true);
    v_tenant_id pg_catalog.uuid;
    v_role pg_catalog.text;
begin
    -- No context in this transaction (NULL: never one in this session; '': one has ended).
    if v_value is null or v_value operator(pg_catalog.!~~) 'v3|%' then
        return null;
    end if;
    -- currval() raises until this session has had a context of its own (and again after DISCARD
    -- ALL); establish_context marks the session then. Forging the mark only turns a refusal into
    -- that error.
    if coalesce(pg_catalog.current_setting('tenancy.context_keyed', true), '')
        operator(pg_catalog.<>) 'on' then
        return null;
    end if;
    v_tenant_id := pg_catalog.split_part(v_value, '|', 2)::pg_catalog.uuid;
    v_role := pg_catalog.split_part(v_value, '|', 3);
    if pg_catalog.currval('tenancy.context_key'::pg_catalog.regclass)
        operator(pg_catalog.=) tenancy.context_key_of(v_tenant_id, v_role)
        and (
            p_roles is null
            or v_role operator(pg_catalog.=) 'service'
            or v_role operator(pg_catalog.=) any(p_roles)
        ) then
        return v_tenant_id;
    end if;
    -- Support access (tenancy.begin_support_access): context_key_of gives NULL for its role
    -- (support/<expiry>/<xid>), so the test above never admits one; its own key, any role list,
    -- while the access holds (tenancy.support_access_open). Reached only when the member roles'
    -- test fails: a valid member or service context neither runs nor plans it.
    if v_role operator(pg_catalog.~~) 'support/%'
        and pg_catalog.currval('tenancy.context_key'::pg_catalog.regclass)
        operator(pg_catalog.=) tenancy.support_key_of(v_tenant_id, v_role)
        and tenancy.support_access_open(v_role) then
        return v_tenant_id;
    end if;
    return null;
end
$$;

comment on function tenancy.context_tenant_id(text[]) is
'The current tenant id when the context is valid and its role is one of p_roles (NULL: any '
'role; a service context passes any list, and so does a support context while its access holds: '
'read-only transaction, before its expiry); NULL otherwise. Generated policies call it as '
'(select tenancy.context_tenant_id(array[...])) so it runs once per statement. A hand-written '
'value whose tenant is not a uuid raises 22P02.';

revoke all on function tenancy.context_tenant_id(text[]) from public;
grant execute on function tenancy.context_tenant_id(text[])
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
