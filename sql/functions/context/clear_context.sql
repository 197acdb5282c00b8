-- tenancy.clear_context: drop the current context before the transaction ends.

create or replace function tenancy.clear_context()
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform setval('tenancy.context_key'::regclass, 0, true);
    perform setval('tenancy.context_fingerprint'::regclass, 0, true);
    execute 'set local tenancy.context = ''''';
end
$$;

comment on function tenancy.clear_context() is
'Drops the transaction''s tenant context: tenant tables show no rows again until the next '
'authenticate() or set_context().';

revoke all on function tenancy.clear_context() from public;
grant execute on function tenancy.clear_context()
to tenancy_app, tenancy_service, tenancy_admin;
