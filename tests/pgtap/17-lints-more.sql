-- The doctor's lints 0006 to 0018 (sql/lints): nothing found on pgtenancy, the fixture tables and
-- the seeded rows; each lint finds the problem it is about once planted (1 issue) and nothing
-- once it is fixed (0 issues). Runs as the superuser, which plants the problems; everything is
-- rolled back. Policies are named as sentences:
-- noqa: disable=RF05

begin;
select plan(57);

-- Every finding of every installed lint view, as "code object".
create function pg_temp.findings()
returns setof text
language plpgsql
as $$
declare
    v_view text;
begin
    for v_view in
        select c.relname from pg_catalog.pg_class as c
        where c.relnamespace = 'tenancy'::regnamespace and c.relkind = 'v' and c.relname ~ '^lint_[0-9]{4}_'
        order by 1
    loop
        return query execute format('select code || '' '' || object from tenancy.%I', v_view);
    end loop;
end
$$;

select is_empty(
    'select * from pg_temp.findings()',
    'no lint finds anything on pgtenancy, the fixture tables and their rows'
);
select cmp_ok(
    (
        select count(*)::int from pg_catalog.pg_class as c
        where c.relnamespace = 'tenancy'::regnamespace and c.relname ~ '^lint_[0-9]{4}_'
    ),
    '>=',
    17,
    'the lints 0001 to 0018 are installed (so the check above is not vacuous)'
);

-- A tenant table to plant problems on, sound to start with.
create table public.lint_items (
    tenant_id uuid not null,
    id integer not null,
    constraint lint_items_pkey primary key (tenant_id, id)
);
comment on table public.lint_items is 'Items of the lint tests.';
alter table public.lint_items enable row level security;
alter table public.lint_items force row level security;
create policy "tenant rows" on public.lint_items
using (tenant_id operator (pg_catalog.=) (select tenancy.context_tenant_id(null)));
select is_empty('select * from pg_temp.findings()', 'a sound tenant table: nothing found');

-- 0002 and 0003 (in 16-lints.sql too): PUBLIC on schema tenancy, unsafe search paths ------------

grant usage on schema tenancy to public;
select is(
    array(select remediation from tenancy.lint_0002_public_grants),
    array['revoke USAGE on schema tenancy from public;'],
    '0002: 1 issue: PUBLIC holds USAGE on schema tenancy'
);
revoke usage on schema tenancy from public;
select is_empty('select 1 from tenancy.lint_0002_public_grants', '0002: 0 issues once revoked');
create function tenancy.lint_definer() returns integer
language sql security definer set search_path = pg_catalog as 'select 1';
create function tenancy.lint_invoker() returns integer
language sql set search_path = public, pg_catalog, pg_temp as 'select 1';
revoke all on function tenancy.lint_definer() from public;
revoke all on function tenancy.lint_invoker() from public;
select set_eq(
    'select object, detail from tenancy.lint_0003_definer_search_path',
    $$values
        (
            'tenancy.lint_definer()',
            'SECURITY DEFINER function tenancy.lint_definer() does not name pg_temp last on its '
            || 'search_path (pg_catalog): temporary tables and types, which any caller may create, '
            || 'are then searched first'
        ),
        (
            'tenancy.lint_invoker()',
            'function tenancy.lint_invoker() has public or $user on its search_path (public, '
            || 'pg_catalog, pg_temp): objects anyone created there stand in for pg_catalog''s'
        )$$,
    '0003: 2 issues: a SECURITY DEFINER function without pg_temp last; public on a search_path'
);
create or replace function tenancy.lint_definer() returns integer
language sql security definer set search_path = pg_catalog, pg_temp as 'select 1';
alter function tenancy.lint_invoker() reset search_path;
select is_empty('select 1 from tenancy.lint_0003_definer_search_path', '0003: 0 issues once fixed');
drop function tenancy.lint_definer(), tenancy.lint_invoker();

-- 0006: an application login that escapes row level security ---------------------------------

