-- Parallel plans under a tenant context: forced (force_parallel_mode, debug_parallel_query from
-- PostgreSQL 16) and natural (parallel costs lowered on a table of 50,000 rows). Each returns
-- exactly what the serial plan returns, and only the current tenant's rows.
-- Fixtures: tenants by tenancy_admin, rows in service contexts; queries as tenancy_app.

begin;
select plan(11);

\ir setup/helpers.psql

select
    gen_random_uuid() as owner_a,
    gen_random_uuid() as owner_b
\gset

set local role tenancy_admin;
select tenancy.create_tenant('parallel-a', 'Parallel A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant('parallel-b', 'Parallel B', :'owner_b') as tenant_b \gset

set local role tenancy_service;
select tenant_id as ignored from tenancy.set_context(:'tenant_a') \gset
insert into app.projects (name) values ('parallel a');
insert into app.documents (project_id, title)
select
    p.id as project_id,
    'a ' || g.n as title
from app.projects as p
cross join generate_series(1, 30000) as g (n);
select tenant_id as ignored from tenancy.set_context(:'tenant_b') \gset
insert into app.projects (name) values ('parallel b');
insert into app.documents (project_id, title)
select
    p.id as project_id,
    'b ' || g.n as title
from app.projects as p
cross join generate_series(1, 20000) as g (n);
reset role;
analyze app.documents;

-- The owner of tenant A reads as tenancy_app.
set local role tenancy_service;
select tenant_id as ignored from tenancy.set_context(:'tenant_a', :'owner_a') \gset
set local role tenancy_app;

-- The serial answer.
set local max_parallel_workers_per_gather = 0;
select
    count(*) as serial_count,
    md5(string_agg(title, ',' order by id)) as serial_digest
from app.documents
where title like 'a 1%' or title like 'b 1%'
\gset
select is(:serial_count::bigint, 11111::bigint, 'the serial plan sees tenant A''s 11,111 matching rows only');

-- Forced parallel mode: every parallel-safe plan runs under a Gather. The context check is
-- parallel restricted (currval() is private to the leader's session), so it keeps plans on tenant
-- tables in the leader, and they still answer.
set local max_parallel_workers_per_gather = 2;
select set_config(
    case when current_setting('server_version_num')::int >= 160000 then 'debug_parallel_query' else 'force_parallel_mode' end,
    'on',
    true
) as forced \gset
select matches(
    pg_temp.plan_of('select count(*) from generate_series(1, 10)'), 'Gather', 'forced parallel mode is on'
);
-- Run at top level (a PL/pgSQL cursor would never get a parallel plan), then compared.
select
    count(*) as forced_count,
    md5(string_agg(title, ',' order by id)) as forced_digest
from app.documents
where title like 'a 1%' or title like 'b 1%'
\gset
select is(
    array[:'forced_count', :'forced_digest'],
    array[:'serial_count', :'serial_digest'],
    'a forced parallel plan returns what the serial plan returns'
);
select is(tenancy.current_tenant_id(), :'tenant_a'::uuid, 'current_tenant_id() works in forced parallel mode');
select is(tenancy.current_user_id(), :'owner_a'::text, 'current_user_id() works in forced parallel mode');
select is(tenancy.current_member_role(), 'owner', 'current_member_role() works in forced parallel mode');
select set_config(
    case when current_setting('server_version_num')::int >= 160000 then 'debug_parallel_query' else 'force_parallel_mode' end,
    'off',
    true
) as unforced \gset

-- A natural parallel plan: the planner picks a Gather over a parallel scan by itself.
set local parallel_setup_cost = 0;
set local parallel_tuple_cost = 0;
set local min_parallel_table_scan_size = 0;
select matches(
    pg_temp.plan_of($$select count(*) from app.documents where title like 'a 1%'$$),
    'Parallel [A-Za-z ]*Scan on documents',
    'the planner chooses a parallel scan'
);
select
    count(*) as natural_count,
    md5(string_agg(title, ',' order by id)) as natural_digest
from app.documents
where title like 'a 1%' or title like 'b 1%'
\gset
select is(
    array[:'natural_count', :'natural_digest'],
    array[:'serial_count', :'serial_digest'],
    'a natural parallel plan returns what the serial plan returns'
);
select matches(
    pg_temp.plan_of($$select count(*) from app.documents where title like 'a 1%'$$, ', analyze, timing off, summary off'),
    'Workers Launched: [1-9]',
    'the parallel plan really ran with workers'
);

-- Tenant B's owner, same plans: B's rows only.
set local role tenancy_service;
select tenant_id as ignored from tenancy.set_context(:'tenant_b', :'owner_b') \gset
set local role tenancy_app;
select is(
    (
        select count(*) from app.documents
        where title like 'a %' or title like 'b %'
    ),
    20000::bigint,
    'under a parallel plan tenant B sees its 20,000 rows'
);

-- Without a context a parallel plan shows nothing.
select tenancy.clear_context() \gset
select is((select count(*) from app.documents), 0::bigint, 'without a context a parallel plan shows no row');

reset role;
select * from finish();
rollback;
