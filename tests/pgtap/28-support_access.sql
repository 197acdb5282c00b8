-- Break-glass support access: who may begin it, what it reads, what it refuses, when it ends, and
-- the refused member management it numbers. Every refusal is paired with the rightful call
-- succeeding. Fixtures: tenants by tenancy_admin, rows in service contexts; the superuser only
-- reads the sequences back and calls the internal open_support_access (a duration in seconds).
-- A transaction holds one support access and stays read-only after it: the accesses before the
-- last one run inside a savepoint that is rolled back, their observations kept in psql variables
-- and checked after the rollback (a rolled-back savepoint would take pgTAP's records with it).

begin;
select plan(69);

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

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as viewer_a,
    'auth0|' || gen_random_uuid() as owner_b
\gset

set local role tenancy_admin;
select tenancy.create_tenant('support-a', 'Support A', :'owner_a', null, '42') as tenant_a \gset
select tenancy.create_tenant('support-b', 'Support B', :'owner_b', null, '43') as tenant_b \gset
reset role;
select pg_temp.act_as(:'tenant_a');
select tenancy.add_member(:'viewer_a', 'viewer') \gset
insert into app.projects (name) values ('a-project');
insert into app.ledger (amount, memo) values (1, 'a-entry');
select tenancy.set_branding('{"display_name": "Support A"}') \gset
reset role;
select pg_temp.act_as(:'tenant_b');
insert into app.projects (name) values ('b-project');
insert into app.ledger (amount, memo) values (2, 'b-entry');
select tenancy.set_branding('{"display_name": "Support B"}') \gset
reset role;
select tenancy.clear_context() \gset

-- Without support access an operator sees nothing ---------------------------------------------

set local role tenancy_admin;
select is(tenancy.current_tenant_id(), null, 'tenancy_admin has no tenant context of its own');
select throws_ok(
    'select count(*) from tenancy.memberships', '42501', 'permission denied for table memberships',
    'tenancy_admin holds no privilege on a tenant table'
);
select throws_ok(
    format('select tenancy.set_context(%L)', :'tenant_a'), '42501', 'permission denied for function set_context',
    'tenancy_admin cannot set a context: support access is the way in'
);
-- With the application's table privileges (an operator's login in tenancy_app too): no rows.
set local role tenancy_app;
select is((select count(*)::int from app.projects), 0, 'without a context tenancy_app reads no project');
select is((select count(*)::int from tenancy.memberships), 0, 'without a context tenancy_app reads no membership');

-- Only tenancy_admin may begin it ---------------------------------------------------------------

select throws_ok(
    format($$select tenancy.begin_support_access(%L, 'ticket', 5)$$, :'tenant_a'), '42501',
    'permission denied for function begin_support_access', 'tenancy_app cannot begin support access'
);
select throws_ok(
    format($$select tenancy.open_support_access(%L, 'ticket', interval '5 minutes')$$, :'tenant_a'), '42501',
    'permission denied for function open_support_access', 'tenancy_app cannot call open_support_access'
);
set local role tenancy_service;
select throws_ok(
    format($$select tenancy.begin_support_access(%L, 'ticket', 5)$$, :'tenant_a'), '42501',
    'permission denied for function begin_support_access', 'tenancy_service cannot begin support access'
);
set local role tenancy_auditor;
select throws_ok(
    format($$select tenancy.begin_support_access(%L, 'ticket', 5)$$, :'tenant_a'), '42501',
    'permission denied for function begin_support_access', 'tenancy_auditor cannot begin support access'
);

-- Bad input: 22023 or P0002 naming the value, nothing written ---------------------------------