create role lint_web login in role tenancy_app;
create role lint_group nologin;
select is_empty('select 1 from tenancy.lint_0006_app_login_bypasses_rls', '0006: 0 issues for a plain app login');
alter role lint_web bypassrls;
select is(
    array(select detail from tenancy.lint_0006_app_login_bypasses_rls),
    array['application login lint_web has BYPASSRLS: row level security never applies to it'],
    '0006: 1 issue: an app login with BYPASSRLS'
);
alter role lint_web nobypassrls superuser;
select is(
    array(select remediation from tenancy.lint_0006_app_login_bypasses_rls),
    array['alter role lint_web nosuperuser;'],
    '0006: 1 issue: an app login that is a superuser, with its fix'
);
alter role lint_web nosuperuser;
-- Through a group: owner of a tenant table, member of tenancy_owner.
grant lint_group to lint_web;
alter table public.lint_items owner to lint_group;
select is(
    array(select detail from tenancy.lint_0006_app_login_bypasses_rls),
    array[
        'application login lint_web owns tenant table lint_items (through role lint_group): an '
        || 'owner may disable, change or drop its policies'
    ],
    '0006: 1 issue: an app login owning a tenant table through a group'
);
alter table public.lint_items owner to current_user;
grant tenancy_owner to lint_group;
select is(
    array(select object from tenancy.lint_0006_app_login_bypasses_rls),
    array['lint_web'],
    '0006: 1 issue: an app login that is a member of tenancy_owner through a group'
);
revoke tenancy_owner from lint_group;
-- tenancy_service is a member of tenancy_app: its logins count too.
revoke tenancy_app from lint_web;
grant tenancy_service to lint_web;
alter role lint_web bypassrls;
select is(
    array(select object from tenancy.lint_0006_app_login_bypasses_rls),
    array['lint_web'],
    '0006: 1 issue: a tenancy_service login with BYPASSRLS'
);
alter role lint_web nobypassrls;
select is_empty('select 1 from tenancy.lint_0006_app_login_bypasses_rls', '0006: 0 issues once fixed');
-- A BYPASSRLS login outside the application's roles is not this lint's business.
create role lint_dba login bypassrls;
select is_empty(
    'select 1 from tenancy.lint_0006_app_login_bypasses_rls',
    '0006: a BYPASSRLS login that is no member of tenancy_app is not reported'
);

-- 0007: a permissive policy without the tenant context ------------------------------------------

create policy "admins see all" on public.lint_items for select to tenancy_admin, tenancy_app using (true);
select is(
    array(select object from tenancy.lint_0007_permissive_policy_widens),
    array['"admins see all" on lint_items'],
    '0007: 1 issue: a permissive policy of true on a tenant table'
);
-- A restrictive tenant policy for every role and command makes it harmless (AND-ed).
create policy "only the tenant" on public.lint_items as restrictive
using (tenant_id = (select tenancy.context_tenant_id(null)));
select is_empty(
    'select 1 from tenancy.lint_0007_permissive_policy_widens',
    '0007: 0 issues when a restrictive tenant policy covers every role and command'
);
drop policy "only the tenant" on public.lint_items;
drop policy "admins see all" on public.lint_items;
-- The policy pgtenancy generates for tenancy_owner alone is recognised.
create policy "pgtenancy functions manage every row" on public.lint_items as permissive
for all to tenancy_owner using (true) with check (true);
select is_empty(
    'select 1 from tenancy.lint_0007_permissive_policy_widens',
    '0007: 0 issues: a policy for tenancy_owner alone is not reported'
);
-- ... but not once it is given to another role as well.
alter policy "pgtenancy functions manage every row" on public.lint_items to tenancy_owner, tenancy_app;
select is(
    array(select object from tenancy.lint_0007_permissive_policy_widens),
    array['"pgtenancy functions manage every row" on lint_items'],
    '0007: 1 issue: the owner policy given to tenancy_app too'
);
drop policy "pgtenancy functions manage every row" on public.lint_items;
-- A function of the same name in another schema is not the tenant context.
create schema lint_other;
create function lint_other.current_tenant_id() returns uuid
language sql stable set search_path = pg_catalog, pg_temp as 'select null::uuid';
create policy "own context" on public.lint_items
using (tenant_id = (select lint_other.current_tenant_id()));
select is(
    array(select object from tenancy.lint_0007_permissive_policy_widens),
    array['"own context" on lint_items'],
    '0007: 1 issue: a policy calling lint_other.current_tenant_id(), not pgtenancy''s'
);
drop policy "own context" on public.lint_items;
drop function lint_other.current_tenant_id();
drop schema lint_other;
select is_empty('select 1 from tenancy.lint_0007_permissive_policy_widens', '0007: 0 issues once dropped');

-- 0008: a tenant policy without the tenant predicate -------------------------------------------

