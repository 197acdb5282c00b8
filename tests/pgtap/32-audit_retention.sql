-- Retention of the audit trail: partitions created ahead, legal holds, whole partitions dropped.
-- Fixtures: tenants by tenancy_admin; old partitions, their rows and the seal frontier written
-- as tenancy_audit_owner (exempt from row level security; the immutability trigger lets inserts
-- through), as the migrations and tenancy.seal_audit would. Months are counted from now().

begin;
select plan(84);

\ir setup/helpers.psql

-- sqlstate_of(statement): the SQLSTATE a statement raises as the current role, NULL when it runs.
create function pg_temp.sqlstate_of(p_statement text)
returns text
language plpgsql
as $$
begin
    execute p_statement;
    return null;
exception when others then
    return sqlstate;
end
$$;

-- sqlstate_of_as(role, statement): the same, run as a role.
create function pg_temp.sqlstate_of_as(p_role text, p_statement text)
returns text
language plpgsql
as $$
declare
    v_state text;
begin
    execute format('set local role %I', p_role);
    v_state := pg_temp.sqlstate_of(p_statement);
    reset role;
    return v_state;
end
$$;

-- partitions(): the monthly partitions of tenancy.audit_logs, by name.
create function pg_temp.partitions()
returns text[]
language sql
as $$
    select coalesce(array_agg(c.relname::text order by c.relname), '{}')
    from pg_inherits as i
    inner join pg_class as c on c.oid = i.inhrelid
    where i.inhparent = 'tenancy.audit_logs'::regclass and c.relname ~ '^audit_logs_[0-9]{4}_[0-9]{2}$'
$$;

select
    date_trunc('month', now())::date as m0,
    (date_trunc('month', now()) - interval '1 month')::date as m_1,
    (date_trunc('month', now()) - interval '2 months')::date as m_2,
    (date_trunc('month', now()) - interval '3 months')::date as m_3,
    'audit_logs_' || to_char(now() - interval '2 months', 'YYYY_MM') as p_2,
    'audit_logs_' || to_char(now() - interval '3 months', 'YYYY_MM') as p_3,
    'audit_logs_' || to_char(now() + interval '4 months', 'YYYY_MM') as p4,
    'audit_logs_' || to_char(now() + interval '5 months', 'YYYY_MM') as p5,
    'audit_logs_' || to_char(now() + interval '6 months', 'YYYY_MM') as p6,
    'audit_logs_' || to_char(now() + interval '7 months', 'YYYY_MM') as p7,
    'audit_logs_' || to_char(now() + interval '8 months', 'YYYY_MM') as p8,
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as owner_b
\gset

