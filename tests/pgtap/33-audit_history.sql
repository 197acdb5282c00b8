-- Reading the audit trail: audit_trail, record_history, record_at and table_at across many changes
-- in one transaction and one statement, at several points in time; keys changed by UPDATE and
-- swapped in one statement, rows deleted and inserted again with the same key, a partitioned
-- table keyed by text, a table keyed by a bigint tenant key; bad arguments; who sees what.
-- The rows are written by the real audit triggers, as tenancy_app in the tenants' contexts. All
-- in one transaction: each top-level statement psql sends has its own statement_timestamp, so a
-- clock_timestamp() read in a statement of its own (t0 … t4) lies between the statement_at of
-- the changes before it and after it. The superuser creates the tenants' extra test tables only.

begin;
select plan(74);

\ir setup/helpers.psql

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as viewer_a,
    'auth0|' || gen_random_uuid() as member_a,
    'auth0|' || gen_random_uuid() as owner_b
\gset

set local role tenancy_admin;
select tenancy.create_tenant('history-a', 'History A', :'owner_a', null, '42') as tenant_a \gset
select tenancy.create_tenant('history-b', 'History B', :'owner_b', null, '43') as tenant_b \gset
reset role;
select pg_temp.act_as(:'tenant_a');
select tenancy.add_member(:'viewer_a', 'viewer') \gset
select tenancy.add_member(:'member_a', 'member') \gset
reset role;

-- A partitioned table keyed by text, as the generator renders its audit triggers: on the root
-- and on a partition (notes_p1 stands for a partition created later, without its own), an
-- excluded column, a primary key checked at the end of each statement (so keys can be swapped).
create table app.notes (
    tenant_id uuid not null default tenancy.current_tenant_id(),
    code text not null,
    body text not null,
    secret text,
    constraint notes_pkey primary key (tenant_id, code) deferrable initially immediate
) partition by hash (tenant_id);
create table app.notes_p0 partition of app.notes for values with (modulus 2, remainder 0);
create table app.notes_p1 partition of app.notes for values with (modulus 2, remainder 1);
create trigger tenancy_audit_insert after insert on app.notes referencing new table as tenancy_new
for each statement execute function tenancy.tg_audit('tenant_id', 'uuid', '{code}', '{secret}', '"app"."notes"');
create trigger tenancy_audit_update after update on app.notes
referencing old table as tenancy_old new table as tenancy_new
for each statement execute function tenancy.tg_audit('tenant_id', 'uuid', '{code}', '{secret}', '"app"."notes"');
create trigger tenancy_audit_delete after delete on app.notes referencing old table as tenancy_old
for each statement execute function tenancy.tg_audit('tenant_id', 'uuid', '{code}', '{secret}', '"app"."notes"');
create trigger tenancy_audit_insert after insert on app.notes_p0 referencing new table as tenancy_new
for each statement execute function tenancy.tg_audit('tenant_id', 'uuid', '{code}', '{secret}', '"app"."notes"');
grant select, insert, update, delete on app.notes to tenancy_app;
-- A table nobody audits.
create table app.plain (tenant_id uuid not null, id bigint not null, primary key (tenant_id, id));
select
    'app.notes'::regclass::oid as notes_oid,
    'app.projects'::regclass::oid as projects_oid
\gset

-- Tenant B's rows: a project, a note whose key tenant A's notes share.
select pg_temp.act_as(:'tenant_b', :'owner_b');
insert into app.projects (name) values ('b-project');
insert into app.notes (code, body) values ('shared', 'b shared');
reset role;

-- Tenant A: projects, changed at four points in time --------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select clock_timestamp() as t0 \gset
insert into app.projects (name) values ('alpha'), ('beta');
select clock_timestamp() as t1 \gset
select id as alpha from app.projects
where name = 'alpha' \gset
select id as beta from app.projects
where name = 'beta' \gset
select set_config('history.beta', :'beta', true) \gset
update app.projects set name = 'alpha 2'
where id = :alpha;
select clock_timestamp() as t2 \gset
-- One statement, many changes: two updates of alpha, beta deleted and inserted again with its id.
do $$
begin
    update app.projects set name = 'alpha 3' where name = 'alpha 2';
    update app.projects set name = 'alpha 4' where name = 'alpha 3';
    delete from app.projects where name = 'beta';
    insert into app.projects (id, name) overriding system value
    values (current_setting('history.beta')::bigint, 'beta again');
