-- tenancy.tg_require_context: statement trigger refusing writes to a tenant table without a context (or without a usable tenant key).

create or replace function tenancy.tg_require_context()
returns trigger
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    -- Arguments: the tenant column and its type (uuid, bigint, integer or text); none from
    -- earlier releases, whose tables hold the tenant id in tenant_id. A third, 'mac', from the
    -- Citus flavour: the context is checked as its policies check it (tenancy.context_tenant_id_mac),
    -- which a Citus worker, where the trigger fires, can do on its own.
    v_column text := coalesce(tg_argv[0], 'tenant_id');
    v_type text := coalesce(tg_argv[1], 'uuid');
    v_mac boolean := coalesce(tg_argv[2] = 'mac', false);
    v_key text;
begin
    -- tenancy_owner (NOLOGIN) only acts through pgtenancy's own functions, which check the
    -- context themselves where one is needed.
    -- The write fence (tenancy.fence_tenant) holds pgtenancy's own functions too (tenancy_owner):
    -- a row written in a fenced tenant's context would be left behind by its move.
    if current_user = 'tenancy_owner' or not row_security_active(tg_relid) then
        -- A role that bypasses row level security (a superuser, the table's owner) is held
        -- when it writes in a context of the tenant too; without one it is the DBA at work.
        if not v_mac and coalesce(current_setting('tenancy.context', true), '') like 'v3|%'
            and tenancy.context_tenant_id(null) is not null
            and currval('tenancy.context_fence'::regclass) <> currval('tenancy.context_key'::regclass) then
            perform tenancy.raise_fenced(tg_op, tg_table_schema, tg_table_name);
        end if;
        return null;
    end if;
    if (case when v_mac then tenancy.context_tenant_id_mac(null) else tenancy.context_tenant_id(null) end) is null then
        raise exception using
            errcode = 'TN001',
            message = format(
                'no tenant context: %s on %I.%I needs tenancy.authenticate() or tenancy.set_context() '
                'earlier in the transaction',
                tg_op, tg_table_schema, tg_table_name
            );
    end if;
    -- Set by establish_context in this transaction next to the key (which the check above has
    -- just proved): equal to it only when the tenant's writes are not fenced.
    -- Not in the Citus flavour: a worker never ran establish_context (moves are not supported on
    -- Citus).
    if not v_mac and currval('tenancy.context_fence'::regclass) <> currval('tenancy.context_key'::regclass) then
        perform tenancy.raise_fenced(tg_op, tg_table_schema, tg_table_name);
    end if;
    -- Support access (tenancy.begin_support_access) only reads. Its transaction is read-only, so
    -- PostgreSQL refuses a write when the statement starts; this also refuses a statement that
    -- made the transaction read-only (and so the access valid) while it ran.
    if split_part(current_setting('tenancy.context', true), '|', 3) like 'support/%' then
        raise exception using
            errcode = '25006',
            message = format(
                'support access is read-only: %s on %I.%I is refused', tg_op, tg_table_schema, tg_table_name
            );
    end if;
    if v_type = 'uuid' then
        return null;
    end if;
    -- A column holding the tenant key: without one the tenant has no rows here, and its inserts
    -- would fail on NOT NULL or a policy, saying nothing of why.
    v_key := case when v_mac then tenancy.context_tenant_key_mac(null) else tenancy.current_tenant_key() end;
    if v_key is null then
        raise exception using
            errcode = 'TN009',
            message = format(
                'tenant %s has no key: %s on %I.%I needs one (its tenant column %I holds the tenant key)',
                tenancy.current_tenant_id(), tg_op, tg_table_schema, tg_table_name, v_column
            ),
            hint = 'A tenant''s key is set when it is created: tenancy.create_tenant(..., p_key => ''42'').';
    end if;
    if (v_type = 'bigint' and tenancy.tenant_key_int8(v_key) is null)
        or (v_type = 'integer' and tenancy.tenant_key_int4(v_key) is null) then
        raise exception using
            errcode = 'TN009',
            message = format(
                'tenant %s has key %L, which tenant column %I (%s) of %I.%I cannot hold: %s on it is refused',
                tenancy.current_tenant_id(), v_key, v_column, v_type, tg_table_schema, tg_table_name, tg_op
            ),
            hint = format(
                'A %s tenant column holds keys spelled as %s numbers: decimal digits, an optional '
                'minus sign, no leading zeros (42, not 042 or +42).', v_type, v_type
            );
    end if;
    return null;
end
$$;

comment on function tenancy.tg_require_context() is
'Trigger (BEFORE INSERT/UPDATE/DELETE, FOR EACH STATEMENT; arguments: the tenant column, its '
'type and, from the Citus flavour, ''mac''): TN001 when a role subject to row level security '
'writes without a valid tenant context; 25006 in a support context (tenancy.begin_support_access); '
'TN021 when the tenant''s writes are fenced (tenancy.fence_tenant: a move), for writes in a '
'context by roles that bypass row level security too (not in the Citus flavour: moves are not '
'supported there); '
'TN009 when the column holds the tenant key (bigint, integer, text) and the tenant has none, or '
'one the column''s type cannot hold.';

revoke all on function tenancy.tg_require_context() from public;
