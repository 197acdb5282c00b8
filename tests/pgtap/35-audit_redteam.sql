-- Attacks on the audit trail: request metadata not set by set_request_metadata, and rows forged with a transaction id no transaction had.
-- Each refusal is paired with the rightful operation succeeding.
-- 1. tenancy.request_metadata is a plain setting that any role may set with set_config; only
--    what tenancy.set_request_metadata set in this transaction reaches audit rows. A raw value
--    (as SQL injected into an application's transaction, or a value left in a pooled session,
--    would leave) is ignored, neither recorded nor parsed: a malformed one breaks no write.
--    Across transactions of one session: tests/py/test_redteam_audit.py.
-- 2. verify_audit flags a row whose txid is beyond every ended transaction and not the
--    verifying transaction's own: no writer made it (a superuser did), and seal_audit would seal
--    it as genuine once transaction ids reach it; rows of the verifying transaction itself pass.
-- 3. The trail's partitions carry no row level security of their own: tenancy_app holds no
--    privilege on them, so it reads the trail only through tenancy.audit_logs and its policies.

begin;
select plan(16);

\ir setup/helpers.psql

select tenancy.create_tenant('audit-rt-a', 'Audit red team A', 'rt|owner-a') as tenant_a \gset
select tenancy.create_tenant('audit-rt-b', 'Audit red team B', 'rt|owner-b') as tenant_b \gset

create function pg_temp.metadata_of(p_name text)
returns jsonb
language sql
as $$
    select a.metadata from tenancy.audit_logs as a
    where a.action = 'INSERT' and a.new_data ->> 'name' = p_name
    order by a.id desc
    limit 1
$$;

-- 1-6: request metadata ---------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', 'rt|owner-a');
select set_config('tenancy.request_metadata', '{"request_id": "forged", "ip": "198.51.100.66"}', true);
insert into app.projects (name) values ('rt raw metadata');
select log_audit as raw_event from tenancy.log_audit('report.exported', 'report', 'r1', null, null) \gset
reset role;
select is(pg_temp.metadata_of('rt raw metadata'), '{}'::jsonb, 'metadata set with set_config alone is not recorded by the trigger');
select is(
    (
        select a.metadata from tenancy.audit_logs as a
        where a.id = :raw_event
    ), '{}'::jsonb,
    'metadata set with set_config alone is not recorded by log_audit'
);

select pg_temp.act_as(:'tenant_a', 'rt|owner-a');
select set_config('tenancy.request_metadata', 'not json at all', true);
select lives_ok(
    $$insert into app.projects (name) values ('rt garbage metadata')$$,
    'a malformed metadata setting breaks no audited write'
);
select lives_ok(
    $$select tenancy.log_audit('report.exported', 'report', 'r2', null, null)$$,
    'a malformed metadata setting breaks no log_audit call'
);

select tenancy.set_request_metadata('{"request_id": "real", "ip": "203.0.113.7"}');
insert into app.projects (name) values ('rt rightful metadata');
select log_audit as real_event from tenancy.log_audit('report.exported', 'report', 'r3', null, null, '{"n": 1}') \gset
reset role;
select is(
    pg_temp.metadata_of('rt rightful metadata'), '{"request_id": "real", "ip": "203.0.113.7"}'::jsonb,
    'metadata set with set_request_metadata is recorded by the trigger'
);
select is(
    (
        select a.metadata from tenancy.audit_logs as a
        where a.id = :real_event
    ),
    '{"request_id": "real", "ip": "203.0.113.7", "n": 1}'::jsonb,
    'metadata set with set_request_metadata is merged by log_audit'
);

-- 7-12: a row forged with a transaction id no transaction had ------------------------------------

-- The rightful case first: this transaction's own rows (its xid is no ended transaction's) and
-- another tenant's genuine rows verify.
select pg_temp.act_as(:'tenant_b', 'rt|owner-b');
insert into app.projects (name) values ('rt genuine b');
reset role;
select is(
    (select row(v.ok, v.first_bad_id, v.problem)::text from tenancy.verify_audit(:'tenant_a') as v),
    row(true, null::bigint, null::text)::text,
    'the verifying transaction''s own unsealed rows verify'
);

insert into tenancy.audit_logs (
    tenant_id, txid, action, entity_type, entity_id, schema_name, table_name, new_data
)
values (
    :'tenant_a', pg_current_xact_id()::text::bigint + 1000000, 'INSERT', '"app"."projects"', '{"id": 999999}',
    'app', 'projects', '{"name": "forged"}'
)
returning id as forged_id, txid as forged_txid \gset

select is(
    (select v.ok from tenancy.verify_audit(:'tenant_a') as v), false,
    'a row with a transaction id beyond every ended transaction does not verify'
);
select is(
    (select v.first_bad_id from tenancy.verify_audit(:'tenant_a') as v), :forged_id::bigint,
    'verify_audit names the forged row'
);
select matches(
    (select v.problem from tenancy.verify_audit(:'tenant_a') as v),
    format('^row %s was forged: its transaction %s is beyond every transaction that had ended', :forged_id, :forged_txid),
    'verify_audit says why'
);
select is(
    (select row(v.ok, v.first_bad_id)::text from tenancy.verify_audit(:'tenant_b') as v),
    row(true, null::bigint)::text,
    'another tenant''s trail still verifies'
);
set local role tenancy_auditor;
select is(
    (select v.first_bad_id from tenancy.verify_audit(:'tenant_a') as v), :forged_id::bigint,
    'tenancy_auditor sees the forged row reported too'
);
reset role;

-- 13-16: the partitions, read directly --------------------------------------------------------

select format('tenancy.%I', 'audit_logs_' || to_char(now(), 'YYYY_MM')) as this_month \gset
select pg_temp.act_as(:'tenant_a', 'rt|owner-a');
select throws_ok(
    'select count(*) from tenancy.audit_logs_default', '42501', null,
    'tenancy_app cannot read the default partition directly'
);
select throws_ok(
    format('select count(*) from %s', :'this_month'), '42501', null,
    'tenancy_app cannot read this month''s partition directly'
);
select cmp_ok(
    (
        select count(*)::integer from tenancy.audit_logs as a
        where a.tenant_id = :'tenant_a'
    ), '>', 0,
    'the owner reads the tenant''s trail through tenancy.audit_logs'
);
select is(
    (
        select count(*)::integer from tenancy.audit_logs as a
        where a.tenant_id is distinct from :'tenant_a'
    ), 0,
    'and no other tenant''s rows'
);
reset role;

select * from finish();
rollback;