end
$$;
select clock_timestamp() as t3 \gset
delete from app.projects
where id = :alpha;
select clock_timestamp() as t4 \gset

-- Tenant A: notes, whose keys change.
insert into app.notes (code, body, secret) values ('a', 'first a', 's1'), ('b', 'first b', 's2');
insert into app.notes (code, body) values ('shared', 'a shared');
select clock_timestamp() as n1 \gset
update app.notes set code = 'c'
where code = 'a';
select clock_timestamp() as n2 \gset
insert into app.notes (code, body, secret) values ('a', 'second a', 's3');
select clock_timestamp() as n3 \gset
update app.notes set code = case when code = 'a' then 'b' else 'a' end
where code in ('a', 'b');
select clock_timestamp() as n4 \gset

-- One statement (a DO block: one statement_at, one txid), keys changed after other changes.
do $$
begin
    insert into app.notes (code, body) values ('d', 'd body');
    update app.notes set code = 'e' where code = 'd';
    insert into app.notes (code, body) values ('f', 'f body');
    update app.notes set body = 'f body 2' where code = 'f';
    update app.notes set code = 'g' where code = 'f';
end
$$;
select clock_timestamp() as n5 \gset

-- Tenant A: its settings (keyed by the tenant column alone), an application event.
select tenancy.set_branding('{"display_name": "A one"}') \gset
select clock_timestamp() as s1 \gset
select tenancy.set_branding('{"display_name": "A two"}') \gset
select clock_timestamp() as s2 \gset
select tenancy.log_audit('user.updated', 'user', :'member_a', '{"name": "M"}', '{"name": "Member"}') as event \gset

-- Tenant A: the ledger, keyed by the tenant key 42 (bigint account_key).
insert into app.ledger (amount, memo) values (10, 'first');
select id as entry from app.ledger
where memo = 'first' \gset
update app.ledger set amount = 11
where id = :entry;

-- record_history ----------------------------------------------------------------------------------