reset role;
select coalesce(pg_sequence_last_value('tenancy.support_accesses'), 0) as accesses_before \gset
set local role tenancy_admin;
select throws_ok(
    format($$select tenancy.begin_support_access(%L, '', 5)$$, :'tenant_a'), '22023',
    'invalid support access reason ''''', 'an empty reason is 22023'
);
select throws_ok(
    format($$select tenancy.begin_support_access(%L, '   ', 5)$$, :'tenant_a'), '22023',
    'invalid support access reason ''   ''', 'a blank reason is 22023'
);
select throws_ok(
    format($$select tenancy.begin_support_access(%L, null, 5)$$, :'tenant_a'), '22023',
    'invalid support access reason NULL', 'a NULL reason is 22023'
);
select throws_ok(
    format($$select tenancy.begin_support_access(%L, repeat('x', 501), 5)$$, :'tenant_a'), '22023',
    null, 'a reason over 500 characters is 22023'
);
select throws_ok(
    format($$select tenancy.begin_support_access(%L, E'ticket\n42', 5)$$, :'tenant_a'), '22023',
    null, 'a reason with a control character is 22023'
);
select throws_ok(
    format($$select tenancy.begin_support_access(%L, 'ticket', 0)$$, :'tenant_a'), '22023',
    'support access of 0 minutes is out of range: 1 to 240 minutes', 'zero minutes is 22023'
);
select throws_ok(
    format($$select tenancy.begin_support_access(%L, 'ticket', 241)$$, :'tenant_a'), '22023',
    'support access of 241 minutes is out of range: 1 to 240 minutes', 'more than four hours is 22023'
);
select throws_ok(
    format($$select tenancy.begin_support_access(%L, 'ticket', null)$$, :'tenant_a'), '22023',
    'support access of NULL minutes is out of range: 1 to 240 minutes', 'NULL minutes is 22023'
);
select throws_ok(
    $$select tenancy.begin_support_access('00000000-0000-0000-0000-000000000001', 'ticket', 5)$$, 'P0002',
    'tenant 00000000-0000-0000-0000-000000000001 does not exist', 'an unknown tenant is P0002'
);
-- In a read-only transaction: 25006 (observed in a savepoint, checked after it).
savepoint ro_check;  -- noqa: PRS
set local transaction_read_only = on;
select pg_temp.sqlstate_of(
    format($$select tenancy.begin_support_access(%L, 'ticket', 5)$$, :'tenant_a')
) as read_only_state \gset
rollback to savepoint ro_check;
select is(:'read_only_state'::text, '25006', 'a read-only transaction cannot begin support access: 25006');
set local role tenancy_auditor;
select is(
    (select count(*)::int from tenancy.security_events where kind = 'support_access.begun'), 0,
    'the refused calls recorded no support access'
);
select is(
    (select count(*)::int from tenancy.audit_logs where action = 'ACCESS'), 0,
    'nor any ACCESS entry in the audit trail'
);
reset role;
select is(
    coalesce(pg_sequence_last_value('tenancy.support_accesses'), 0), :'accesses_before'::bigint,
    'and drew no support access number'
);

-- Refused member management is numbered: the row rolls back, the number stays ------------------

reset role;
select coalesce(pg_sequence_last_value('tenancy.auth_failures_total'), 0) as failures_before \gset
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok(
    $$select tenancy.add_member('auth0|someone', 'viewer')$$, '42501',
    format('role viewer of tenant %s cannot manage members', :'tenant_a'),
    'a viewer cannot add members: 42501'
);
reset role;
select is(
    coalesce(pg_sequence_last_value('tenancy.auth_failures_total'), 0),
    (:'failures_before'::bigint + 1),
    'the refusal drew a number from tenancy.auth_failures_total, which the rollback did not take back'
);
select is(
    (select count(*)::int from tenancy.security_events where kind = 'member_management.refused'), 0,
    'its member_management.refused row rolled back with the error: the number is the trace'
);
select pg_temp.act_as(:'tenant_a', :'owner_a');
select lives_ok($$select tenancy.add_member('auth0|someone', 'viewer')$$, 'the owner adds the member');
reset role;
select is(
    coalesce(pg_sequence_last_value('tenancy.auth_failures_total'), 0),
    (:'failures_before'::bigint + 1),
    'a change that is allowed draws no number'
);
select tenancy.clear_context() \gset

