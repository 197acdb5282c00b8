-- tenancy.context_fenced: whether the transaction's context is of a tenant whose writes are fenced here.

-- The test the write trigger (tenancy.tg_require_context) makes, for clients that want to know
-- before they write (pgtenancy.router: reads go on during a fence, so a router that lands on a
-- fenced placement asks the directory whether the tenant has moved). NULL without a valid
-- context. Inlinable SQL: no SET clause, every name schema-qualified.
create or replace function tenancy.context_fenced()
returns boolean
language sql
stable
parallel restricted
as $$
    select case
        when tenancy.context_tenant_id(null::pg_catalog.text []) is null then null
        else pg_catalog.currval('tenancy.context_fence'::pg_catalog.regclass)
            operator(pg_catalog.<>) pg_catalog.currval('tenancy.context_key'::pg_catalog.regclass)
    end
$$;

comment on function tenancy.context_fenced() is
'True when the transaction''s context is of a tenant whose writes are fenced on this database '
'(tenancy.fence_tenant: writes raise TN021, reads go on), false when it may write, NULL without '
'a valid context.';

revoke all on function tenancy.context_fenced() from public;
grant execute on function tenancy.context_fenced()
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