select is(
    (select array_agg(h.action || ':' || coalesce(h.new_data ->> 'name', '-')) from tenancy.record_history('app.projects', format('{"id": %s}', :alpha)::jsonb) as h),
    array['INSERT:alpha', 'UPDATE:alpha 2', 'UPDATE:alpha 3', 'UPDATE:alpha 4', 'DELETE:-'],
    'record_history: every change of a row, in order, the two of one statement by id'
);
select is(
    (select array_agg(h.id) = array_agg(h.id order by h.id) from tenancy.record_history('app.projects', format('{"id": %s}', :alpha)::jsonb) as h),
    true,
    'record_history returns the rows by id'
);
select is(
    (
        select count(distinct h.statement_at)::int from tenancy.record_history('app.projects', format('{"id": %s}', :alpha)::jsonb) as h
        where h.new_data ->> 'name' in ('alpha 3', 'alpha 4')
    ),
    1,
    'the two updates in the DO block share one statement_at (the case id order decides)'
);
select is(
    (select array_agg(h.action || ':' || coalesce(h.new_data ->> 'name', '-')) from tenancy.record_history('app.projects', format('{"id": %s}', :beta)::jsonb) as h),
    array['INSERT:beta', 'DELETE:-', 'INSERT:beta again'],
    'record_history: a row deleted and inserted again with the same key'
);
select is(
    (select array_agg(h.id) from tenancy.record_history('app.projects', format('{"id": "%s", "tenant_id": "%s"}', :beta, upper(:'tenant_a'))::jsonb) as h),
    (select array_agg(h.id) from tenancy.record_history('app.projects', format('{"id": %s}', :beta)::jsonb) as h),
    'record_history: the key as a string and the tenant column (any case) name the same row'
);
select is(
    (select array_agg(h.id) from tenancy.audit_trail('"app"."projects"', format('{"id":%s}', :alpha)) as h),
    (select array_agg(h.id) from tenancy.record_history('app.projects', format('{"id": %s}', :alpha)::jsonb) as h),
    'audit_trail of the entity (its id as any JSON spelling) gives the same rows'
);
select is(
    (select array_agg(h.action || ':' || h.entity_id || ':' || (coalesce(h.new_data, h.old_data) ->> 'body')) from tenancy.record_history('app.notes', '{"code": "c"}') as h),
    array['INSERT:{"code": "a"}:first a', 'UPDATE:{"code": "c"}:first a'],
    'record_history follows a row back through the UPDATE that gave it its key'
);
select is(
    (
        select array_agg(x.v order by x.v) from (
            select h.action || ':' || h.entity_id || ':' || (coalesce(h.new_data, h.old_data) ->> 'body') as v
            from tenancy.record_history('app.notes', '{"code": "b"}') as h
        ) as x
    ),
    array[
        'INSERT:{"code": "a"}:second a', 'INSERT:{"code": "b"}:first b',
        'UPDATE:{"code": "a"}:first b', 'UPDATE:{"code": "b"}:second a'
    ],
    'record_history of a swapped key: its first row up to the swap that took it away, the row swapped in with its earlier life'
);
select is(
    (
        select count(*)::int from tenancy.record_history('app.notes', '{"code": "a"}') as h
        where h.entity_id = '{"code": "c"}'
    ),
    1,
    'record_history includes the UPDATE that took a row away from the key'
);
select is(
    (select array_agg(h.id) from tenancy.record_history('app.notes_p1', '{"code": "c"}') as h),
    (select array_agg(h.id) from tenancy.record_history('app.notes', '{"code": "c"}') as h),
    'a partition without its own audit trigger reads the rows of its root'
);
select is(
    (select array_agg(h.action) from tenancy.record_history('app.ledger', format('{"id": "%s", "account_key": 42}', :entry)::jsonb) as h),
    array['INSERT', 'UPDATE'],
    'record_history of a table keyed by a bigint tenant key, its tenant key given'
);
select is(
    (select count(*)::int from tenancy.record_history('app.ledger', format('{"id": %s, "account_key": "43"}', :entry)::jsonb)),
    0,
    'another tenant key in the primary key: no rows'
);

-- record_at -------------------------------------------------------------------------------------

select is(tenancy.record_at('app.projects', format('{"id": %s}', :alpha)::jsonb, :'t0'), null, 'record_at before the insert: NULL');
select is(tenancy.record_at('app.projects', format('{"id": %s}', :alpha)::jsonb, :'t1') ->> 'name', 'alpha', 'record_at after the insert');
select is(tenancy.record_at('app.projects', format('{"id": %s}', :alpha)::jsonb, :'t2') ->> 'name', 'alpha 2', 'record_at after the update');
select is(
    tenancy.record_at('app.projects', format('{"id": %s}', :alpha)::jsonb, :'t3') ->> 'name', 'alpha 4',
    'record_at after two updates in one statement: the last one'
);
select is(tenancy.record_at('app.projects', format('{"id": %s}', :alpha)::jsonb, :'t4'), null, 'record_at after the delete: NULL');
select is(tenancy.record_at('app.projects', format('{"id": %s}', :beta)::jsonb, :'t2') ->> 'name', 'beta', 'record_at of beta before its deletion');
select is(
    tenancy.record_at('app.projects', format('{"id": %s}', :beta)::jsonb, :'t4') ->> 'name', 'beta again',
    'record_at of beta after it was deleted and inserted again'
);
select is(
    (jsonb_populate_record(null::app.projects, tenancy.record_at('app.projects', format('{"id": %s}', :alpha)::jsonb, :'t2'))).id,
    :alpha::bigint,
    'record_at gives a row jsonb_populate_record types'
);
select is(tenancy.record_at('app.notes', '{"code": "a"}', :'n1') ->> 'body', 'first a', 'notes: a at n1');
select is(tenancy.record_at('app.notes', '{"code": "a"}', :'n2'), null, 'notes: the key a is gone once an UPDATE changed it');
select is(tenancy.record_at('app.notes', '{"code": "c"}', :'n1'), null, 'notes: the key c before the UPDATE gave it');
select is(tenancy.record_at('app.notes', '{"code": "c"}', :'n2') ->> 'body', 'first a', 'notes: c holds the row that was a');
select is(tenancy.record_at('app.notes', '{"code": "a"}', :'n3') ->> 'body', 'second a', 'notes: a inserted again');
select is(tenancy.record_at('app.notes', '{"code": "a"}', :'n4') ->> 'body', 'first b', 'notes: a after the swap holds b''s row');
select is(tenancy.record_at('app.notes', '{"code": "b"}', :'n4') ->> 'body', 'second a', 'notes: b after the swap holds a''s row');
select is(
    tenancy.record_at('app.notes', '{"code": "a"}', :'n1') ? 'secret', false,
    'record_at: an excluded column is absent'
);