-- An access ends at its expiry (observed in a savepoint) -----------------------------------------

savepoint expiry;  -- noqa: PRS
select access_number as expiry_number
from tenancy.open_support_access(:'tenant_a', 'expiry check', interval '2 seconds') \gset
set local role tenancy_app;
select count(*) as expiry_before from app.projects \gset
select pg_sleep(2.05) as slept \gset
select count(*) as expiry_after, tenancy.current_tenant_id() is null as expiry_gone from app.projects \gset
reset role;
rollback to savepoint expiry;
select is(:'expiry_before'::int, 1, 'a two-second access reads the tenant''s project');
select is(:'expiry_after'::int, 0, 'after two seconds it reads nothing');
select ok(:'expiry_gone'::boolean, 'and current_tenant_id() is NULL');

-- A savepoint rolled back over the access undoes it, and a hand-restored value gives nothing -----

savepoint restore;  -- noqa: PRS
savepoint attack;  -- noqa: PRS
set local role tenancy_admin;
select access_number as restore_number from tenancy.begin_support_access(:'tenant_a', 'savepoint check', 5) \gset
select current_setting('tenancy.context') as restore_value \gset
rollback to savepoint attack;
-- The key stays (sequences are not transactional); the setting and read-only mode do not.
set local role tenancy_app;
select set_config('tenancy.context', :'restore_value', true) \gset
select
    current_setting('transaction_read_only') as restore_read_only,
    tenancy.current_tenant_id() is null as restore_gone,
    (select count(*) from app.projects) as restore_rows
\gset
select pg_temp.sqlstate_of($$insert into app.projects (name) values ('restored')$$) as restore_insert \gset
reset role;
rollback to savepoint restore;
select is(:'restore_read_only'::text, 'off', 'rolling back a savepoint taken before the access makes the transaction read-write');
select ok(:'restore_gone'::boolean, 'a support value restored by hand in a read-write transaction is no context');
select is(:'restore_rows'::int, 0, 'it reads no row');
select is(:'restore_insert'::text, 'TN001', 'and writes nothing: TN001');
-- Begun inside a subtransaction that commits (an exception block here), the access ends with it.
savepoint nested;  -- noqa: PRS
set local role tenancy_admin;
do $$
begin
    perform tenancy.begin_support_access(
        (select t.id from tenancy.tenants as t where t.slug = 'support-a'), 'nested check', 5
    );
exception when others then
    raise;
end
$$;
set local role tenancy_app;
select
    current_setting('transaction_read_only') as nested_read_only,
    (select count(*) from app.projects) as nested_rows
\gset
reset role;
rollback to savepoint nested;
select is(:'nested_read_only'::text, 'off', 'the read-only mode set in a subtransaction ends with it');
select is(:'nested_rows'::int, 0, 'and so does the access: no row');

set local role tenancy_auditor;
select ok(
    array[:'expiry_number'::bigint, :'restore_number'::bigint] <@ array(select g.access_number from tenancy.support_access_gaps() as g),
    'both rolled-back accesses are gaps the auditor lists'
);
select is(
    (select count(*)::int from tenancy.audit_logs where action = 'ACCESS'), 0,
    'their ACCESS entries in the audit trail rolled back with them'
);

-- The access --------------------------------------------------------------------------------------