create policy "tenant updates" on public.lint_items for update
using (tenant_id = (select tenancy.context_tenant_id(null)))
with check (true);
select is(
    array(select detail from tenancy.lint_0008_policy_without_tenant_predicate),
    array[
        'the WITH CHECK of policy "tenant updates" on tenant table lint_items does not require '
        || 'tenant_id to equal the tenant context: true'
    ],
    '0008: 1 issue: a FOR UPDATE policy whose WITH CHECK is true (rows move to any tenant)'
);
alter policy "tenant updates" on public.lint_items
with check (tenant_id = (select tenancy.context_tenant_id(null)) and id > 0);
select is_empty(
    'select 1 from tenancy.lint_0008_policy_without_tenant_predicate',
    '0008: 0 issues once WITH CHECK requires the tenant (AND-ed with more)'
);
alter policy "tenant rows" on public.lint_items
using (tenant_id = (select tenancy.context_tenant_id(null)) or id = 1);
select is(
    array(select object from tenancy.lint_0008_policy_without_tenant_predicate),
    array['"tenant rows" on lint_items'],
    '0008: 1 issue: the tenant predicate OR-ed with something else'
);
alter policy "tenant rows" on public.lint_items
using (tenant_id = coalesce((select tenancy.context_tenant_id(null)), tenant_id));
select is(
    array(select object from tenancy.lint_0008_policy_without_tenant_predicate),
    array['"tenant rows" on lint_items'],
    '0008: 1 issue: the context compared through COALESCE with the column itself'
);
alter policy "tenant rows" on public.lint_items
using ((id > 0 or id < 0) and tenant_id = (select tenancy.context_tenant_id(null)));
select is_empty(
    'select 1 from tenancy.lint_0008_policy_without_tenant_predicate',
    '0008: 0 issues: the tenant predicate AND-ed with an OR'
);
drop policy "tenant updates" on public.lint_items;

-- 0009: a partition without its own row level security -----------------------------------------

create table public.lint_parts (
    tenant_id uuid not null,
    id integer not null,
    constraint lint_parts_pkey primary key (tenant_id, id)
) partition by hash (tenant_id);
comment on table public.lint_parts is 'Partitioned items of the lint tests.';
alter table public.lint_parts enable row level security;
alter table public.lint_parts force row level security;
create policy "tenant rows" on public.lint_parts using (tenant_id = (select tenancy.context_tenant_id(null)));
create table public.lint_parts_0 partition of public.lint_parts for values with (modulus 1, remainder 0);
select is(
    array(select detail from tenancy.lint_0009_descendant_rls_not_forced),
    array[
        'partition lint_parts_0 of tenant table lint_parts has row level security not enabled: '
        || 'queried directly, it shows every tenant''s rows to every role with SELECT on it'
    ],
    '0009: 1 issue: a partition of a tenant table without row level security'
);
alter table public.lint_parts_0 enable row level security;
select is(
    array(select object from tenancy.lint_0009_descendant_rls_not_forced),
    array['lint_parts_0'],
    '0009: 1 issue: enabled, not forced'
);
alter table public.lint_parts_0 force row level security;
select is_empty('select 1 from tenancy.lint_0009_descendant_rls_not_forced', '0009: 0 issues once forced');

-- 0010: TRUNCATE, REFERENCES, TRIGGER for others than the owner ---------------------------------

grant truncate on public.lint_items to tenancy_app;
grant references (id) on public.lint_items to public;
grant trigger on public.lint_parts_0 to tenancy_service;
select set_eq(
    'select object, remediation from tenancy.lint_0010_tenant_table_risky_grants',
    $$values
        ('lint_items', 'revoke TRUNCATE on table lint_items from tenancy_app;'),
        ('lint_items', 'revoke REFERENCES (id) on table lint_items from public;'),
        ('lint_parts_0', 'revoke TRIGGER on table lint_parts_0 from tenancy_service;')$$,
    '0010: 3 issues: TRUNCATE, column REFERENCES to PUBLIC, TRIGGER on a partition'
);
revoke truncate on public.lint_items from tenancy_app;
revoke references (id) on public.lint_items from public;
revoke trigger on public.lint_parts_0 from tenancy_service;
grant select, insert, update, delete on public.lint_items to tenancy_app;
select is_empty(
    'select 1 from tenancy.lint_0010_tenant_table_risky_grants',
    '0010: 0 issues once revoked (the ordinary privileges are fine)'
);

-- 0011: a SECURITY DEFINER function owned by a superuser, callable by the application ------------