-- table_at --------------------------------------------------------------------------------------

select is(
    (select count(*)::int from tenancy.table_at('app.projects', :'t0')), 0, 'table_at before the inserts: no rows'
);
select is(
    (select array_agg(s.data ->> 'name' order by s.data ->> 'name') from tenancy.table_at('app.projects', :'t1') as s),
    array['alpha', 'beta'], 'table_at t1'
);
select is(
    (select array_agg(s.data ->> 'name' order by s.data ->> 'name') from tenancy.table_at('app.projects', :'t2') as s),
    array['alpha 2', 'beta'], 'table_at t2'
);
select is(
    (select array_agg(s.data ->> 'name' order by s.data ->> 'name') from tenancy.table_at('app.projects', :'t3') as s),
    array['alpha 4', 'beta again'], 'table_at t3: many changes in one statement resolved by id'
);
select is(
    (select array_agg(s.data ->> 'name' order by s.data ->> 'name') from tenancy.table_at('app.projects', :'t4') as s),
    array['beta again'], 'table_at t4: the deleted row is gone'
);
select is(
    (
        select array_agg(s.data ->> 'name' order by s.data ->> 'name') from tenancy.table_at('app.projects', clock_timestamp()) as s
    ),
    (select array_agg(p.name order by p.name) from app.projects as p),
    'table_at now: the rows the table holds'
);
select is(
    (
        select array_agg(r.id::text || ':' || r.name || ':' || (s.pk ->> 'id'))
        from tenancy.table_at('app.projects', :'t2') as s
        cross join lateral jsonb_populate_record(null::app.projects, s.data) as r
        where r.id = :alpha
    ),
    array[:alpha || ':alpha 2:' || :alpha],
    'table_at: typed rows with jsonb_populate_record, pk the key without the tenant column'
);
select is(
    (select array_agg((s.data ->> 'code') || '=' || (s.data ->> 'body') order by s.data ->> 'code') from tenancy.table_at('app.notes', :'n1') as s),
    array['a=first a', 'b=first b', 'shared=a shared'], 'notes at n1'
);
select is(
    (select array_agg((s.data ->> 'code') || '=' || (s.data ->> 'body') order by s.data ->> 'code') from tenancy.table_at('app.notes', :'n2') as s),
    array['b=first b', 'c=first a', 'shared=a shared'], 'notes at n2: the old key disappears when an UPDATE changes it'
);
select is(
    (select array_agg((s.data ->> 'code') || '=' || (s.data ->> 'body') order by s.data ->> 'code') from tenancy.table_at('app.notes', :'n3') as s),
    array['a=second a', 'b=first b', 'c=first a', 'shared=a shared'], 'notes at n3: a key inserted again'
);
select is(
    (select array_agg((s.data ->> 'code') || '=' || (s.data ->> 'body') order by s.data ->> 'code') from tenancy.table_at('app.notes', :'n4') as s),
    array['a=first b', 'b=second a', 'c=first a', 'shared=a shared'], 'notes at n4: two keys swapped in one statement'
);
select is(
    (
        select count(*)::int from tenancy.table_at('app.notes', :'n4') as s
        where s.data ? 'secret'
    ),
    0,
    'table_at: the excluded column is absent'
);
select is(
    (select array_agg(s.pk::text order by s.pk::text) from tenancy.table_at('app.notes_p1', :'n4') as s),
    array['{"code": "a"}', '{"code": "b"}', '{"code": "c"}', '{"code": "shared"}'],
    'table_at through a partition: the root''s rows, pk without the tenant column'
);
select is(
    (
        select count(*)::int from tenancy.table_at('app.ledger', clock_timestamp()) as s
        where (s.data ->> 'amount')::numeric = 11
    ),
    1,
    'table_at of the bigint-keyed ledger'
);

