-- tenancy.context_tenant_key: the policy key of tables keyed by the tenant key, when the member role is allowed.

-- Tables whose tenant column holds the application's key (bigint, integer or text, see
-- tenancy.tenants.key) compare it with this once per statement, through
-- tenancy.tenant_key_int8 or tenancy.tenant_key_int4 for number columns:
--     company_id = (select tenancy.tenant_key_int8(tenancy.context_tenant_key(array[...])))
-- One check binds the whole context value to this transaction: its fingerprint (SHA-256 over the
-- value and the transaction start time, tenancy.context_fingerprint_of), which
-- tenancy.establish_context stored with setval() on tenancy.context_fingerprint. A value written
-- by hand with another key, tenant or role does not match, nor does one replayed later.
-- Self-contained, like tenancy.context_tenant_id and for the same reason (it runs once per
-- statement on every table keyed this way): calling context_tenant_id and
-- context_value_part from here cost a point lookup about 70,000 instructions over an explicit
-- WHERE instead of about 40,000 (bench/shapes.py). tests/pgtap/13-one_source.sql checks that it
-- reads what tenancy.context_value writes, for every role.
-- Runs as the caller, no SET clause: every name is schema-qualified; no exception block and
-- parallel restricted, like context_tenant_id.
create or replace function tenancy.context_tenant_key(p_roles text[])
returns text
language plpgsql
stable
parallel restricted
as $$
declare
    v_value pg_catalog.text := pg_catalog.current_setting('tenancy.context', true);
    v_role pg_catalog.text;
    v_length pg_catalog.text;
begin
    -- No context in this transaction (NULL: never one in this session; '': one has ended).
    if v_value is null or v_value operator(pg_catalog.!~~) 'v3|%' then
        return null;
    end if;
    -- currval() raises until this session has had a context of its own (see context_tenant_id).
    if coalesce(pg_catalog.current_setting('tenancy.context_keyed', true), '')
        operator(pg_catalog.<>) 'on' then
        return null;
    end if;
    if pg_catalog.int8send(pg_catalog.currval('tenancy.context_fingerprint'::pg_catalog.regclass))
        operator(pg_catalog.<>) tenancy.context_fingerprint_of(v_value) then
        return null;
    end if;
    v_role := pg_catalog.split_part(v_value, '|', 3);
    if not (
        (p_roles is null and v_role operator(pg_catalog.!~~) 'support/%')
        or v_role operator(pg_catalog.=) 'service'
        or v_role operator(pg_catalog.=) any(p_roles)
    ) then
        -- A support context passes any list while its access holds (see context_tenant_id).
        -- Planned and run only here, so the member roles' path pays nothing for it.
        if v_role operator(pg_catalog.!~~) 'support/%' or not tenancy.support_access_open(v_role) then
            return null;
        end if;
    end if;
    -- The key: as many characters as the fourth field says, after the fourth '|'; none for a
    -- tenant without a key.
    v_length := pg_catalog.split_part(v_value, '|', 4);
    if v_length operator(pg_catalog.=) '0' then
        return null;
    end if;
    return pg_catalog.substr(
        v_value,
        -- v3| (3), the tenant uuid (36), then the role and the length, each followed by a |.
        43 operator(pg_catalog.+) pg_catalog.length(v_role) operator(pg_catalog.+) pg_catalog.length(v_length),
        v_length::pg_catalog.int4
    );
end
$$;

comment on function tenancy.context_tenant_key(text[]) is
'The current tenant''s key (tenancy.tenants.key) when the context is valid and its role is one '
'of p_roles (NULL: any role; a service context passes any list, a support context too while its '
'access holds); NULL otherwise, and for a '
'tenant without a key. Generated policies of tables keyed by the tenant key call it in a '
'(select ...), through tenancy.tenant_key_int8/int4 for number columns, so it runs once per '
'statement.';

revoke all on function tenancy.context_tenant_key(text[]) from public;
grant execute on function tenancy.context_tenant_key(text[])
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