create function public.lint_count_items() returns bigint
language sql stable security definer set search_path = pg_catalog, pg_temp
as 'select count(*) from public.lint_items';
select is(
    array(select object from tenancy.lint_0011_definer_bypasses_rls),
    array['lint_count_items()'],
    '0011: 1 issue: a superuser''s SECURITY DEFINER function executable by PUBLIC'
);
revoke execute on function public.lint_count_items() from public;
grant execute on function public.lint_count_items() to tenancy_app;
select is(
    array(select object from tenancy.lint_0011_definer_bypasses_rls),
    array['lint_count_items()'],
    '0011: 1 issue: granted to tenancy_app by name'
);
revoke execute on function public.lint_count_items() from tenancy_app;
select is_empty('select 1 from tenancy.lint_0011_definer_bypasses_rls', '0011: 0 issues once not executable');

-- 0012: rows without a tenant --------------------------------------------------------------------

select tenancy.create_tenant('lint-keyed', 'Lint keyed', 'lint-owner-1', null, '42') as keyed_tenant \gset
insert into public.lint_items (tenant_id, id) values (:'keyed_tenant', 1), (gen_random_uuid(), 2);
select is(
    array(select detail from tenancy.lint_0012_orphan_rows),
    array[
        '1 row(s) of tenant table lint_items name no tenant (tenant_id matches no tenancy.tenants '
        || 'row): no tenant context ever shows them, and they are nobody''s to export or delete'
    ],
    '0012: 1 issue: a row whose tenant_id is no tenant (the superuser sees every row)'
);
delete from public.lint_items
where id = 2;
select is_empty('select 1 from tenancy.lint_0012_orphan_rows', '0012: 0 issues once deleted');
-- A bigint key column: the tenant's key, as text.
create table public.lint_keyed (company_id bigint, id integer);
create policy "tenant rows" on public.lint_keyed
using (company_id = (select tenancy.context_tenant_id(null)::text::bigint));
insert into public.lint_keyed values (42, 1), (null, 2);
select is(
    array(select detail from tenancy.lint_0012_orphan_rows),
    array[
        '1 row(s) of tenant table lint_keyed have no tenant (company_id is NULL): no tenant '
        || 'context ever shows them, and they are nobody''s to export or delete'
    ],
    '0012: 1 issue: a NULL key (the row keyed 42 names a tenant)'
);
update public.lint_keyed set company_id = 43
where id = 2;
select is(
    array(select object from tenancy.lint_0012_orphan_rows),
    array['lint_keyed'],
    '0012: 1 issue: a key no tenant has'
);
delete from public.lint_keyed
where id = 2;
select is_empty('select 1 from tenancy.lint_0012_orphan_rows', '0012: 0 issues once deleted');
-- Rows hidden from the caller are not counted: as tenancy_auditor without a context, none.
insert into public.lint_keyed values (null, 3);
grant select on public.lint_keyed to tenancy_auditor;
alter table public.lint_keyed enable row level security;
set local role tenancy_auditor;
select is_empty(
    'select 1 from tenancy.lint_0012_orphan_rows',
    '0012: rows the caller''s row level security hides are not counted'
);
reset role;
drop table public.lint_keyed;

-- 0013: a materialized view over a tenant table ----------------------------------------------------

create materialized view public.lint_items_counts as
select
    tenant_id,
    count(*) as items
from public.lint_items
group by tenant_id;
select is(
    array(select object || ' ' || level from tenancy.lint_0013_materialized_view_over_tenant_table),
    array['lint_items_counts WARN'],
    '0013: 1 issue (WARN): a materialized view over a tenant table'
);
drop materialized view public.lint_items_counts;
select is_empty('select 1 from tenancy.lint_0013_materialized_view_over_tenant_table', '0013: 0 issues once dropped');

-- 0014: a tenant column outside the tenant tables --------------------------------------------------

create table public.lint_notes (tenant_id uuid not null, body text);
select is(
    array(select object from tenancy.lint_0014_tenant_column_outside_tenant_table),
    array['lint_notes'],
    '0014: 1 issue: a table with a tenant_id column and no tenant policy'
);
create policy "tenant rows" on public.lint_notes using (tenant_id = (select tenancy.context_tenant_id(null)));
select is_empty(
    'select 1 from tenancy.lint_0014_tenant_column_outside_tenant_table',
    '0014: 0 issues once it is a tenant table'
);
drop table public.lint_notes;
-- A directory of the tenants keyed by its id (companies, tenant column id): other tables' id
-- columns are not tenant columns; another table's company_id is.
create table public.lint_companies (id bigint primary key, name text);
create policy "tenant rows" on public.lint_companies
using (id = (select tenancy.tenant_key_int8(tenancy.context_tenant_key(null))));
create table public.lint_invoices (id bigint primary key, company_id bigint not null);
create table public.lint_campaigns (company_id bigint not null, id bigint, primary key (company_id, id));
create policy "tenant rows" on public.lint_campaigns
using (company_id = (select tenancy.tenant_key_int8(tenancy.context_tenant_key(null))));
select is(
    array(select object from tenancy.lint_0014_tenant_column_outside_tenant_table),
    array['lint_invoices'],
    '0014: 1 issue: company_id outside the tenant tables; id, the directory''s own key, is no tenant column'
);
drop table public.lint_companies, public.lint_invoices, public.lint_campaigns;