select is(
    (select array_agg((s.data ->> 'code') || '=' || (s.data ->> 'body') order by s.data ->> 'code') from tenancy.table_at('app.notes', :'n5') as s),
    array['a=first b', 'b=second a', 'c=first a', 'e=d body', 'g=f body 2', 'shared=a shared'],
    'notes at n5: keys inserted and changed in one statement'
);
select is(tenancy.record_at('app.notes', '{"code": "d"}', :'n5'), null, 'a key inserted and changed in one statement is gone');
select is(
    (
        select array_agg(h.action || ':' || h.entity_id || ':' || (h.new_data ->> 'body'))
        from tenancy.record_history('app.notes', '{"code": "g"}') as h
    ),
    array['INSERT:{"code": "f"}:f body', 'UPDATE:{"code": "f"}:f body 2', 'UPDATE:{"code": "g"}:f body 2'],
    'record_history follows a key changed in the statement that inserted and updated the row'
);
select is(
    tenancy.record_at('tenancy.tenant_settings', '{}', :'s1') -> 'branding' ->> 'display_name', 'A one',
    'record_at of a table keyed by its tenant column alone (settings)'
);
select is(
    (select array_agg(s.pk::text || (s.data -> 'branding' ->> 'display_name')) from tenancy.table_at('tenancy.tenant_settings', :'s2') as s),
    array['{}A two'],
    'table_at of the settings: the tenant''s one row, pk {}'
);
select is(
    (select array_agg(h.action order by h.id) from tenancy.record_history('tenancy.memberships', format('{"user_id": "%s"}', :'viewer_a')::jsonb) as h),
    array['INSERT'],
    'record_history of a pgtenancy table (a membership)'
);
select is(
    (select array_agg(h.id::text || ':' || array_to_string(h.changed_columns, ',')) from tenancy.audit_trail('user', :'member_a') as h),
    array[:'event' || ':name'],
    'audit_trail of an application event (tenancy.log_audit)'
);

-- Bad arguments -----------------------------------------------------------------------------------

select throws_ok(
    $$select * from tenancy.record_history('app.plain', '{"id": 1}')$$, '55000',
    'table app.plain is not audited: it has no tenancy_audit_insert trigger of tenancy.tg_audit',
    'a table that is not audited: 55000 naming it'
);
select throws_ok(
    $$select * from tenancy.table_at('app.plain', now())$$, '55000',
    'table app.plain is not audited: it has no tenancy_audit_insert trigger of tenancy.tg_audit',
    'table_at of a table that is not audited: 55000'
);
select throws_ok(
    $$select * from tenancy.record_history('app.projects', '{"id": 1, "name": "x"}')$$, '22023',
    'name is not a primary key column of app.projects: its audit key is (id), the tenant column tenant_id may be given too',
    'a key column that is not in the primary key: 22023 naming it'
);
select throws_ok(
    $$select * from tenancy.record_history('app.projects', '{}')$$, '22023',
    'the primary key {} of a row of app.projects lacks id: its audit key is (id)',
    'a key without its column: 22023'
);
select throws_ok(
    $$select tenancy.record_at('app.projects', '{"id": "abc"}', now())$$, '22023', null,
    'a key value the column''s type refuses: 22023'
);
select throws_ok(
    $$select tenancy.record_at('app.projects', '[1]', now())$$, '22023',
    'the primary key of a row of app.projects must be a JSON object such as {"id": 42}, got [1]',
    'a key that is not a JSON object: 22023'
);
select throws_ok(
    $$select tenancy.record_at('app.projects', '{"id": null}', now())$$, '22023',
    'the primary key {"id": null} of a row of app.projects has NULL in id',
    'a NULL key value: 22023'
);
select throws_ok(
    $$select tenancy.record_at('app.projects', '{"id": 1}', null)$$, '22023',
    'the time of a row of app.projects must not be NULL', 'record_at at NULL: 22023'
);
select throws_ok(
    $$select * from tenancy.table_at('app.projects', null)$$, '22023',
    'the time of the rows of app.projects must not be NULL', 'table_at at NULL: 22023'
);
select throws_ok(
    $$select * from tenancy.audit_trail('"app"."projects"', 'id=1')$$, '22023', null,
    'audit_trail: a table row''s id that is not JSON: 22023'
);

