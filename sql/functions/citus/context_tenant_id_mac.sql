-- tenancy.context_tenant_id_mac: the policy key of the Citus flavour, the current tenant when the signed context is valid and its role allowed.

-- The Citus flavour's policies compare the tenant column with this, without a sub-select (Citus
-- refuses policies with subqueries on distributed tables):
--     tenant_id operator(pg_catalog.=) tenancy.context_tenant_id_mac(array[...])
-- so it runs once per index scan when the comparison is an index condition, and once per row of a
-- sequential scan (bench/citus_context.py, docs/citus.md). It checks what any node can check on
-- its own: tenancy.context (the context value, 'v3|tenant|role|...') and tenancy.context_mac
-- (tenancy.sign_context_mac), both written with SET LOCAL, which Citus forwards to the workers.
-- The role test comes first (no key needed); then tenancy.context_mac_valid, as the owner, checks
-- the expiry and the HMAC over the whole value. A value written by hand, or a signature of another
-- value, fails; a value and signature replayed within their lifetime give the same tenant, role and
-- user they were signed for, no other (docs/citus.md).
-- Runs as the caller with no SET clause: every name is schema-qualified. No exception block.
create or replace function tenancy.context_tenant_id_mac(p_roles text[])
returns uuid
language plpgsql
stable
parallel safe
as $$
declare
    v_value pg_catalog.text := pg_catalog.current_setting('tenancy.context', true);
    v_mac pg_catalog.text := pg_catalog.current_setting('tenancy.context_mac', true);
    v_role pg_catalog.text;
begin
    if v_value is null or v_mac is null
        or v_value operator(pg_catalog.!~~) 'v3|%' or v_mac operator(pg_catalog.!~~) 'm1|%' then
        return null;
    end if;
    v_role := pg_catalog.split_part(v_value, '|', 3);
    if not (
        p_roles is null
        or v_role operator(pg_catalog.=) 'service'
        or v_role operator(pg_catalog.=) any(p_roles)
    ) then
        return null;
    end if;
    if not tenancy.context_mac_valid(v_value, v_mac) then
        return null;
    end if;
    return pg_catalog.split_part(v_value, '|', 2)::pg_catalog.uuid;
end
$$;

comment on function tenancy.context_tenant_id_mac(text[]) is
'The current tenant id when the signed context (tenancy.context_mac) is valid for tenancy.context '
'and its role is one of p_roles (NULL: any role; a service context passes any list); NULL '
'otherwise. The Citus flavour''s policies call it without a sub-select; a Citus worker checks it '
'on its own.';

revoke all on function tenancy.context_tenant_id_mac(text[]) from public;
grant execute on function tenancy.context_tenant_id_mac(text[])
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
