-- A tenant table keyed by the tenant key in a bigint column (app.ledger, tenant_column =
-- "account_key" in tests/fixtures/tenancy.toml): each tenant reads and writes its own rows only,
-- cannot write or move rows to another key, the key never changes, and a tenant whose key the
-- column cannot hold (none, or not a canonical number) is refused with TN009 and sees nothing.
-- The plan is the uuid tables' plan: one initPlan, an index scan on the key; parallel plans
-- answer as serial ones.

begin;
select plan(24);

\ir setup/helpers.psql

-- Tenants: A (key 4201), B (key 4202), Z (key '04201': 4201 spelled with a leading zero, a key
-- of its own as text) and N (no key).
set local role tenancy_service;
select
    tenancy.create_tenant(p_slug => 'ledger-a', p_name => 'Ledger A', p_key => '4201') as tenant_a,
    tenancy.create_tenant(p_slug => 'ledger-b', p_name => 'Ledger B', p_key => '4202') as tenant_b,
    tenancy.create_tenant(p_slug => 'ledger-z', p_name => 'Ledger Z', p_key => '04201') as tenant_z,
    tenancy.create_tenant(p_slug => 'ledger-n', p_name => 'Ledger N') as tenant_n
\gset
reset role;

-- Rightful writes: a service context and a member context of A, each row stored under key 4201.
select pg_temp.act_as(:'tenant_a');
select is(
    pg_temp.row_count($$insert into app.ledger (amount, memo) values (10, 'a1'), (20, 'a2')$$),
    2::bigint,
    'a service context of tenant A inserts rows into app.ledger'
);
select results_eq(
    'select account_key, memo from app.ledger order by memo',
    $$values (4201::bigint, 'a1'), (4201, 'a2')$$,
    'the rows of tenant A carry its key 4201 (the column default) and A sees them'
);
select is(
    pg_temp.row_count($$insert into app.ledger (account_key, amount, memo) values (4201, 30, 'a3')$$),
    1::bigint,
    'tenant A may name its own key in an insert'
);
select pg_temp.act_as(:'tenant_b');
select lives_ok(
    $$insert into app.ledger (amount, memo) values (5, 'b1')$$,
    'a service context of tenant B inserts a row'
);

-- B sees only its own row and cannot reach A's.
select results_eq(
    'select account_key, memo from app.ledger',
    $$values (4202::bigint, 'b1')$$,
    'tenant B sees only its own row'
);
select is(
    pg_temp.row_count($$update app.ledger set memo = 'taken' where account_key = 4201$$), 0::bigint,
    'tenant B updates no row of tenant A'
);
select is(
    pg_temp.row_count($$delete from app.ledger where account_key = 4201$$), 0::bigint,
    'tenant B deletes no row of tenant A'
);
select throws_ok(
    $$insert into app.ledger (account_key, amount, memo) values (4201, 1, 'forged')$$,
    '42501',
    'new row violates row-level security policy for table "ledger"',
    'tenant B cannot insert a row under the key of tenant A'
);
select throws_ok(
    $$update app.ledger set account_key = 4201$$,
    'TN006',
    'account_key of app.ledger cannot change (from 4202 to 4201)',
    'tenant B cannot move its row to the key of tenant A'
);

-- The key never changes, whoever asks (the superuser, exempt from the policies, included).
reset role;
select throws_ok(
    $$update app.ledger set account_key = account_key + 1 where memo = 'a1'$$,
    'TN006',
    'account_key of app.ledger cannot change (from 4201 to 4202)',
    'the superuser cannot change account_key either'
);
select lives_ok(
    $$update app.ledger set memo = 'a1 (edited)' where memo = 'a1'$$,
    'an update that leaves account_key alone succeeds'
);

-- Z's key is '04201': as text another key than A's '4201'; it must not read as 4201.
select pg_temp.act_as(:'tenant_z');
select is(
    (select count(*) from app.ledger), 0::bigint,
    'tenant Z (key 04201) sees no row, not those of key 4201'
);
select throws_ok(
    $$insert into app.ledger (amount, memo) values (1, 'z1')$$,
    'TN009',
    format(
        'tenant %s has key ''04201'', which tenant column account_key (bigint) of app.ledger cannot '
        'hold: INSERT on it is refused', :'tenant_z'
    ),
    'tenant Z cannot write: TN009 names the tenant, its key, the column and the table'
);

-- N has no key at all.
select pg_temp.act_as(:'tenant_n');
select is((select count(*) from app.ledger), 0::bigint, 'tenant N (no key) sees no row');
select throws_ok(
    $$insert into app.ledger (amount, memo) values (1, 'n1')$$,
    'TN009',
    format(
        'tenant %s has no key: INSERT on app.ledger needs one (its tenant column account_key holds '
        'the tenant key)', :'tenant_n'
    ),
    'tenant N cannot insert: TN009 instead of a NOT NULL or policy violation'
);
select throws_ok(
    $$delete from app.ledger$$,
    'TN009',
    null,
    'tenant N cannot delete either'
);
select pg_temp.act_as(:'tenant_a');
select is(
    (select count(*) from app.ledger), 3::bigint,
    'tenant A sees its three rows again'
);

-- Without a context: nothing visible, writes refused (TN001 comes first).
select tenancy.clear_context();
select is((select count(*) from app.ledger), 0::bigint, 'without a context tenancy_app sees no row');
select throws_ok(
    $$insert into app.ledger (amount) values (1)$$,
    'TN001',
    null,
    'without a context tenancy_app cannot insert'
);

-- The plan: the key read once (one initPlan), compared in the index.
select pg_temp.act_as(:'tenant_a');
set local enable_seqscan = off;
select pg_temp.plan_of($$select * from app.ledger where memo = 'a2'$$) as plan \gset
reset enable_seqscan;
select is(
    (select count(*) from regexp_matches(:'plan'::text, 'InitPlan', 'g')),
    1::bigint,
    'the policy reads the tenant key once per statement: one initPlan'
);
select matches(
    :'plan'::text,
    'Index Cond: \(\(account_key = \$0\)',
    'the key is an index condition (an index scan on account_key)'
);
select doesnt_match(:'plan'::text, 'Filter: [^\n]*account_key', 'account_key is not a per-row filter');

-- Parallel plans: the key is read once, in the leader (context_tenant_key is parallel
-- restricted), and the workers compare with it.
insert into app.ledger (amount, memo)
select
    1 as amount,
    'p ' || g.n as memo
from generate_series(1, 30000) as g (n);
select pg_temp.act_as(:'tenant_b');
insert into app.ledger (amount, memo)
select
    1 as amount,
    'p ' || g.n as memo
from generate_series(1, 20000) as g (n);
reset role;
analyze app.ledger;
select pg_temp.act_as(:'tenant_a');
set local max_parallel_workers_per_gather = 2;
set local parallel_setup_cost = 0;
set local parallel_tuple_cost = 0;
set local min_parallel_table_scan_size = 0;
set local min_parallel_index_scan_size = 0;
select matches(
    pg_temp.plan_of(
        $$select count(*) from app.ledger where memo like 'p %'$$, ', analyze, timing off, summary off'
    ),
    'Workers Launched: [1-9]',
    'a parallel plan over app.ledger runs with workers'
);
select is(
    (
        select count(*) from app.ledger
        where memo like 'p %'
    ),
    30000::bigint,
    'under a parallel plan tenant A sees its 30,000 rows only'
);
reset role;

select * from finish();
rollback;