-- 0015: a tenant column without an index leading with it ----------------------------------------

alter table public.lint_items drop constraint lint_items_pkey;
alter table public.lint_items add constraint lint_items_pkey primary key (id, tenant_id);
select is(
    array(select object from tenancy.lint_0015_tenant_column_not_indexed),
    array['lint_items'],
    '0015: 1 issue: the only index has the tenant column second'
);
alter table public.lint_items drop constraint lint_items_pkey;
alter table public.lint_items add constraint lint_items_pkey primary key (tenant_id, id);
select is_empty('select 1 from tenancy.lint_0015_tenant_column_not_indexed', '0015: 0 issues with a tenant-led key');

-- 0016: a context call without (select ...) ------------------------------------------------------

alter policy "tenant rows" on public.lint_items using (tenant_id = tenancy.context_tenant_id(null));
select is(
    array(select object from tenancy.lint_0016_context_call_not_wrapped),
    array['"tenant rows" on lint_items'],
    '0016: 1 issue: the context function called per row'
);
alter policy "tenant rows" on public.lint_items using (tenant_id = (select tenancy.context_tenant_id(null)));
select is_empty('select 1 from tenancy.lint_0016_context_call_not_wrapped', '0016: 0 issues once wrapped');
-- Inside another function call (as generated for bigint tenant columns): the same rule.
alter policy "tenant rows" on public.lint_items
using (tenant_id::text = pg_catalog.lower(tenancy.context_tenant_key(null)));
select is(
    array(select object from tenancy.lint_0016_context_call_not_wrapped),
    array['"tenant rows" on lint_items'],
    '0016: 1 issue: a context call inside another function, per row'
);
alter policy "tenant rows" on public.lint_items
using (tenant_id::text = (select pg_catalog.lower(tenancy.context_tenant_key(null))));
select is_empty(
    'select 1 from tenancy.lint_0016_context_call_not_wrapped',
    '0016: 0 issues once the outer call is in (select ...)'
);
alter policy "tenant rows" on public.lint_items using (tenant_id = (select tenancy.context_tenant_id(null)));

-- 0017: a tenant without an owner ----------------------------------------------------------------

set local role tenancy_admin;
select tenancy.create_tenant('lint-ownerless', 'Lint ownerless') as ownerless \gset
reset role;
select is(
    array(select object from tenancy.lint_0017_tenant_without_owner),
    array[:'ownerless'],
    '0017: 1 issue: a tenant created without an owner'
);
set local role tenancy_auditor;
select is(
    array(select object from tenancy.lint_0017_tenant_without_owner),
    array[:'ownerless'],
    '0017: tenancy_auditor sees it too (the view reads memberships as tenancy_owner)'
);
reset role;
insert into tenancy.memberships (tenant_id, user_id, role) values (:'ownerless', 'lint-owner-2', 'owner');
select is_empty('select 1 from tenancy.lint_0017_tenant_without_owner', '0017: 0 issues once it has an owner');

-- 0018: comments --------------------------------------------------------------------------------

comment on table public.lint_items is null;
create function tenancy.lint_uncommented() returns integer
language sql set search_path = pg_catalog, pg_temp as 'select 1';
revoke all on function tenancy.lint_uncommented() from public;
select set_eq(
    'select object, level from tenancy.lint_0018_missing_comment',
    $$values ('lint_items', 'INFO'), ('tenancy.lint_uncommented()', 'INFO')$$,
    '0018: 2 issues (INFO): a tenant table and a tenancy function without a comment'
);
comment on table public.lint_items is 'Items of the lint tests.';
comment on function tenancy.lint_uncommented() is 'A function of the lint tests.';
select is_empty('select 1 from tenancy.lint_0018_missing_comment', '0018: 0 issues once commented');

-- Everything fixed: nothing found by any lint.
select is_empty('select * from pg_temp.findings()', 'every planted problem fixed: nothing found');

select * from finish();
rollback;
