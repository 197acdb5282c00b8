-- Key layout: what EXPLAIN and the statistics views still tell tenancy_app about other tenants (docs/key-layout.md).
begin;
select plan(11);

-- explain_of: the top plan node of EXPLAIN (format json), with ANALYZE when asked.
create function pg_temp.explain_of(p_query text, p_analyze boolean)
returns json
language plpgsql
as $$
declare
    v_plan json;
begin
    execute format(
        'explain (analyze %s, format json) %s', case when p_analyze then 'on' else 'off' end, p_query
    ) into v_plan;
    return v_plan -> 0 -> 'Plan';
end
$$;

-- Fixtures: tenants A and B. B has 400 documents, 300 of them titled 'quarterly report';
-- A has 4.
set local role tenancy_admin;
do $fixture$
begin
    perform set_config(
        'layout_test.a',
        tenancy.create_tenant('layout-a-' || left(md5(random()::text), 10), 'A', gen_random_uuid()::text)::text,
        true
    );
    perform set_config(
        'layout_test.b',
        tenancy.create_tenant('layout-b-' || left(md5(random()::text), 10), 'B', gen_random_uuid()::text)::text,
        true
    );
end
$fixture$;
set local role tenancy_service;
do $fixture$
declare
    v_project bigint;
begin
    perform tenancy.set_context(current_setting('layout_test.b')::uuid);
    insert into app.projects (name) values ('b project') returning id into v_project;
    insert into app.documents (project_id, title)
    select v_project, case when g <= 300 then 'quarterly report' else 'note ' || g end
    from generate_series(1, 400) as g;
    perform tenancy.set_context(current_setting('layout_test.a')::uuid);
    insert into app.projects (name) values ('a project') returning id into v_project;
    insert into app.documents (project_id, title)
    select v_project, 'a note ' || g from generate_series(1, 4) as g;
end
$fixture$;
reset role;
analyze app.documents;
do $fixture$
begin
    perform set_config('layout_test.total', (select count(*) from app.documents)::text, true);
end
$fixture$;

-- pg_stats hides tables whose row level security applies to the reader; pg_class does not.
select ok(
    (
        select count(*) from pg_catalog.pg_stats
        where schemaname = 'app' and tablename = 'documents'
    ) > 0,
    'the superuser sees the statistics of app.documents in pg_stats'
);
set local role tenancy_service;
do $context$
begin
    perform tenancy.set_context(current_setting('layout_test.a')::uuid);
end
$context$;
set local role tenancy_app;
select is(
    (
        select count(*) from pg_catalog.pg_stats
        where schemaname = 'app' and tablename = 'documents'
    ),
    0::bigint,
    'tenancy_app sees no row of pg_stats for app.documents'
);
select is(
    (
        select c.reltuples::bigint from pg_catalog.pg_class as c
        where c.oid = 'app.documents'::regclass
    ),
    current_setting('layout_test.total')::bigint,
    'tenancy_app reads pg_class.reltuples: the row count of every tenant together'
);
select ok(
    has_function_privilege('pg_catalog.pg_stat_get_live_tuples(oid)', 'execute')
    and has_table_privilege('pg_catalog.pg_stat_user_tables', 'select'),
    'tenancy_app may read pg_stat_user_tables and call its functions (PUBLIC by default)'
);

-- EXPLAIN ANALYZE: with every index led by tenant_id, index scans never reach another
-- tenant's row; a sequential scan counts all of them as removed by the policy filter.
set local enable_seqscan = off;
select ok(
    coalesce((pg_temp.explain_of(
        $$select * from app.documents where title >= 'quarterly'$$, true
    ) ->> 'Rows Removed by Filter')::bigint, 0) <= 4,
    'EXPLAIN ANALYZE over tenant-led indexes removes only rows of the current tenant'
);
set local enable_seqscan = on;
set local enable_indexscan = off;
set local enable_bitmapscan = off;
select is(
    (pg_temp.explain_of('select * from app.documents', true) ->> 'Rows Removed by Filter')::bigint,
    current_setting('layout_test.total')::bigint - 4,
    'a forced sequential scan shows how many rows the other tenants hold, in total'
);
reset enable_seqscan;
reset enable_indexscan;
reset enable_bitmapscan;

-- Plain EXPLAIN: estimates come from statistics over every tenant's rows.
select ok(
    (
        pg_temp.explain_of($$select * from app.documents where title = 'quarterly report'$$, false)
        ->> 'Plan Rows'
    )::numeric
    > 10 * (
        pg_temp.explain_of($$select * from app.documents where title = 'no such title'$$, false)
        ->> 'Plan Rows'
    )::numeric,
    'a row estimate shows that another tenant often uses a title tenant A does not have'
);

-- Without statistics on the column (statistics target 0, the old ones removed) the estimates
-- no longer tell the titles apart.
reset role;
alter table app.documents alter column title set statistics 0;
delete from pg_catalog.pg_statistic
where
    starelid = 'app.documents'::regclass
    and staattnum = (
        select a.attnum from pg_catalog.pg_attribute as a
        where a.attrelid = 'app.documents'::regclass and a.attname = 'title'
    );
analyze app.documents;
set local role tenancy_service;
do $context$
begin
    perform tenancy.set_context(current_setting('layout_test.a')::uuid);
end
$context$;
set local role tenancy_app;
select is(
    (
        pg_temp.explain_of($$select * from app.documents where title = 'quarterly report'$$, false)
        ->> 'Plan Rows'
    ),
    (
        pg_temp.explain_of($$select * from app.documents where title = 'no such title'$$, false)
        ->> 'Plan Rows'
    ),
    'with statistics target 0 on title, estimates are the same for every title'
);

-- Revoking the statistics functions from PUBLIC closes pg_stat_user_tables to tenancy_app.
reset role;
revoke execute on function pg_catalog.pg_stat_get_live_tuples(oid) from public;
grant execute on function pg_catalog.pg_stat_get_live_tuples(oid) to pg_monitor;
set local role tenancy_app;
select throws_ok(
    $$select n_live_tup from pg_catalog.pg_stat_user_tables where relname = 'documents'$$,
    '42501',
    null,
    'without EXECUTE on pg_stat_get_live_tuples, tenancy_app cannot read n_live_tup'
);
select throws_ok(
    $$select pg_catalog.pg_stat_get_live_tuples('app.documents'::regclass)$$,
    '42501',
    null,
    'nor call the function directly'
);
reset role;
select ok(
    (
        select n_live_tup is not null from pg_catalog.pg_stat_user_tables
        where relid = 'app.documents'::regclass
    ),
    'the superuser still reads it'
);

select * from finish();
rollback;
