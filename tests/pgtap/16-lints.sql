-- The doctor's lints (sql/lints, views tenancy.lint_NNNN_*): nothing found on pgtenancy's own
-- schema and the test fixtures; each lint finds the problem it is about once planted (1 issue)
-- and nothing once it is fixed (0 issues). Everything is planted inside the transaction, which
-- is rolled back.

begin;
select plan(15);

select is(
    (
        select count(*) from (
            select object from tenancy.lint_0001_rls_not_forced
            union all
            select object from tenancy.lint_0002_public_grants
            union all
            select object from tenancy.lint_0003_definer_search_path
            union all
            select object from tenancy.lint_0004_view_not_security_invoker
        ) as f
    ),
    0::bigint,
    'the lints find nothing on pgtenancy and the fixture tables'
);

-- The tenant tables and their tenant column, read from the columns their policies use.
select set_eq(
    $$select relid::regclass::text, tenant_column::text, tenant_column_type::text
      from tenancy.lint_tenant_tables$$,
    $$values ('app.documents', 'tenant_id', 'uuid'), ('app.projects', 'tenant_id', 'uuid'),
        ('app.ledger', 'account_key', 'bigint'), ('tenancy.memberships', 'tenant_id', 'uuid'),
        ('tenancy.tenant_settings', 'tenant_id', 'uuid'), ('tenancy.tenant_region_changes', 'tenant_id', 'uuid'),
        ('tenancy.feature_flags', 'tenant_id', 'uuid'), ('tenancy.tenant_domains', 'tenant_id', 'uuid'),
        ('tenancy.invitations', 'tenant_id', 'uuid'), ('tenancy.api_keys', 'tenant_id', 'uuid'),
        ('tenancy.meters', 'tenant_id', 'uuid'), ('tenancy.customers', 'tenant_id', 'uuid'),
        ('tenancy.tiers', 'tenant_id', 'uuid'), ('tenancy.subscriptions', 'tenant_id', 'uuid'),
        ('tenancy.usage_events', 'tenant_id', 'uuid'), ('tenancy.usage_counters', 'tenant_id', 'uuid'),
        ('tenancy.usage_idempotency_keys', 'tenant_id', 'uuid'), ('tenancy.usage_unique_values', 'tenant_id', 'uuid'),
        ('tenancy.usage_reservations', 'tenant_id', 'uuid'), ('tenancy.usage_alerts', 'tenant_id', 'uuid'),
        ('tenancy.connector_endpoints', 'tenant_id', 'uuid'), ('tenancy.analytics_events', 'tenant_id', 'uuid'),
        ('tenancy.connector_events', 'tenant_id', 'uuid'), ('tenancy.deliveries', 'tenant_id', 'uuid'),
        ('tenancy.erasure_ledger', 'tenant_id', 'uuid'), ('tenancy.subject_requests', 'tenant_id', 'uuid'),
        ('app.customers', 'tenant_id', 'uuid'), ('app.orders', 'tenant_id', 'uuid'), ('app.visits', 'tenant_id', 'uuid')$$,
    'lint_tenant_tables: the fixture tables and pgtenancy''s own, each with its tenant column and type'
);
create table public.lint_keyed (company_id bigint not null, id integer);
create policy p on public.lint_keyed
using (company_id = (select tenancy.context_tenant_id(null)::text::bigint));
select is(
    (
        select tenant_column::text from tenancy.lint_tenant_tables
        where relid = 'public.lint_keyed'::regclass
    ),
    'company_id',
    'lint_tenant_tables: the tenant column is the column the policy compares, whatever its name'
);
drop table public.lint_keyed;

-- 0001: a table with a policy calling the context, row level security not enabled, then not
-- forced, then both.
create table public.lint_orders (tenant_id uuid not null, id integer);
create policy p on public.lint_orders using (tenant_id = (select tenancy.context_tenant_id(null)));
select is(
    array(select detail from tenancy.lint_0001_rls_not_forced),
    array['row level security is not enabled on tenant table lint_orders'],
    '0001: 1 issue: a tenant table without row level security'
);
alter table public.lint_orders enable row level security;
select is(
    array(select detail from tenancy.lint_0001_rls_not_forced),
    array[
        'row level security is enabled but not forced (its owner bypasses the policies) on '
        || 'tenant table lint_orders'
    ],
    '0001: 1 issue: a tenant table whose owner bypasses its policies'
);
alter table public.lint_orders force row level security;
select is_empty('select 1 from tenancy.lint_0001_rls_not_forced', '0001: 0 issues once forced');
create table public.lint_plain (id integer);
select is_empty(
    'select 1 from tenancy.lint_0001_rls_not_forced',
    '0001: a table without a tenant policy is no tenant table'
);

-- 0002: PUBLIC granted on a function and a table of schema tenancy.
grant execute on function tenancy.current_tenant_id() to public;
grant select on tenancy.tenants to public;
select set_eq(
    'select object, remediation from tenancy.lint_0002_public_grants',
    $$values
        ('tenancy.current_tenant_id()', 'revoke EXECUTE on function tenancy.current_tenant_id() from public;'),
        ('tenancy.tenants', 'revoke SELECT on table tenancy.tenants from public;')$$,
    '0002: 2 issues: PUBLIC on a function and on a table, each with its revoke'
);
revoke execute on function tenancy.current_tenant_id() from public;
revoke select on tenancy.tenants from public;
select is_empty('select 1 from tenancy.lint_0002_public_grants', '0002: 0 issues once revoked');

-- 0003: a SECURITY DEFINER function without search_path.
create function tenancy.lint_definer() returns integer language sql security definer as 'select 1';
revoke all on function tenancy.lint_definer() from public;
select is(
    array(select object from tenancy.lint_0003_definer_search_path),
    array['tenancy.lint_definer()'],
    '0003: 1 issue: a SECURITY DEFINER function without search_path'
);
create or replace function tenancy.lint_definer() returns integer
language sql security definer set search_path = pg_catalog, pg_temp as 'select 1';
select is_empty(
    'select 1 from tenancy.lint_0003_definer_search_path', '0003: 0 issues once search_path is pinned'
);

-- 0004: a view over a tenant table, reading it with its owner's rights; then security_invoker.
create view public.lint_orders_view as select id from public.lint_orders;
create view public.lint_plain_view as select id from public.lint_plain;
select is(
    array(select object from tenancy.lint_0004_view_not_security_invoker),
    array['lint_orders_view'],
    '0004: 1 issue: a view over a tenant table without security_invoker (not one over a plain table)'
);
select is(
    array(select level from tenancy.lint_0004_view_not_security_invoker),
    array['WARN'],
    '0004 is a warning'
);
alter view public.lint_orders_view set (security_invoker = true);
select is_empty(
    'select 1 from tenancy.lint_0004_view_not_security_invoker',
    '0004: 0 issues once the view is security_invoker'
);

-- Who may run them: the platform's operators and auditors, not the application.
set local role tenancy_app;
select throws_ok(
    'select 1 from tenancy.lint_0001_rls_not_forced',
    '42501',
    'permission denied for view lint_0001_rls_not_forced',
    'tenancy_app cannot read the lints'
);
reset role;

select * from finish();
rollback;
