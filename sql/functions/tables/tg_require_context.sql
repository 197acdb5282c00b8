-- tenancy.tg_require_context: statement trigger refusing writes to a tenant table without a context.

create or replace function tenancy.tg_require_context()
returns trigger
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    -- tenancy_owner (NOLOGIN) only acts through pgtenancy's own functions, which check the
    -- context themselves where one is needed.
    if row_security_active(tg_relid)
        and current_user <> 'tenancy_owner'
        and tenancy.context_tenant_id(null) is null then
        raise exception using
            errcode = 'TN001',
            message = format(
                'no tenant context: %s on %I.%I needs tenancy.authenticate() or tenancy.set_context() '
                'earlier in the transaction',
                tg_op, tg_table_schema, tg_table_name
            );
    end if;
    return null;
end
$$;

comment on function tenancy.tg_require_context() is
'Trigger (BEFORE INSERT/UPDATE/DELETE, FOR EACH STATEMENT): TN001 when a role subject to row '
'level security writes without a valid tenant context.';

revoke all on function tenancy.tg_require_context() from public;
