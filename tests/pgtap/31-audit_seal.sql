-- The audit trail's hash chain: row digests, seal_audit, verify_audit (altered, deleted and forged
-- rows, changed seals, anchors, retention), export_seal and redact_audit, each refusal paired with
-- the rightful call succeeding. pgTAP runs in one transaction, whose own audit rows are never
-- sealable in it (its xid is not below any snapshot's xmin): the fixture rows are written as
-- tenancy_audit_owner with explicit txids of transactions that have ended, just above the
-- sealing frontier. Tampering runs as the superuser (the immutability trigger disabled, as only a
-- superuser could) inside savepoints that are rolled back; what it observed is kept in psql
-- variables and checked after the rollback (a rolled-back savepoint takes pgTAP's records with
-- it). The frontier's behaviour with real concurrent transactions: tests/py/test_audit_seal.py.

begin;
select plan(81);

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

-- A copy of audit row p_id with the fields of p_change replaced.
create function pg_temp.changed_row(p_id bigint, p_change jsonb)
returns tenancy.audit_logs
language sql
as $$
    select jsonb_populate_record(null::tenancy.audit_logs, to_jsonb(l) || p_change)
    from tenancy.audit_logs as l where l.id = p_id
$$;

select
    gen_random_uuid() as t1,
    gen_random_uuid() as t2,
    gen_random_uuid() as t3,
    greatest((select s.frontier from tenancy.audit_seal_state as s), 3) as base,
    date_trunc('month', now() at time zone 'UTC')::date as this_month,
    (date_trunc('month', now() at time zone 'UTC') - interval '1 month')::date as last_month
\gset

-- A partition whose bounds were written in another time zone (+05), as a migration run there
-- writes them: a seal's month is that of the partition holding its rows.
create table tenancy.audit_logs_2099_01 partition of tenancy.audit_logs
for values from ('2099-01-01 00:00+05') to ('2099-02-01 00:00+05');

-- Fixture rows of ended transactions (txids base, base + 1, base + 2): tenant 1 in two months,
-- tenant 2 in this month and in the partition above, and two rows of no tenant. Names with
-- quotes and backslashes.
set local role tenancy_audit_owner;
insert into tenancy.audit_logs (
    tenant_id, logged_at, statement_at, txid, action, entity_type, entity_id, schema_name, table_name,
    old_data, new_data, changed_columns, actor_user_id, actor_role, metadata
)
select
    f.tenant_id,
    f.logged as logged_at,
    f.logged as statement_at,
    :'base'::bigint + (g.i % f.txids) as txid,
    'UPDATE' as action,
    '"app"."projects"' as entity_type,
    format('{"id": %s}', g.i) as entity_id,
    'app' as schema_name,
    'projects' as table_name,
    jsonb_build_object(
        'id', g.i, 'name', E'it''s a \\ name ' || g.i, 'email', 'old' || g.i || '@example.test'
    ) as old_data,
    jsonb_build_object(
        'id', g.i, 'name', E'it''s a \\ name ' || g.i, 'email', 'new' || g.i || '@example.test'
    ) as new_data,
    array['email'] as changed_columns,
    'auth0|user-' || g.i as actor_user_id,
    'owner' as actor_role,
    '{"request_id": "r-1"}'::jsonb as metadata
from (
    values
    (:'t1'::uuid, (:'last_month'::date + 3)::timestamp at time zone 'UTC', 1, 6, 2),
    (:'t1'::uuid, now(), 101, 108, 3),
    (:'t2'::uuid, now(), 201, 205, 3),
    (:'t2'::uuid, '2098-12-31 20:00+00', 209, 209, 1),
    (null, now(), 301, 302, 2)
) as f (tenant_id, logged, first_i, last_i, txids)
cross join lateral generate_series(f.first_i, f.last_i) as g (i);

-- A row written and rolled back (a savepoint here; rolled-back transactions: pytest).
savepoint gone;  -- noqa: PRS
with ghost as (
    insert into tenancy.audit_logs (tenant_id, txid, action, entity_type) values (:'t1', :base, 'DELETE', 'ghost')
    returning id
)
select id as ghost_id from ghost \gset
rollback to savepoint gone;
reset role;

-- Rows of this transaction, still running: a tenant created now (its membership is audited).
set local role tenancy_admin;
select tenancy.create_tenant('seal-three', 'Seal Three', 'auth0|seal-owner', :'t3') \gset
reset role;

select l.id as x from tenancy.audit_logs as l where l.tenant_id = :'t1' and l.entity_id = '{"id": 104}' \gset
select l.id as y from tenancy.audit_logs as l where l.tenant_id = :'t1' and l.entity_id = '{"id": 106}' \gset
select l.id as z from tenancy.audit_logs as l where l.tenant_id = :'t2' and l.entity_id = '{"id": 203}' \gset

-- Row digests ------------------------------------------------------------------------------------

select is(
    (select length(tenancy.audit_row_digest(l)) from tenancy.audit_logs as l where l.id = :x), 32,
    'a row digest is 32 bytes (SHA-256)'
);
select isnt(
    tenancy.audit_row_digest(pg_temp.changed_row(:x, '{"actor_role": ""}')),
    tenancy.audit_row_digest(pg_temp.changed_row(:x, '{"actor_role": null}')),
    'NULL and the empty string give different digests'
);
select isnt(
    tenancy.audit_row_digest(pg_temp.changed_row(:x, '{"schema_name": "ab", "table_name": "c"}')),
    tenancy.audit_row_digest(pg_temp.changed_row(:x, '{"schema_name": "a", "table_name": "bc"}')),
    'fields do not run into each other (header)'
);
select isnt(
    tenancy.audit_row_digest(pg_temp.changed_row(:x, '{"actor_user_id": "a,b", "actor_role": "c"}')),
    tenancy.audit_row_digest(pg_temp.changed_row(:x, '{"actor_user_id": "a", "actor_role": "b,c"}')),
    'fields do not run into each other (body), commas included'
);
select isnt(
    tenancy.audit_row_digest(pg_temp.changed_row(:x, '{"changed_columns": ["a", "b"]}')),
    tenancy.audit_row_digest(pg_temp.changed_row(:x, '{"changed_columns": ["b", "a"]}')),
    'the order of changed_columns counts'
);
select isnt(
    tenancy.audit_row_digest(pg_temp.changed_row(:x, '{"logged_at": "2026-01-01T00:00:00.000001Z"}')),
    tenancy.audit_row_digest(pg_temp.changed_row(:x, '{"logged_at": "2026-01-01T00:00:00Z"}')),
    'a microsecond of logged_at counts'
);
select tenancy.audit_row_digest(l) as digest_x from tenancy.audit_logs as l where l.id = :x \gset
set local timezone = 'Pacific/Chatham';
set local datestyle = 'SQL, DMY';
set local intervalstyle = 'sql_standard';
set local extra_float_digits = -3;
set local standard_conforming_strings = off;
select is(
    (select tenancy.audit_row_digest(l) from tenancy.audit_logs as l where l.id = :x), :'digest_x'::bytea,
    'the digest does not depend on TimeZone, DateStyle, IntervalStyle or string settings'
);
reset timezone;
reset datestyle;
reset intervalstyle;
reset extra_float_digits;
reset standard_conforming_strings;

-- The digests run as the caller without a SET clause (so that they are inlined): a caller's
-- operators that shadow pg_catalog's change nothing.
create schema seal_shadow;
create function seal_shadow.loud_textcat(text, text)
returns text
language plpgsql
as $$
begin
    raise exception 'seal_shadow.|| called';
end
$$;
create operator seal_shadow.|| (leftarg = text, rightarg = text, function = seal_shadow.loud_textcat); -- noqa: PRS
set local search_path = seal_shadow, pg_catalog, public;
select
    (select tenancy.audit_row_digest(l) from tenancy.audit_logs as l where l.id = :x) as shadowed_digest,
    tenancy.audit_seal_header(null, 1, '2026-01-01', 1, 2, 3, 4) as shadowed_header
\gset
reset search_path;
select is(:'shadowed_digest'::bytea, :'digest_x'::bytea, 'a shadowing || in the caller''s search_path changes no digest');
select is(
    :'shadowed_header'::bytea,
    convert_to('pgtenancy.audit_seal.v1,NULL,''1'',''20454'',''1'',''2'',''3'',''4''', 'UTF8'),
    'nor a seal header (tenant, seq, month in days since 1970, txids, counts)'
);

-- Sealing ----------------------------------------------------------------------------------------

set local role tenancy_app;
select is(pg_temp.sqlstate_of('select tenancy.seal_audit()'), '42501', 'tenancy_app cannot seal');
reset role;
set local role tenancy_auditor;
select is(pg_temp.sqlstate_of('select tenancy.seal_audit()'), '42501', 'tenancy_auditor cannot seal');
reset role;

set local role tenancy_service;
select tenants as seal1_tenants, sealed_rows as seal1_rows, frontier as seal1_frontier
from tenancy.seal_audit() \gset
reset role;

select ok(:seal1_rows >= 22 and :seal1_tenants >= 3, 'tenancy_service seals: the fixture rows and their tenants at least');
select is(
    (select s.frontier from tenancy.audit_seal_state as s), :seal1_frontier::bigint,
    'the state records the new frontier'
);
select ok(
    :seal1_frontier::bigint <= pg_current_xact_id()::text::bigint,
    'the frontier is not beyond this transaction, which is still running'
);
select results_eq(
    format(
        $q$select s.seq, s.month, s.row_count, s.total_rows, s.prev_head is null, cardinality(s.ids),
                  length(s.digests)
           from tenancy.audit_seals as s where s.tenant_id = %L order by s.seq$q$, :'t1'
    ),
    format(
        $q$values (1::bigint, %L::date, 6, 6::bigint, true, 6, 192), (2, %L::date, 8, 14, false, 8, 256)$q$,
        :'last_month', :'this_month'
    ),
    'tenant 1: one seal per month, chained (seq, total_rows, prev_head), 32 bytes per row'
);
select is(
    (select s.prev_head from tenancy.audit_seals as s where s.tenant_id = :'t1' and s.seq = 2),
    (select s.head from tenancy.audit_seals as s where s.tenant_id = :'t1' and s.seq = 1),
    'seal 2''s prev_head is seal 1''s head'
);
select is(
    (select s.ids from tenancy.audit_seals as s where s.tenant_id = :'t1' and s.seq = 2),
    (select array_agg(l.id order by l.txid, l.id) from tenancy.audit_logs as l
     where l.tenant_id = :'t1' and l.logged_at >= :'this_month'::timestamp at time zone 'UTC'),
    'a seal holds its rows in (txid, id) order'
);
select is(
    (select s.digests from tenancy.audit_seals as s where s.tenant_id = :'t1' and s.seq = 2),
    (select string_agg(tenancy.audit_row_digest(l), ''::bytea order by l.txid, l.id) from tenancy.audit_logs as l
     where l.tenant_id = :'t1' and l.logged_at >= :'this_month'::timestamp at time zone 'UTC'),
    'its digests are the rows'' digests, in the same order'
);
select is(
    (select s.head from tenancy.audit_seals as s where s.tenant_id = :'t1' and s.seq = 2),
    (select sha256(s.prev_head || tenancy.audit_seal_header(:'t1', 2, s.month, s.txid_from, s.txid_to, 8, 14) || s.digests)
     from tenancy.audit_seals as s where s.tenant_id = :'t1' and s.seq = 2),
    'head = sha256(prev_head || header || digests)'
);
select results_eq(
    format(
        $q$select s.seq, s.row_count, s.month from tenancy.audit_seals as s where s.tenant_id = %L order by s.seq$q$,
        :'t2'
    ),
    format($q$values (1::bigint, 5, %L::date), (2, 1, '2099-01-01')$q$, :'this_month'),
    'tenant 2: its own chain from seq 1; a row of 2098-12-31 20:00 UTC in the partition of 2099-01 (+05) is sealed as of 2099-01'
);
select is(
    (select count(*)::integer from tenancy.audit_seals as s cross join lateral unnest(s.ids) as u (id)
     where s.tenant_id is null and u.id in (
         select l.id from tenancy.audit_logs as l
         where l.tenant_id is null and l.entity_id in ('{"id": 301}', '{"id": 302}')
     )),
    2,
    'the rows of no tenant are sealed in a chain of their own'
);
select is(
    (select count(*)::integer from tenancy.audit_seals as s where :ghost_id = any(s.ids)), 0,
    'a rolled-back row is in no seal'
);
select is(
    (select count(*)::integer from tenancy.audit_seals as s where s.tenant_id = :'t3'), 0,
    'rows of a transaction still running are not sealed'
);
select is(
    (select count(*)::integer from (
        select u.id from tenancy.audit_seals as s cross join lateral unnest(s.ids) as u (id)
        group by u.id having count(*) > 1
    ) as d),
    0,
    'no row is in two seals'
);

set local role tenancy_admin;
select tenants as seal2_tenants, sealed_rows as seal2_rows, frontier as seal2_frontier
from tenancy.seal_audit() \gset
reset role;
select ok(
    :seal2_frontier::bigint >= :seal1_frontier::bigint
    and (:seal2_rows = 0 or :seal2_frontier::bigint > :seal1_frontier::bigint),
    'tenancy_admin seals too; a second round seals nothing new unless transactions ended meanwhile'
);
select is(
    (select count(*)::integer from tenancy.audit_seals as s where s.tenant_id in (:'t1', :'t2')), 4,
    'the second round adds no seal for rows already sealed'
);

-- Verifying --------------------------------------------------------------------------------------

set local role tenancy_app;
select is(pg_temp.sqlstate_of(format('select tenancy.verify_audit(%L)', :'t1')), '42501', 'tenancy_app cannot verify');
select is(pg_temp.sqlstate_of(format('select tenancy.export_seal(%L)', :'t1')), '42501', 'tenancy_app cannot export a seal');
reset role;

set local role tenancy_auditor;
select results_eq(
    format('select * from tenancy.verify_audit(%L)', :'t1'),
    $$values (true, 14::bigint, 2, null::bigint, null::text)$$,
    'tenancy_auditor verifies tenant 1: ok, 14 rows in 2 seals'
);
select results_eq(
    format('select ok, checked_rows, checked_seals from tenancy.verify_audit(%L)', :'t2'),
    $$values (true, 6::bigint, 2)$$,
    'tenant 2 verifies'
);
select ok(
    (select v.ok and v.checked_rows >= 2 from tenancy.verify_audit(null) as v),
    'the rows of no tenant verify'
);
select results_eq(
    format('select ok, checked_rows, checked_seals from tenancy.verify_audit(%L)', :'t3'),
    $$values (true, 0::bigint, 0)$$,
    'a tenant whose rows are not sealed yet verifies (nothing below the frontier)'
);
select tenancy.export_seal(:'t1') as anchor \gset
reset role;
select is(
    :'anchor'::jsonb - 'sealed_at',
    (select jsonb_build_object(
        'tenant_id', :'t1', 'seq', 2, 'head', encode(s.head, 'hex'), 'total_rows', 14,
        'month', to_char(:'this_month'::date, 'YYYY-MM'), 'frontier', :seal2_frontier::bigint
    ) from tenancy.audit_seals as s where s.tenant_id = :'t1' and s.seq = 2),
    'export_seal: the latest seal (tenant, seq, head in hex, total_rows, month, frontier)'
);
set local role tenancy_service;
select is(
    pg_temp.sqlstate_of(format('select tenancy.export_seal(%L)', :'t3')), 'P0002',
    'export_seal of a tenant with nothing sealed: P0002'
);
select results_eq(
    format('select ok, problem from tenancy.verify_audit(%L, %L)', :'t1', :'anchor'),
    $$values (true, null::text)$$,
    'tenancy_service verifies tenant 1 against its anchor'
);
select is(
    pg_temp.sqlstate_of(format('select tenancy.verify_audit(%L, %L)', :'t2', :'anchor')), '22023',
    'an anchor of another tenant is refused (22023)'
);
select is(
    pg_temp.sqlstate_of(format('select tenancy.verify_audit(%L, %L)', :'t1', '{"seq": 2, "head": "xyz"}')), '22023',
    'a malformed anchor is refused (22023)'
);
reset role;

-- Tampering, as a superuser who disables the trail's trigger -----------------------------------

savepoint tamper;  -- noqa: PRS
alter table tenancy.audit_logs disable trigger tenancy_audit_immutable;
update tenancy.audit_logs set new_data = jsonb_set(new_data, '{email}', '"forged@example.test"') where id = :x;
alter table tenancy.audit_logs enable always trigger tenancy_audit_immutable;
select ok as altered_ok, first_bad_id as altered_id, problem as altered_problem
from tenancy.verify_audit(:'t1') \gset
set local role tenancy_owner;
select pg_temp.sqlstate_of(format('select tenancy.redact_audit(array[%s], array[%L])', :x, 'email')) as launder_state \gset
reset role;
rollback to savepoint tamper;
select is(:'altered_ok'::boolean, false, 'an altered value is detected');
select is(:'altered_id'::bigint, :x::bigint, 'verify_audit names the altered row');
select matches(:'altered_problem'::text, format('^row %s altered \(position \d+ of seal 2\)$', :x), 'and says what and where');
select is(:'launder_state'::text, '55000', 'redact_audit refuses a sealed row that was altered (55000)');

-- A stored body digest counts only on a row marked redacted: one written around the trigger,
-- with the body then rewritten, does not hide the change.
savepoint tamper;  -- noqa: PRS
alter table tenancy.audit_logs disable trigger tenancy_audit_immutable;
update tenancy.audit_logs as l set body_digest = tenancy.audit_body_digest(l) where l.id = :x;
update tenancy.audit_logs set new_data = jsonb_set(new_data, '{email}', '"forged@example.test"') where id = :x;
alter table tenancy.audit_logs enable always trigger tenancy_audit_immutable;
select ok as digest_ok, first_bad_id as digest_id from tenancy.verify_audit(:'t1') \gset
rollback to savepoint tamper;
select is(:'digest_ok'::boolean, false, 'a body rewritten behind a stored digest without the redaction mark is detected');
select is(:'digest_id'::bigint, :x::bigint, 'verify_audit names that row');

savepoint tamper;  -- noqa: PRS
alter table tenancy.audit_logs disable trigger tenancy_audit_immutable;
delete from tenancy.audit_logs where id = :y;
alter table tenancy.audit_logs enable always trigger tenancy_audit_immutable;
select ok as deleted_ok, first_bad_id as deleted_id, problem as deleted_problem
from tenancy.verify_audit(:'t1') \gset
rollback to savepoint tamper;
select is(:'deleted_ok'::boolean, false, 'a deleted row is detected');
select is(:'deleted_id'::bigint, :y::bigint, 'verify_audit names the deleted row');
select matches(:'deleted_problem'::text, format('^row %s deleted', :y), 'as deleted');

savepoint tamper;  -- noqa: PRS
with forged as (
    insert into tenancy.audit_logs (tenant_id, logged_at, txid, action, entity_type, entity_id, new_data)
    values (:'t1', now(), :base + 1, 'INSERT', '"app"."projects"', '{"id": 999}', '{"id": 999}')
    returning id
)
select id as forged_id from forged \gset
select ok as forged_ok, first_bad_id as forged_bad, problem as forged_problem
from tenancy.verify_audit(:'t1') \gset
set local role tenancy_owner;
select pg_temp.sqlstate_of(format('select tenancy.redact_audit(array[%s], array[%L])', :forged_id, 'id')) as launder_forged \gset
reset role;
rollback to savepoint tamper;
select is(:'forged_ok'::boolean, false, 'a row forged into a sealed range of transactions is detected');
select is(:'forged_bad'::bigint, :forged_id::bigint, 'verify_audit names the forged row');
select matches(:'forged_problem'::text, 'inserted out of order', 'as inserted out of order');
select is(:'launder_forged'::text, '55000', 'redact_audit refuses a row below the frontier that no seal holds (55000)');

savepoint tamper;  -- noqa: PRS
update tenancy.audit_seals set head = sha256(head) where tenant_id = :'t1' and seq = 1;
select ok as head_ok, coalesce(first_bad_id::text, 'none') as head_bad, problem as head_problem from tenancy.verify_audit(:'t1') \gset
rollback to savepoint tamper;
select is(:'head_ok'::boolean, false, 'a changed seal head is detected');
select is(:'head_bad'::text, 'none', 'no row is named for a seal''s problem');
select is(:'head_problem'::text, 'seal 1: its head does not match its contents (the seal was changed)', 'the seal is named');

savepoint tamper;  -- noqa: PRS
update tenancy.audit_seals set digests = overlay(digests placing '\x00'::bytea from 40 for 1)
where tenant_id = :'t1' and seq = 2;
select ok as digests_ok, problem as digests_problem from tenancy.verify_audit(:'t1') \gset
rollback to savepoint tamper;
select is(:'digests_ok'::boolean, false, 'a changed digest in a seal is detected');
select is(:'digests_problem'::text, 'seal 2: its head does not match its contents (the seal was changed)', 'in seal 2');

savepoint tamper;  -- noqa: PRS
delete from tenancy.audit_seals where tenant_id = :'t1' and seq = 1;
select ok as gap_ok, problem as gap_problem from tenancy.verify_audit(:'t1') \gset
rollback to savepoint tamper;
select is(:'gap_ok'::boolean, false, 'a deleted seal is detected');
select is(:'gap_problem'::text, 'the chain starts at seal 2: seal 1 is missing', 'as a gap in the chain');

savepoint tamper;  -- noqa: PRS
update tenancy.audit_seal_state set frontier = :base;
select sealed_rows as resealed_rows from tenancy.seal_audit() \gset
select ok as resealed_ok, first_bad_id as resealed_id, problem as resealed_problem
from tenancy.verify_audit(:'t1') \gset
rollback to savepoint tamper;
select ok(:resealed_rows >= 22, 'a frontier moved back makes seal_audit seal rows again');
select is(:'resealed_ok'::boolean, false, 'a row in two seals is detected');
select matches(
    :'resealed_problem'::text, format('^row %s sealed more than once \(position 1 of seal 1\)$', :resealed_id),
    'as sealed more than once, at its first place in the chain'
);

-- A superuser who rewrites a row and recomputes the chain after it: only the anchor tells.
savepoint tamper;  -- noqa: PRS
alter table tenancy.audit_logs disable trigger tenancy_audit_immutable;
update tenancy.audit_logs set new_data = jsonb_set(new_data, '{email}', '"rewritten@example.test"') where id = :x;
alter table tenancy.audit_logs enable always trigger tenancy_audit_immutable;
update tenancy.audit_seals as s
set digests = overlay(
    s.digests placing (select tenancy.audit_row_digest(l) from tenancy.audit_logs as l where l.id = :x)
    from (array_position(s.ids, :x::bigint) - 1) * 32 + 1 for 32
)
where s.tenant_id = :'t1' and s.seq = 2;
update tenancy.audit_seals as s
set head = sha256(
    s.prev_head || tenancy.audit_seal_header(s.tenant_id, s.seq, s.month, s.txid_from, s.txid_to, s.row_count, s.total_rows)
    || s.digests
)
where s.tenant_id = :'t1' and s.seq = 2;
select ok as rewritten_ok from tenancy.verify_audit(:'t1') \gset
select ok as anchored_ok, problem as anchored_problem from tenancy.verify_audit(:'t1', :'anchor') \gset
rollback to savepoint tamper;
select is(:'rewritten_ok'::boolean, true, 'a rewritten and re-chained trail verifies on its own');
select is(:'anchored_ok'::boolean, false, 'but not against the anchor exported before');
select matches(:'anchored_problem'::text, '^seal 2 does not match the anchor: head [0-9a-f]{64}, anchored [0-9a-f]{64}$', 'the anchored seal is named');

-- Retention: seals of months whose partitions were dropped are checked by their chain alone.
savepoint tamper;  -- noqa: PRS
alter table tenancy.audit_logs disable trigger tenancy_audit_immutable;
delete from tenancy.audit_logs where tenant_id = :'t1' and logged_at < :'this_month'::timestamp at time zone 'UTC';
alter table tenancy.audit_logs enable always trigger tenancy_audit_immutable;
select ok as dropped_ok from tenancy.verify_audit(:'t1') \gset
insert into tenancy.audit_retention (before_month, partitions, row_count)
values (:'this_month', '{}', 6);
select ok as retained_ok, checked_rows as retained_rows, checked_seals as retained_seals
from tenancy.verify_audit(:'t1') \gset
rollback to savepoint tamper;
select is(:'dropped_ok'::boolean, false, 'rows of an earlier month gone without a retention record: reported');
select is(:'retained_ok'::boolean, true, 'after a retention cut, the seals before it are checked by their chain');
select is(:'retained_rows'::bigint, 8::bigint, 'and the rows after it against the trail');
select is(:'retained_seals'::integer, 2, 'every seal''s chain is checked');

-- Redaction -------------------------------------------------------------------------------------

select tenancy.audit_row_digest(l) as digest_z from tenancy.audit_logs as l where l.id = :z \gset
select id as own_row from tenancy.audit_logs where tenant_id = :'t3' order by id limit 1 \gset
select tenancy.audit_row_digest(l) as digest_own from tenancy.audit_logs as l where l.id = :own_row \gset

set local role tenancy_app;
select is(pg_temp.sqlstate_of(format('select tenancy.redact_audit(array[%s], array[%L])', :x, 'email')), '42501', 'tenancy_app cannot redact');
reset role;
set local role tenancy_service;
select is(pg_temp.sqlstate_of(format('select tenancy.redact_audit(array[%s], array[%L])', :x, 'email')), '42501', 'tenancy_service cannot redact');
reset role;
set local role tenancy_admin;
select is(pg_temp.sqlstate_of(format('select tenancy.redact_audit(array[%s], array[%L])', :x, 'email')), '42501', 'tenancy_admin cannot redact');
reset role;

set local role tenancy_owner;
select is(pg_temp.sqlstate_of('select tenancy.redact_audit(null, array[''email''])'), '22023', 'redact_audit: NULL ids are refused (22023)');
select is(pg_temp.sqlstate_of(format('select tenancy.redact_audit(array[%s], %L)', :x, '{}')), '22023', 'no column to redact is refused (22023)');
select is(
    tenancy.redact_audit(array[:x, :z, :own_row], array['email', 'user_id', 'not_there']), 3,
    'tenancy_owner redacts a sealed row of each tenant and an unsealed one'
);
select is(tenancy.redact_audit(array[:x], array['email']), 0, 'redacting the same values again changes nothing');
reset role;

select results_eq(
    format(
        $q$select l.old_data -> 'email', l.new_data -> 'email', l.new_data ->> 'name', l.redacted_at is not null,
                  l.body_digest is not null
           from tenancy.audit_logs as l where l.id = %s$q$, :x
    ),
    format($q$values ('null'::jsonb, 'null'::jsonb, %L, true, true)$q$, E'it''s a \\ name 104'),
    'the named key is JSON null in old and new data, the rest kept, body_digest and redacted_at set'
);
select is(
    (select tenancy.audit_row_digest(l) from tenancy.audit_logs as l where l.id = :x), :'digest_x'::bytea,
    'a redacted row keeps its digest'
);
select is(
    (select tenancy.audit_row_digest(l) from tenancy.audit_logs as l where l.id = :own_row), :'digest_own'::bytea,
    'so does a row redacted before it is sealed'
);
set local role tenancy_auditor;
select results_eq(
    format('select ok, checked_rows from tenancy.verify_audit(%L, %L)', :'t1', :'anchor'),
    $$values (true, 14::bigint)$$,
    'tenant 1 still verifies after redaction, anchor included'
);
select is((select v.ok from tenancy.verify_audit(:'t2') as v), true, 'and tenant 2');
reset role;

set local role tenancy_owner;
select is(tenancy.redact_audit(array[:x], array['name']), 1, 'a second redaction of other values of the row');
reset role;
select is(
    (select tenancy.audit_row_digest(l) from tenancy.audit_logs as l where l.id = :x), :'digest_x'::bytea,
    'keeps the body digest of the first'
);

select * from finish();
rollback;