-- Who sees what -----------------------------------------------------------------------------------

reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select is(
    (select count(*)::int from tenancy.record_history('app.projects', format('{"id": %s}', :alpha)::jsonb)), 0,
    'a viewer reads no history'
);
select is(
    (select count(*)::int from tenancy.table_at('app.projects', :'t3')) + (select count(*)::int from tenancy.audit_trail('"app"."projects"', format('{"id": %s}', :alpha))),
    0,
    'a viewer reads no past table and no trail'
);
select is(tenancy.record_at('app.projects', format('{"id": %s}', :alpha)::jsonb, :'t2'), null, 'a viewer reads no past row');
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select is(
    (select count(*)::int from tenancy.table_at('app.projects', :'t3')) + (select count(*)::int from tenancy.record_history('app.projects', format('{"id": %s}', :alpha)::jsonb)),
    0,
    'a member reads no past table and no history'
);
reset role;
select pg_temp.act_as(:'tenant_b', :'owner_b');
select is(
    (select count(*)::int from tenancy.record_history('app.projects', format('{"id": %s}', :alpha)::jsonb)), 0,
    'another tenant''s owner reads none of this tenant''s history'
);
select is(tenancy.record_at('app.projects', format('{"id": %s}', :alpha)::jsonb, :'t2'), null, 'another tenant''s owner reads no past row of it');
select is(
    (select array_agg(s.data ->> 'name') from tenancy.table_at('app.projects', clock_timestamp()) as s),
    array['b-project'],
    'another tenant''s owner: table_at gives its own rows only'
);
select is(
    tenancy.record_at('app.notes', '{"code": "shared"}', clock_timestamp()) ->> 'body', 'b shared',
    'another tenant''s owner reads its own row of a shared key'
);
reset role;
select tenancy.clear_context() \gset
set local role tenancy_app;
select is(
    (select count(*)::int from tenancy.table_at('app.projects', clock_timestamp())) + (select count(*)::int from tenancy.record_history('app.projects', format('{"id": %s}', :alpha)::jsonb)),
    0,
    'without a context: nothing'
);
reset role;
set local role tenancy_auditor;
select is(
    (select count(*)::int from tenancy.record_history(:projects_oid::oid::regclass, format('{"id": %s}', :alpha)::jsonb)), 5,
    'tenancy_auditor reads a row''s history (the table given by oid: it holds no privilege on schema app)'
);
select is(
    (select array_agg(h.new_data ->> 'body' order by h.id) from tenancy.record_history(:notes_oid::oid::regclass, '{"code": "shared"}') as h),
    array['b shared', 'a shared'],
    'tenancy_auditor: the history of a key two tenants share holds both'
);
select is(
    (
        select array_agg(h.new_data ->> 'body' order by h.id)
        from tenancy.record_history(:notes_oid::oid::regclass, format('{"code": "shared", "tenant_id": "%s"}', :'tenant_b')::jsonb) as h
    ),
    array['b shared'],
    'tenancy_auditor: with the tenant column, one tenant''s history'
);
select throws_ok(
    format($$select tenancy.record_at(%s::oid::regclass, '{"code": "shared"}', clock_timestamp())$$, :notes_oid), '22023',
    'the primary key {"code": "shared"} of app.notes names rows of 2 tenants: add the tenant column tenant_id to it',
    'tenancy_auditor: a key two tenants share needs the tenant column'
);
select is(
    tenancy.record_at(:notes_oid::oid::regclass, format('{"code": "shared", "tenant_id": "%s"}', :'tenant_a')::jsonb, clock_timestamp()) ->> 'body',
    'a shared',
    'tenancy_auditor: with the tenant column, that tenant''s row'
);
select is(
    (select count(*)::int from tenancy.table_at(:projects_oid::oid::regclass, clock_timestamp())), 0,
    'tenancy_auditor has no context: table_at gives nothing'
);
reset role;

select * from finish();
rollback;