-- At the top level of the transaction: PostgreSQL ends the read-only mode set in a subtransaction
-- (a savepoint, an exception block, pgTAP's results_eq) with it, and the access with it.
set local role tenancy_admin;
select tenancy.set_request_metadata('{"request_id": "req-sup-1", "reason": "overwritten"}') \gset
select tenant_id as main_tenant, role as main_role
from tenancy.begin_support_access(:'tenant_a', 'ticket SUP-1', 30) \gset
select results_eq(
    format($$values (%L::uuid, %L::text)$$, :'main_tenant', :'main_role'),
    format($$values (%L::uuid, 'support'::text)$$, :'tenant_a'),
    'tenancy_admin begins support access to tenant A'
);
set local role tenancy_auditor;
select attempt as main_number, (details ->> 'expires_at')::timestamptz as main_expiry
from tenancy.security_events
where kind = 'support_access.begun' and reason = 'ticket SUP-1' \gset
select ok(
    :'main_expiry'::timestamptz between clock_timestamp() + interval '29 minutes' and clock_timestamp() + interval '30 minutes',
    'it expires in 30 minutes (rounded down to the second)'
);
select results_eq(
    format(
        $$select kind, tenant_id, user_id, reason, details ->> 'database_user' = session_user, details ->> 'duration',
        database_user = session_user
        from tenancy.security_events where attempt = %s and kind = 'support_access.begun'$$,
        :'main_number'
    ),
    format(
        $$values ('support_access.begun'::text, %L::uuid, null::text, 'ticket SUP-1'::text, true, '00:30:00'::text, true)$$,
        :'tenant_a'
    ),
    'the support_access.begun event names the tenant, the reason, the duration and the database user'
);
select ok(
    not exists (select from tenancy.support_access_gaps() as g where g.access_number = :'main_number'),
    'the access in progress has its event: no gap'
);
-- Its entry in the tenant's audit trail, written before the transaction became read-only.
select results_eq(
    $$select tenant_id, action, entity_type, entity_id, schema_name, table_name, old_data, new_data,
        changed_columns, actor_user_id, actor_role, api_key_id, db_user = session_user,
        txid = pg_current_xact_id()::text::bigint
    from tenancy.audit_logs where action = 'ACCESS'$$,
    format(
        $$values (%L::uuid, 'ACCESS'::text, 'support_access'::text, %L::text, null::text, null::text, null::jsonb,
            null::jsonb, null::text[], null::text, 'support'::text, null::uuid, true, true)$$,
        :'tenant_a', :'main_number'
    ),
    'one ACCESS entry in tenant A''s audit trail: entity support_access, the access number, role support, no user'
);
select results_eq(
    $$select metadata - 'expires_at', (metadata ->> 'expires_at')::timestamptz from tenancy.audit_logs where action = 'ACCESS'$$,
    format(
        $$values ('{"request_id": "req-sup-1", "reason": "ticket SUP-1", "minutes": 30}'::jsonb, %L::timestamptz)$$,
        :'main_expiry'
    ),
    'its metadata: the reason, the expiry and the minutes, over the request metadata'
);

set local role tenancy_app;
select is(tenancy.current_tenant_id(), :'tenant_a'::uuid, 'current_tenant_id() is tenant A');
select is(tenancy.current_member_role(), 'support', 'current_member_role() is support');
select is(tenancy.current_user_id(), null, 'current_user_id() is NULL: no user');
select is(tenancy.current_tenant_key(), '42', 'current_tenant_key() is A''s key');
select is(
    (select array_agg(m.user_id::text order by m.user_id) from tenancy.memberships as m),
    (select array_agg(u order by u) from unnest(array[:'owner_a', :'viewer_a', 'auth0|someone']) as u),
    'it reads A''s memberships'
);
select results_eq(
    'select tenant_id from tenancy.tenant_settings', format('values (%L::uuid)', :'tenant_a'),
    'it reads A''s settings'
);
select results_eq('select name from app.projects', $$values ('a-project'::text)$$, 'it reads A''s projects');
select results_eq('select memo from app.ledger', $$values ('a-entry'::text)$$, 'it reads A''s ledger (keyed by 42)');
select results_eq(
    $$select action, entity_id from tenancy.audit_logs where action = 'ACCESS' or tenant_id = $$ || quote_literal(:'tenant_b'),
    format($$values ('ACCESS'::text, %L::text)$$, :'main_number'),
    'it reads A''s audit trail, its own entry included, and none of B''s'
);
select is(
    (select count(*)::int from app.projects where tenant_id = :'tenant_b'), 0, 'never B''s rows'
);

-- Writes: 25006.
select throws_ok(
    $$insert into app.projects (name) values ('support')$$, '25006',
    'cannot execute INSERT in a read-only transaction', 'support access cannot insert'
);
select throws_ok(
    $$update app.projects set name = 'renamed'$$, '25006', 'cannot execute UPDATE in a read-only transaction',
    'support access cannot update'
);
select throws_ok(
    'delete from app.ledger', '25006', 'cannot execute DELETE in a read-only transaction', 'support access cannot delete'
);
select throws_ok(
    $$select tenancy.add_member('auth0|intruder', 'owner')$$, '25006',
    format('managing members of tenant %s needs a read-write transaction', :'tenant_a'),
    'support access cannot manage members'
);
select throws_ok(
    $$select tenancy.set_branding('{"display_name": "Hijacked"}')$$, '42501',
    format('role support of tenant %s cannot change its branding', :'tenant_a'),
    'support access cannot change the branding'
);
set local role tenancy_service;
select throws_ok(
    format('select tenancy.set_context(%L)', :'tenant_b'), '25006', null,
    'no other context can be set in the transaction: 25006'
);
set local role tenancy_app;

-- Back to read-write: refused by PostgreSQL (25001; in a savepoint, as throws_ok runs in one).
select throws_ok(
    'set transaction read write', '25001', 'cannot set transaction read-write mode inside a read-only transaction',
    'SET TRANSACTION READ WRITE is refused'
);
select throws_ok(
    'set local transaction_read_only = off', '25001',
    'cannot set transaction read-write mode inside a read-only transaction',
    'transaction_read_only = off is refused'
);
select results_eq(
    $$select current_setting('transaction_read_only'), (select count(*)::int from app.projects)$$,
    $$values ('on'::text, 1)$$,
    'the transaction is still read-only and the access still reads'
);

-- Forged values give nothing; the real one still works.
select current_setting('tenancy.context') as main_value \gset
select set_config(
    'tenancy.context', regexp_replace(:'main_value', 'support/([0-9]+)', 'support/' || (split_part(split_part(:'main_value', '|', 3), '/', 2)::bigint + 3600)), true
) \gset
select is(tenancy.current_tenant_id(), null, 'a support value with a later expiry written by hand is no context');
select set_config('tenancy.context', replace(:'main_value', split_part(:'main_value', '|', 3), 'owner'), true) \gset
select is(tenancy.current_tenant_id(), null, 'a support value turned into an owner''s is no context');
select set_config('tenancy.context', replace(:'main_value', :'tenant_a', :'tenant_b'), true) \gset
select is((select count(*)::int from app.projects), 0, 'a support value for tenant B reads nothing');
select set_config('tenancy.context', :'main_value', true) \gset
select is((select count(*)::int from app.projects), 1, 'the real value reads again');

-- RESET transaction_read_only (possible on PostgreSQL 15) ends the access rather than the
-- read-only mode; a statement that makes the transaction read-only again while it writes is
-- refused by the tables' statement trigger.
do $$
begin
    reset transaction_read_only;
exception when others then
    null;  -- PostgreSQL 16 and later refuse the RESET: the transaction stays read-only
end
$$;
select is(
    tenancy.current_tenant_id() is not null, current_setting('transaction_read_only') = 'on',
    'the access holds exactly while the transaction is read-only'
);
select throws_ok(
    $$with ro as materialized (select set_config('transaction_read_only', 'on', true) as v),
    ins as (insert into app.projects (name) values ('flipped') returning id)
    select (select v from ro), (select count(*) from ins)$$,
    '25006', null,
    'making the transaction read-only in the middle of a write does not let it through'
);

select * from finish();
rollback;