set local role tenancy_admin;
select tenancy.create_tenant('retention-a', 'Retention A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant('retention-b', 'Retention B', :'owner_b') as tenant_b \gset
reset role;

-- ensure_audit_partitions: months ahead ---------------------------------------------------------

-- The migration made this month and the next three (and the previous one): with 3 ahead there is
-- nothing left to do; with 6 ahead, three more.
set local role tenancy_service;
select is(tenancy.ensure_audit_partitions(3), 0, 'ensure_audit_partitions(3) creates nothing the migration made');
select is(tenancy.ensure_audit_partitions(), 0, 'three months ahead is the default');
reset role;
select ok(
    not (pg_temp.partitions() && array[:'p4', :'p5', :'p6']),
    'partitions 4 to 6 months ahead do not exist yet'
);
set local role tenancy_service;
select is(tenancy.ensure_audit_partitions(6), 3, 'ensure_audit_partitions(6) creates three partitions, as tenancy_service');
reset role;
select ok(
    pg_temp.partitions() @> array[:'p4', :'p5', :'p6'] and not (pg_temp.partitions() && array[:'p7']),
    'they are audit_logs_YYYY_MM, 4 to 6 months ahead, and no more'
);
select
    is(
        pg_get_expr(c.relpartbound, c.oid),
        format(
            'FOR VALUES FROM (%L) TO (%L)',
            (:'m0'::date + interval '4 months')::timestamptz, (:'m0'::date + interval '5 months')::timestamptz
        ),
        'its bounds are the first of its month to the first of the next, as migration 0019''s'
    )
from pg_class as c
where c.oid = format('tenancy.%I', :'p4')::regclass;
select is(
    (
        select t.tgenabled::text
        from pg_trigger as t
        where t.tgrelid = format('tenancy.%I', :'p4')::regclass and t.tgname = 'tenancy_audit_no_truncate'
    ),
    'A',
    'a new partition has the TRUNCATE trigger, ENABLE ALWAYS'
);
select is(
    (
        select t.tgenabled::text
        from pg_trigger as t
        where t.tgrelid = format('tenancy.%I', :'p4')::regclass and t.tgname = 'tenancy_audit_immutable'
    ),
    'A',
    'a new partition has the row trigger cloned from the parent, ENABLE ALWAYS'
);
select is(
    (
        select pg_catalog.obj_description(p.oid, 'pg_trigger') is not null
        from pg_trigger as p
        where p.tgrelid = format('tenancy.%I', :'p6')::regclass and p.tgname = 'tenancy_audit_no_truncate'
    ),
    true,
    'the TRUNCATE trigger of a new partition carries its comment'
);
select is(
    pg_catalog.obj_description(format('tenancy.%I', :'p6')::regclass, 'pg_class'),
    format(
        'pgtenancy: the rows of tenancy.audit_logs logged in %s (a partition, made by '
        'tenancy.ensure_audit_partitions; dropped whole by tenancy.drop_audit_before).',
        to_char(now() + interval '6 months', 'YYYY-MM')
    ),
    'a new partition carries its comment'
);
-- A row logged at the first instant of the month and at the last one lands in it.
set local role tenancy_audit_owner;
insert into tenancy.audit_logs (txid, action, entity_type, logged_at)
values
(1, 'test.bound', 'test', :'m0'::date + interval '4 months'),
(1, 'test.bound', 'test', :'m0'::date + interval '5 months' - interval '1 microsecond');
reset role;
select is(
    (
        select array_agg(a.tableoid::regclass::text) from tenancy.audit_logs as a
        where a.action = 'test.bound'
    ),
    array[format('tenancy.%s', :'p4'), format('tenancy.%s', :'p4')],
    'rows of the first and the last instant of the month are routed to its partition'
);
select throws_ok(
    format('truncate tenancy.%I', :'p4'), 'TN016', null,
    'TRUNCATE of a new partition is refused (TN016), even for a superuser'
);
select throws_ok(
    format('delete from tenancy.%I', :'p4'), 'TN016', null,
    'DELETE from a new partition is refused (TN016), even for a superuser'
);
set local role tenancy_audit_owner;
select throws_ok(
    format('truncate tenancy.%I', :'p5'), 'TN016', null,
    'TRUNCATE of a new partition is refused to its owner (TN016)'
);
reset role;

-- Idempotent.
set local role tenancy_admin;
select is(tenancy.ensure_audit_partitions(6), 0, 'ensure_audit_partitions(6) again creates nothing, as tenancy_admin');
select is(tenancy.ensure_audit_partitions(0), 0, 'ensure_audit_partitions(0): this month exists');
reset role;

-- A partition cloned from a parent whose row trigger is merely enabled (PostgreSQL copies the
-- parent's state) is made ENABLE ALWAYS.
set local role tenancy_audit_owner;
alter table tenancy.audit_logs enable trigger tenancy_audit_immutable;
reset role;
select is(
    (
        select t.tgenabled::text from pg_trigger as t
        where t.tgrelid = 'tenancy.audit_logs'::regclass and t.tgname = 'tenancy_audit_immutable'
    ),
    'O', 'set up: the parent''s row trigger is only ENABLE (origin)'
);
set local role tenancy_admin;
select is(tenancy.ensure_audit_partitions(7), 1, 'ensure_audit_partitions(7) creates one more');
reset role;
select is(
    (
        select t.tgenabled::text from pg_trigger as t
        where t.tgrelid = format('tenancy.%I', :'p7')::regclass and t.tgname = 'tenancy_audit_immutable'
    ),
    'A', 'its row trigger is made ENABLE ALWAYS all the same'
);
set local role tenancy_audit_owner;
alter table tenancy.audit_logs enable always trigger tenancy_audit_immutable;
reset role;

-- Rows of a month already in the default partition: the month is skipped with a NOTICE.
set local role tenancy_audit_owner;
insert into tenancy.audit_logs (txid, action, entity_type, logged_at)
values (1, 'test.default', 'test', :'m0'::date + interval '8 months' + interval '3 days');
reset role;
select is(
    (
        select a.tableoid::regclass::text from tenancy.audit_logs as a
        where a.action = 'test.default'
    ),
    'tenancy.audit_logs_default', 'set up: a row 8 months ahead is in the default partition'
);
set local client_min_messages = warning;  -- the NOTICE about the skipped month
set local role tenancy_admin;
select is(tenancy.ensure_audit_partitions(9), 1, 'ensure_audit_partitions(9) skips that month, creates the 9th');
reset role;
select ok(not (pg_temp.partitions() && array[:'p8']), 'the month held by the default partition has no partition');
set local role tenancy_admin;
select is(tenancy.ensure_audit_partitions(9), 0, 'and calling again creates nothing, raising nothing');
reset role;
reset client_min_messages;

-- Bad arguments: 22023, naming the value.
set local role tenancy_admin;
select throws_ok(
    'select tenancy.ensure_audit_partitions(25)', '22023',
    'months ahead 25 is out of range: 0 to 24 months after the current one', '25 months ahead is refused (22023)'
);
select throws_ok(
    'select tenancy.ensure_audit_partitions(-1)', '22023',
    'months ahead -1 is out of range: 0 to 24 months after the current one', '-1 months ahead is refused (22023)'
);
select throws_ok(
    'select tenancy.ensure_audit_partitions(null)', '22023',
    'months ahead NULL is out of range: 0 to 24 months after the current one', 'NULL months ahead is refused (22023)'
);
reset role;

-- Who may call it.
set local role tenancy_app;
select throws_ok(
    'select tenancy.ensure_audit_partitions(3)', '42501',
    'permission denied for function ensure_audit_partitions', 'tenancy_app cannot call ensure_audit_partitions'
);
set local role tenancy_auditor;
select throws_ok(
    'select tenancy.ensure_audit_partitions(3)', '42501',
    'permission denied for function ensure_audit_partitions', 'tenancy_auditor cannot call ensure_audit_partitions'
);
set local role tenancy_owner;
select throws_ok(
    'select tenancy.ensure_audit_partitions(3)', '42501',
    'permission denied for function ensure_audit_partitions', 'tenancy_owner cannot call ensure_audit_partitions'
);
reset role;

-- Old partitions with rows: A's in the month three back, B's in the month two back -------------

set local role tenancy_audit_owner;
do $$
declare
    v_month date;
begin
    for i in 2..3 loop
        v_month := (date_trunc('month', now()) - make_interval(months => i))::date;
        if to_regclass(format('tenancy.audit_logs_%s', to_char(v_month, 'YYYY_MM'))) is null then
            execute format(
                'create table tenancy.%I partition of tenancy.audit_logs for values from (%L) to (%L)',
                'audit_logs_' || to_char(v_month, 'YYYY_MM'), v_month::timestamptz,
                (v_month + interval '1 month')::timestamptz
            );
        end if;
    end loop;
end
$$;
insert into tenancy.audit_logs (tenant_id, txid, action, entity_type, logged_at)
values
(:'tenant_a', 100, 'test.old', 'test', :'m_3'::date + interval '1 day'),
(:'tenant_a', 101, 'test.old', 'test', :'m_3'::date + interval '2 days'),
(:'tenant_b', 102, 'test.old', 'test', :'m_2'::date + interval '1 day'),
(:'tenant_b', 103, 'test.old', 'test', :'m_2'::date + interval '2 days'),
(:'tenant_b', 104, 'test.old', 'test', :'m_2'::date + interval '3 days'),
(null, 105, 'test.old', 'test', :'m_2'::date + interval '4 days');
-- Sealed up to transaction 102 only.
update tenancy.audit_seal_state set frontier = 103;
reset role;
select is(
    (select count(*)::int from tenancy.audit_retention), 0, 'set up: nothing was dropped before'
);

-- Not sealed yet: 55000, nothing dropped.
set local role tenancy_admin;
select throws_ok(
    format('select * from tenancy.drop_audit_before(%L)', :'m_1'), '55000',
    format(
        'partition tenancy.%s holds 3 audit row(s) not sealed yet (transactions from 103; the seals reach 103): seal first',
        :'p_2'
    ),
    'a partition holding rows not sealed yet is not dropped (55000, seal first)'
);
reset role;
select ok(pg_temp.partitions() @> array[:'p_3', :'p_2'], 'both old partitions are still there');
select is((select count(*)::int from tenancy.audit_retention), 0, 'no retention row was written');

-- Sealed: frontier past every row.
set local role tenancy_audit_owner;
update tenancy.audit_seal_state set frontier = 1000;
reset role;

-- Legal holds ------------------------------------------------------------------------------------

set local role tenancy_admin;
select lives_ok(
    format($$select tenancy.set_legal_hold(%L, true, 'case 2026-17: preserve everything')$$, :'tenant_a'),
    'tenancy_admin puts tenant A under legal hold'
);
select lives_ok(
    format($$select tenancy.set_legal_hold(%L, true, 'matter 88')$$, :'tenant_b'),
    'tenancy_admin puts tenant B under legal hold'
);
select lives_ok(
    format($$select tenancy.set_legal_hold(%L, true, 'matter 88, widened')$$, :'tenant_b'),
    'holding B again raises nothing'
);
reset role;
select is(
    (
        select reason from tenancy.audit_legal_holds
        where tenant_id = :'tenant_b'
    ),
    'matter 88, widened', 'holding again replaces the reason'
);
select is(
    (
        select count(*)::int from tenancy.audit_legal_holds
        where tenant_id in (:'tenant_a', :'tenant_b')
    ),
    2, 'two holds'
);
select is(
    (
        select array_agg(e.kind || ' ' || e.reason order by e.id)
        from tenancy.security_events as e
        where e.details ->> 'tenant_id' = :'tenant_b'
    ),
    array['audit.legal_hold_set matter 88', 'audit.legal_hold_set matter 88, widened'],
    'each hold is a security event audit.legal_hold_set with its reason'
);
select is(
    (
        select
            e.tenant_id is null and e.details ->> 'previous_reason' = 'matter 88'
            and e.details ->> 'database_user' = session_user
        from tenancy.security_events as e
        where e.details ->> 'tenant_id' = :'tenant_b' and e.reason = 'matter 88, widened'
    ),
    true,
    'the event names the tenant in its details (not its tenant_id), the previous reason and the database user'
);

-- Both held: the drop names them, drops nothing.
set local role tenancy_admin;
select throws_like(
    format('select * from tenancy.drop_audit_before(%L)', :'m_1'),
    format(
        'audit partitions before %s are kept: 2 tenant(s) under legal hold have rows in them: %%%s%%%s%%',
        :'m_1', least(:'tenant_a', :'tenant_b'), greatest(:'tenant_a', :'tenant_b')
    ),
    'a drop reaching held tenants'' rows is refused, naming both tenants (TN017)'
);
select is(
    pg_temp.sqlstate_of(format('select * from tenancy.drop_audit_before(%L)', :'m_1')), 'TN017',
    'its SQLSTATE is TN017'
);
reset role;
select ok(pg_temp.partitions() @> array[:'p_3', :'p_2'], 'both old partitions are still there');
select is((select count(*)::int from tenancy.audit_retention), 0, 'no retention row was written');

-- A released, B still held: the month three back (A's rows only) may go, the one two back not.
set local role tenancy_admin;
select lives_ok(
    format($$select tenancy.set_legal_hold(%L, false, 'case 2026-17 closed')$$, :'tenant_a'),
    'tenancy_admin releases tenant A'
);
select lives_ok(
    format('select tenancy.set_legal_hold(%L, false)', :'tenant_a'),
    'releasing a tenant not held raises nothing'
);
reset role;
select is(
    (
        select array_agg(e.kind || ' ' || e.reason order by e.id)
        from tenancy.security_events as e
        where e.details ->> 'tenant_id' = :'tenant_a'
    ),
    array[
        'audit.legal_hold_set case 2026-17: preserve everything',
        'audit.legal_hold_released case 2026-17 closed'
    ],
    'the release is an audit.legal_hold_released event; the second release, a no-op, none'
);
set local role tenancy_admin;
select throws_like(
    format('select * from tenancy.drop_audit_before(%L)', :'m_1'),
    format('%%1 tenant(s) under legal hold have rows in them: %s', :'tenant_b'),
    'dropping through the month B has rows in is refused, naming B only (TN017)'
);
select results_eq(
    format('select partition_name, row_count from tenancy.drop_audit_before(%L)', :'m_2'),
    format('values (%L, 2::bigint)', :'p_3'),
    'drop_audit_before(two months back) drops the partition of A''s released rows, and returns its 2 rows'
);
reset role;
select ok(
    not (pg_temp.partitions() && array[:'p_3']) and pg_temp.partitions() @> array[:'p_2'],
    'that partition is gone; B''s is there'
);
select results_eq(
    'select before_month, partitions, row_count from tenancy.audit_retention',
    format('values (%L::date, array[%L], 2::bigint)', :'m_2', :'p_3'),
    'tenancy.audit_retention records the month, the partition and its row count'
);

-- B released: the rest goes.
set local role tenancy_admin;
select lives_ok(
    format('select tenancy.set_legal_hold(%L, false)', :'tenant_b'),
    'tenancy_admin releases tenant B (no reason needed)'
);
select results_eq(
    format('select partition_name, row_count from tenancy.drop_audit_before(%L)', :'m_1'),
    format('values (%L, 4::bigint)', :'p_2'),
    'drop_audit_before(previous month) now drops B''s partition with its 4 rows (one of no tenant)'
);
reset role;
select ok(not (pg_temp.partitions() && array[:'p_3', :'p_2']), 'both old partitions are gone');
select is(to_regclass('tenancy.audit_logs_default')::text, 'tenancy.audit_logs_default', 'the default partition stays');
select is(
    (select max(before_month) from tenancy.audit_retention), :'m_1'::date,
    'max(before_month) of tenancy.audit_retention is the previous month'
);
select is(
    (
        select count(*)::int from tenancy.audit_logs
        where action = 'test.default'
    ),
    1, 'the default partition kept its rows'
);
set local role tenancy_admin;
select is_empty(
    format('select * from tenancy.drop_audit_before(%L)', :'m_1'),
    'a second drop through the same month drops nothing'
);
reset role;
select is((select count(*)::int from tenancy.audit_retention), 2, 'and records nothing');

-- Bad months and bad holds ------------------------------------------------------------------------

set local role tenancy_admin;
select throws_ok(
    format('select * from tenancy.drop_audit_before(%L)', :'m_1'::date + 14), '22023',
    format(
        'month %s is not valid: the first day of a month, %s (the previous month) or earlier, is required',
        :'m_1'::date + 14, :'m_1'
    ),
    'a day other than the first of a month is refused (22023, naming it)'
);
select throws_like(
    format('select * from tenancy.drop_audit_before(%L)', :'m0'),
    format('month %s is not valid%%', :'m0'),
    'the current month is refused (22023)'
);
select throws_like(
    format('select * from tenancy.drop_audit_before(%L)', :'m0'::date + interval '1 month'),
    format('month %s is not valid%%', (:'m0'::date + interval '1 month')::date),
    'next month is refused (22023)'
);
select throws_like(
    'select * from tenancy.drop_audit_before(null)', 'month NULL is not valid%', 'NULL is refused (22023)'
);
select is(
    pg_temp.sqlstate_of(format('select * from tenancy.drop_audit_before(%L)', :'m0')), '22023',
    'their SQLSTATE is 22023'
);
select throws_ok(
    format('select tenancy.set_legal_hold(%L, true)', :'tenant_a'), '22023', 'invalid legal hold reason NULL',
    'a hold without a reason is refused (22023)'
);
select throws_ok(
    format('select tenancy.set_legal_hold(%L, true, %L)', :'tenant_a', '   '), '22023',
    'invalid legal hold reason "   "', 'a blank reason is refused (22023)'
);
select throws_ok(
    format('select tenancy.set_legal_hold(%L, true, %L)', :'tenant_a', E'case\n7'), '22023',
    'invalid legal hold reason "case\n7"', 'a reason with a control character is refused (22023)'
);
select throws_ok(
    format('select tenancy.set_legal_hold(%L, true, %L)', :'tenant_a', repeat('x', 501)), '22023', null,
    'a reason of 501 characters is refused (22023)'
);
select lives_ok(
    format('select tenancy.set_legal_hold(%L, true, %L)', :'tenant_a', repeat('x', 500)),
    'a reason of 500 characters is taken'
);
select throws_ok(
    format('select tenancy.set_legal_hold(%L, null, %L)', :'tenant_a', 'x'), '22023', null,
    'a NULL hold is refused (22023)'
);
select throws_ok(
    $$select tenancy.set_legal_hold('00000000-0000-4000-8000-000000000001', true, 'case 1')$$, 'P0002',
    'tenant 00000000-0000-4000-8000-000000000001 does not exist', 'an unknown tenant is refused (P0002)'
);
select throws_ok(
    $$select tenancy.set_legal_hold('00000000-0000-4000-8000-000000000001', false)$$, 'P0002',
    'tenant 00000000-0000-4000-8000-000000000001 does not exist', 'releasing an unknown tenant is refused (P0002)'
);
reset role;

-- Who may drop, hold and see holds ----------------------------------------------------------------

select
    is(
        array_agg(r.role || ': ' || pg_temp.sqlstate_of_as(r.role, s.stmt) order by s.n, r.role),
        array_agg(r.role || ': 42501' order by s.n, r.role),
        'only tenancy_admin may call drop_audit_before and set_legal_hold (42501 for the others)'
    )
from (values ('tenancy_app'), ('tenancy_service'), ('tenancy_auditor'), ('tenancy_owner')) as r (role)
cross join (
    values
    (1, format('select * from tenancy.drop_audit_before(%L)', :'m_1')),
    (2, format($$select tenancy.set_legal_hold(%L, true, 'x')$$, :'tenant_a')),
    (3, format('select tenancy.set_legal_hold(%L, false)', :'tenant_a'))
) as s (n, stmt);

-- The tenant's own owner, in its context, sees neither the hold nor its events (but an event of
-- its tenant).
select tenancy.record_security_event('test.visible', 'seen by the tenant', :'tenant_a') is not null as recorded \gset
select pg_temp.act_as(:'tenant_a', :'owner_a');
select throws_ok(
    'select * from tenancy.audit_legal_holds', '42501', 'permission denied for table audit_legal_holds',
    'tenancy_app cannot read the holds'
);
select throws_ok(
    format('delete from tenancy.audit_legal_holds where tenant_id = %L', :'tenant_a'), '42501',
    'permission denied for table audit_legal_holds', 'tenancy_app cannot release a hold by hand'
);
select throws_ok(
    format($$insert into tenancy.audit_legal_holds (tenant_id, reason) values (%L, 'x')$$, :'tenant_b'), '42501',
    'permission denied for table audit_legal_holds', 'tenancy_app cannot add a hold by hand'
);
select is(
    (
        select count(*)::int from tenancy.tenant_security_events() as e
        where e.kind like 'audit.legal_hold%'
    ),
    0, 'the tenant''s owner sees no legal hold event among its security events'
);
select is(
    (
        select count(*)::int from tenancy.tenant_security_events() as e
        where e.kind = 'test.visible'
    ),
    1, 'while it sees an event of its tenant'
);
reset role;
set local role tenancy_service;
select throws_ok(
    format('update tenancy.audit_legal_holds set reason = %L', 'y'), '42501',
    'permission denied for table audit_legal_holds', 'tenancy_service cannot change a hold by hand'
);
set local role tenancy_admin;
select throws_ok(
    format('delete from tenancy.audit_legal_holds where tenant_id = %L', :'tenant_a'), '42501',
    'permission denied for table audit_legal_holds', 'tenancy_admin changes holds only through set_legal_hold'
);
set local role tenancy_owner;
select throws_ok(
    format('delete from tenancy.audit_legal_holds where tenant_id = %L', :'tenant_a'), '42501',
    'permission denied for table audit_legal_holds', 'tenancy_owner cannot release a hold by hand'
);
set local role tenancy_auditor;
select is(
    (
        select count(*)::int from tenancy.audit_legal_holds
        where tenant_id = :'tenant_a'
    ), 1,
    'tenancy_auditor reads the holds'
);
select is(
    (
        select count(*)::int
        from tenancy.security_events
        where
            kind like 'audit.legal_hold%'
            and details ->> 'tenant_id' = :'tenant_a'
    ), 3,
    'tenancy_auditor reads the hold events'
);
select throws_ok(
    format('delete from tenancy.audit_legal_holds where tenant_id = %L', :'tenant_a'), '42501',
    'permission denied for table audit_legal_holds', 'tenancy_auditor cannot release a hold by hand'
);
reset role;

select * from finish();
rollback;
