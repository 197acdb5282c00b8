-- The audit trail captures every DML path exactly, in a service and in a user's context; it is immutable, and read under RLS.
-- Each step snapshots the fixture tables before and after a statement (as the superuser) and
-- compares the audit rows the statement wrote with the rows it should have written, built from
-- the snapshots: action, tenant, entity, old and new row (without app.documents.internal_note,
-- the fixture's audit_exclude column), changed columns, actor, session user and metadata. The
-- writes run as tenancy_app in contexts set by tenancy_service, as applications do. COPY FROM
-- is tested with psycopg (tests/py/test_audit_capture.py), as are partitioned tables.

begin;
select plan(116);

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

-- Snapshots of the fixture tables (every tenant's rows, read by the superuser), by a key column
-- unique in these tests: a project's name, a document's title, a ledger entry's memo.
create temporary table snap (phase text, tbl text, key text, j jsonb);
create temporary table step_mark (mark bigint);

create function pg_temp.take(p_phase text)
returns void
language sql
as $$
    insert into snap
    select p_phase, 'projects', p.name, to_jsonb(p) from app.projects as p
    union all
    select p_phase, 'documents', d.title, to_jsonb(d) from app.documents as d
    union all
    select p_phase, 'ledger', l.memo, to_jsonb(l) from app.ledger as l
$$;

-- step(): before a statement: the snapshot, and the last audit row so far.
create function pg_temp.step()
returns void
language sql
as $$
    delete from snap;
    select pg_temp.take('before');
    delete from step_mark;
    insert into step_mark select coalesce(max(a.id), 0) from tenancy.audit_logs as a;
$$;

-- actual(): the audit rows written since step(), as the columns expected() gives.
create function pg_temp.actual()
returns table (
    action text, tenant_id uuid, entity_type text, entity_id text, old_data jsonb, new_data jsonb,
    changed_columns text[], actor_user_id text, actor_role text, db_user text, metadata jsonb,
    this_transaction boolean, api_key_id uuid
)
language sql
as $$
    select
        a.action, a.tenant_id, a.entity_type, a.entity_id, a.old_data, a.new_data, a.changed_columns,
        a.actor_user_id, a.actor_role, a.db_user::text collate "default", a.metadata,
        a.txid = pg_current_xact_id()::text::bigint, a.api_key_id
    from tenancy.audit_logs as a
    where a.id > (select m.mark from step_mark as m)
$$;

-- expected(tenant, user, role, metadata, changes): takes the after snapshot, then the rows the
-- changes should have written. changes: a VALUES list of (action, table, key before, key after
-- when it changed, changed columns); old and new rows come from the snapshots.
create function pg_temp.expected(p_tenant uuid, p_user text, p_role text, p_metadata jsonb, p_changes text)
returns table (
    action text, tenant_id uuid, entity_type text, entity_id text, old_data jsonb, new_data jsonb,
    changed_columns text[], actor_user_id text, actor_role text, db_user text, metadata jsonb,
    this_transaction boolean, api_key_id uuid
)
language plpgsql
as $$
begin
    delete from snap where phase = 'after';
    perform pg_temp.take('after');
    return query execute format(
        $q$
        select
            c.action::text, %L::uuid, format('"app"."%%s"', c.tbl), jsonb_build_object('id', coalesce(n.j, o.j) -> 'id')::text,
            case when c.action <> 'INSERT' then o.j - 'internal_note' end,
            case when c.action <> 'DELETE' then n.j - 'internal_note' end,
            c.changed::text[], %L::text, %L::text, session_user::text collate "default", %L::jsonb, true, null::uuid
        from (values %s) as c (action, tbl, key, new_key, changed)
        left join snap as o on o.phase = 'before' and c.action <> 'INSERT' and o.tbl = c.tbl and o.key = c.key
        left join snap as n on n.phase = 'after' and c.action <> 'DELETE' and n.tbl = c.tbl
            and n.key = coalesce(c.new_key, c.key)
        $q$,
        p_tenant, p_user, p_role, p_metadata, p_changes
    );
end
$$;

-- check(description, tenant, user, role, metadata, changes): bag_eq of actual() and expected().
create function pg_temp.check(
    p_description text, p_tenant uuid, p_user text, p_role text, p_metadata jsonb, p_changes text
)
returns text
language sql
as $$
    select bag_eq(
        'select * from pg_temp.actual()',
        format(
            'select * from pg_temp.expected(%L, %L, %L, %L, %L)',
            p_tenant, p_user, p_role, p_metadata, p_changes
        ),
        p_description
    )
$$;

-- battery(label, tenant, user, parent user): every DML path on app.documents in the context of
-- the user (NULL: a service context), each compared with what it should have written; then a
-- cascaded delete from app.projects in the context of the parent user (NULL: service), who may
-- delete projects. Titles start with the label. Returns pgTAP lines.
create function pg_temp.battery(p_label text, p_tenant uuid, p_user text, p_parent_user text)
returns setof text
language plpgsql
as $$
declare
    v_role text;
    v_parent_role text;
    v_meta jsonb := jsonb_build_object('request_id', 'req-' || p_label, 'ip', '203.0.113.7');
    v_parent_meta jsonb := jsonb_build_object('request_id', 'req-' || p_label || '-parent');
    v_p1 bigint;
    v_p2 bigint;
    v_id bigint;
    v_l text := p_label;
    v_at text := 'in the ' || p_label || ' context: ';
begin
    -- Two projects of the tenant, written in a service context (no assertion on them).
    perform pg_temp.act_as(p_tenant);
    insert into app.projects (name) values (v_l || '-p1'), (v_l || '-p2'), (v_l || '-p3'), (v_l || '-p4');
    select min(p.id), max(p.id) into v_p1, v_p2 from app.projects as p where p.name in (v_l || '-p1', v_l || '-p2');
    reset role;

    perform pg_temp.act_as(p_tenant, p_user);
    v_role := tenancy.current_member_role();
    perform tenancy.set_request_metadata(v_meta);
    reset role;

    -- INSERT, one row and several.
    perform pg_temp.step();
    set local role tenancy_app;
    execute format(
        $s$insert into app.documents (project_id, title, internal_note) values (%s, %L, 'secret-1')$s$,
        v_p1, v_l || '-one'
    );
    reset role;
    return next pg_temp.check(v_at || 'INSERT of one row: one INSERT row', p_tenant, p_user, v_role, v_meta,
        format($v$('INSERT', 'documents', %L, null, null)$v$, v_l || '-one'));

    perform pg_temp.step();
    set local role tenancy_app;
    execute format(
        $s$insert into app.documents (project_id, title, body, internal_note)
        values (%1$s, %2$L, 'b', 'secret-2'), (%1$s, %3$L, 'b', null), (%4$s, %5$L, 'b', 'secret-3')$s$,
        v_p1, v_l || '-two', v_l || '-three', v_p2, v_l || '-four'
    );
    reset role;
    return next pg_temp.check(v_at || 'INSERT of three rows: three INSERT rows', p_tenant, p_user, v_role, v_meta,
        format($v$('INSERT', 'documents', %L, null, null), ('INSERT', 'documents', %L, null, null),
            ('INSERT', 'documents', %L, null, null)$v$, v_l || '-two', v_l || '-three', v_l || '-four'));

    -- UPDATE: several columns of one row (the excluded one too), one column of several rows,
    -- a no-op, only the excluded column, no row at all.
    perform pg_temp.step();
    set local role tenancy_app;
    execute format(
        $s$update app.documents set title = %L, body = 'new body', internal_note = 'secret-4' where title = %L$s$,
        v_l || '-one-renamed', v_l || '-one'
    );
    reset role;
    return next pg_temp.check(v_at || 'UPDATE of title, body and the excluded column: changed_columns {body,title}',
        p_tenant, p_user, v_role, v_meta,
        format($v$('UPDATE', 'documents', %L, %L, '{body,title}')$v$, v_l || '-one', v_l || '-one-renamed'));

    perform pg_temp.step();
    set local role tenancy_app;
    execute format(
        $s$update app.documents set body = 'b2' where title in (%L, %L, %L)$s$, v_l || '-two', v_l || '-three', v_l || '-four'
    );
    reset role;
    return next pg_temp.check(v_at || 'UPDATE of three rows: three UPDATE rows, each old row paired with its new row',
        p_tenant, p_user, v_role, v_meta,
        format($v$('UPDATE', 'documents', %1$L, null, '{body}'), ('UPDATE', 'documents', %2$L, null, '{body}'),
            ('UPDATE', 'documents', %3$L, null, '{body}')$v$, v_l || '-two', v_l || '-three', v_l || '-four'));

    perform pg_temp.step();
    set local role tenancy_app;
    execute format($s$update app.documents set title = title, body = body where title = %L$s$, v_l || '-two');
    reset role;
    return next pg_temp.check(v_at || 'a no-op UPDATE of one row: one UPDATE row, no changed column, old = new',
        p_tenant, p_user, v_role, v_meta, format($v$('UPDATE', 'documents', %L, null, '{}')$v$, v_l || '-two'));

    perform pg_temp.step();
    set local role tenancy_app;
    execute format($s$update app.documents set internal_note = 'secret-5' where title = %L$s$, v_l || '-three');
    reset role;
    return next pg_temp.check(v_at || 'an UPDATE of the excluded column only: one UPDATE row, no changed column',
        p_tenant, p_user, v_role, v_meta, format($v$('UPDATE', 'documents', %L, null, '{}')$v$, v_l || '-three'));

    perform pg_temp.step();
    set local role tenancy_app;
    update app.documents set body = 'none' where title = 'no such title';
    reset role;
    return next is((select count(*)::int from pg_temp.actual()), 0, v_at || 'an UPDATE of no row writes no audit row');

    -- DELETE.
    perform pg_temp.step();
    set local role tenancy_app;
    execute format($s$delete from app.documents where title = %L$s$, v_l || '-four');
    reset role;
    return next pg_temp.check(v_at || 'DELETE of one row: one DELETE row with the old row', p_tenant, p_user, v_role, v_meta,
        format($v$('DELETE', 'documents', %L, null, null)$v$, v_l || '-four'));

    -- INSERT … ON CONFLICT DO UPDATE: one row conflicts (updated), one does not (inserted).
    select d.id into v_id from app.documents as d where d.title = v_l || '-two';
    perform pg_temp.step();
    set local role tenancy_app;
    execute format(
        $s$insert into app.documents (id, project_id, title, internal_note) overriding system value
        values (%1$s, %2$s, %3$L, 'secret-6'), (-%1$s, %2$s, %4$L, 'secret-7')
        on conflict (tenant_id, id) do update set title = excluded.title || '-upserted', internal_note = excluded.internal_note$s$,
        v_id, v_p1, v_l || '-two', v_l || '-five'
    );
    reset role;
    return next pg_temp.check(v_at || 'INSERT ON CONFLICT DO UPDATE: one UPDATE row and one INSERT row',
        p_tenant, p_user, v_role, v_meta,
        format($v$('UPDATE', 'documents', %L, %L, '{title}'), ('INSERT', 'documents', %L, null, null)$v$,
            v_l || '-two', v_l || '-two-upserted', v_l || '-five'));

    -- INSERT … ON CONFLICT DO NOTHING: the conflicting row writes nothing.
    perform pg_temp.step();
    set local role tenancy_app;
    execute format(
        $s$insert into app.documents (id, project_id, title) overriding system value
        values (%1$s, %2$s, 'never'), (-%1$s - 1000000, %2$s, %3$L) on conflict do nothing$s$,
        v_id, v_p1, v_l || '-six'
    );
    reset role;
    return next pg_temp.check(v_at || 'INSERT ON CONFLICT DO NOTHING: one INSERT row, none for the skipped row',
        p_tenant, p_user, v_role, v_meta, format($v$('INSERT', 'documents', %L, null, null)$v$, v_l || '-six'));

    -- MERGE with an UPDATE, a DELETE and an INSERT action, and a source row that matches nothing.
    perform pg_temp.step();
    set local role tenancy_app;
    execute format(
        $s$merge into app.documents as d
        using (values (%1$L, 'merged'), (%2$L, 'gone'), (%3$L, 'added'), (%4$L, 'ignored')) as s (title, what)
        on d.title = s.title
        when matched and s.what = 'merged' then update set body = 'merged body', internal_note = 'secret-8'
        when matched and s.what = 'gone' then delete
        when not matched and s.what = 'added' then insert (project_id, title, internal_note) values (%5$s, s.title, 'secret-9')
        when not matched then do nothing$s$,
        v_l || '-two-upserted', v_l || '-five', v_l || '-seven', v_l || '-eight', v_p2
    );
    reset role;
    return next pg_temp.check(v_at || 'MERGE: one UPDATE, one DELETE and one INSERT row', p_tenant, p_user, v_role, v_meta,
        format($v$('UPDATE', 'documents', %L, null, '{body}'), ('DELETE', 'documents', %L, null, null),
            ('INSERT', 'documents', %L, null, null)$v$, v_l || '-two-upserted', v_l || '-five', v_l || '-seven'));

    -- Writable CTEs: two UPDATEs, a DELETE and an INSERT of the same table in one statement.
    perform pg_temp.step();
    set local role tenancy_app;
    execute format(
        $s$with u1 as (update app.documents set body = 'cte 1' where title = %1$L returning id),
        u2 as (update app.documents set body = 'cte 2' where title = %2$L returning id),
        d as (delete from app.documents where title = %3$L returning id),
        i as (insert into app.documents (project_id, title) values (%4$s, %5$L) returning id)
        select (select count(*) from u1) + (select count(*) from u2) + (select count(*) from d) + (select count(*) from i)$s$,
        v_l || '-one-renamed', v_l || '-three', v_l || '-six', v_p1, v_l || '-nine'
    );
    reset role;
    return next pg_temp.check(v_at || 'writable CTEs: each changed row once', p_tenant, p_user, v_role, v_meta,
        format($v$('UPDATE', 'documents', %L, null, '{body}'), ('UPDATE', 'documents', %L, null, '{body}'),
            ('DELETE', 'documents', %L, null, null), ('INSERT', 'documents', %L, null, null)$v$,
            v_l || '-one-renamed', v_l || '-three', v_l || '-six', v_l || '-nine'));

    -- A rolled-back savepoint takes its audit rows with it; the rest of the transaction keeps its own.
    perform pg_temp.step();
    set local role tenancy_app;
    execute format($s$insert into app.documents (project_id, title) values (%s, %L)$s$, v_p1, v_l || '-kept');
    begin
        execute format($s$insert into app.documents (project_id, title) values (%s, %L)$s$, v_p1, v_l || '-undone');
        execute format($s$update app.documents set body = 'undone' where title = %L$s$, v_l || '-kept');
        execute format($s$delete from app.documents where title = %L$s$, v_l || '-nine');
        raise exception using errcode = 'P0001', message = 'roll back to the savepoint';
    exception when sqlstate 'P0001' then
        null;
    end;
    reset role;
    return next pg_temp.check(v_at || 'a rolled-back savepoint leaves no audit row; the statement before it keeps its own',
        p_tenant, p_user, v_role, v_meta, format($v$('INSERT', 'documents', %L, null, null)$v$, v_l || '-kept'));

    -- Cascaded delete: one project row and the two documents the foreign key deletes with it, in
    -- the context of whoever deleted the project; then two projects at once.
    set local role tenancy_app;
    execute format(
        $s$insert into app.documents (project_id, title) values (%1$s, %2$L), (%1$s, %3$L)$s$,
        v_p2, v_l || '-child-1', v_l || '-child-2'
    );
    reset role;
    perform pg_temp.act_as(p_tenant, p_parent_user);
    v_parent_role := tenancy.current_member_role();
    perform tenancy.set_request_metadata(v_parent_meta);
    reset role;
    perform pg_temp.step();
    set local role tenancy_app;
    execute format($s$delete from app.projects where name = %L$s$, v_l || '-p2');
    reset role;
    return next pg_temp.check(v_at || 'a cascaded delete: the project''s DELETE row and one per document deleted with it',
        p_tenant, p_parent_user, v_parent_role, v_parent_meta,
        format($v$('DELETE', 'projects', %L, null, null), ('DELETE', 'documents', %L, null, null),
            ('DELETE', 'documents', %L, null, null), ('DELETE', 'documents', %L, null, null)$v$,
            v_l || '-p2', v_l || '-child-1', v_l || '-child-2', v_l || '-seven'));
    set local role tenancy_app;
    execute format(
        $s$insert into app.documents (project_id, title)
        select p.id, p.name || '-doc-' || g from app.projects as p, generate_series(1, 2) as g where p.name in (%L, %L)$s$,
        v_l || '-p3', v_l || '-p4'
    );
    reset role;
    perform pg_temp.step();
    set local role tenancy_app;
    execute format($s$delete from app.projects where name in (%L, %L)$s$, v_l || '-p3', v_l || '-p4');
    reset role;
    return next pg_temp.check(v_at || 'a cascaded delete of two projects: every deleted row exactly once',
        p_tenant, p_parent_user, v_parent_role, v_parent_meta,
        format($v$('DELETE', 'projects', %1$L, null, null), ('DELETE', 'projects', %2$L, null, null),
            ('DELETE', 'documents', %1$L || '-doc-1', null, null), ('DELETE', 'documents', %1$L || '-doc-2', null, null),
            ('DELETE', 'documents', %2$L || '-doc-1', null, null), ('DELETE', 'documents', %2$L || '-doc-2', null, null)$v$,
            v_l || '-p3', v_l || '-p4'));
end
$$;

-- Tenants, members ----------------------------------------------------------------------------

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as admin_a,
    'auth0|' || gen_random_uuid() as member_a,
    'auth0|' || gen_random_uuid() as viewer_a,
    'auth0|' || gen_random_uuid() as owner_b
\gset

set local role tenancy_admin;
select tenancy.create_tenant('audit-a', 'Audit A', :'owner_a', null, '42') as tenant_a \gset
select tenancy.create_tenant('audit-b', 'Audit B', :'owner_b', null, '43') as tenant_b \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a') \gset
select tenancy.add_member(:'admin_a', 'admin') \gset
select tenancy.add_member(:'member_a', 'member') \gset
select tenancy.add_member(:'viewer_a', 'viewer') \gset
reset role;

-- Every DML path, in a service context and in a member's ------------------------------------

select * from pg_temp.battery('svc', :'tenant_a', null, null);
select * from pg_temp.battery('mbr', :'tenant_a', :'member_a', :'admin_a');

-- Tenant B's rows, written by its owner. Request metadata lasts for the transaction, across
-- contexts: a new request sets its own.
select pg_temp.act_as(:'tenant_b', :'owner_b') \gset
select tenancy.set_request_metadata('{}') \gset
reset role;
select pg_temp.step() \gset
set local role tenancy_app;
insert into app.projects (name) values ('b-project');
insert into app.documents (project_id, title, internal_note)
select
    p.id,
    'b-document' as title,
    'secret-b' as internal_note
from app.projects as p
where p.name = 'b-project';
reset role;
select pg_temp.check(
    'in tenant B''s owner''s context: its INSERT rows name tenant B and the owner', :'tenant_b', :'owner_b', 'owner', '{}',
    $v$('INSERT', 'projects', 'b-project', null, null), ('INSERT', 'documents', 'b-document', null, null)$v$
);

-- Excluded columns never appear --------------------------------------------------------------

select is(
    (
        select count(*)::int from tenancy.audit_logs as a
        where
            a.entity_type = '"app"."documents"'
            and (a.old_data ? 'internal_note' or a.new_data ? 'internal_note' or 'internal_note' = any(a.changed_columns))
    ),
    0,
    'no audit row of app.documents holds internal_note, in old_data, new_data or changed_columns'
);
select is(
    (
        select count(*)::int from tenancy.audit_logs as a
        where a::text like '%secret-%'
    ),
    0,
    'no value ever written to internal_note is in the audit trail'
);
select cmp_ok(
    (
        select count(*)::int from app.documents as d
        where d.internal_note like 'secret-%'
    ), '>', 0,
    'while the documents hold such values'
);
select ok(
    (
        select bool_and(a.new_data ?& array['tenant_id', 'id', 'project_id', 'title', 'body', 'created_at'])
        from tenancy.audit_logs as a
        where a.entity_type = '"app"."documents"' and a.action = 'INSERT'
    ),
    'the other columns are all there'
);

-- A table keyed by the tenant key: the tenant comes from the key -----------------------------

select pg_temp.act_as(:'tenant_a') \gset
select tenancy.set_request_metadata('{"job": "ledger"}') \gset
reset role;
select pg_temp.step() \gset
set local role tenancy_app;
insert into app.ledger (amount, memo) values (10, 'l-one'), (20, 'l-two');
reset role;
select pg_temp.check(
    'app.ledger (bigint key 42) in tenant A''s service context: INSERT rows name tenant A',
    :'tenant_a', null, 'service', '{"job": "ledger"}',
    $v$('INSERT', 'ledger', 'l-one', null, null), ('INSERT', 'ledger', 'l-two', null, null)$v$
);
select pg_temp.step() \gset
set local role tenancy_app;
update app.ledger set amount = 11
where memo = 'l-one';
reset role;
select pg_temp.check(
    'app.ledger: UPDATE rows name tenant A', :'tenant_a', null, 'service', '{"job": "ledger"}',
    $v$('UPDATE', 'ledger', 'l-one', null, '{amount}')$v$
);
select pg_temp.step() \gset
set local role tenancy_app;
delete from app.ledger
where memo = 'l-two';
reset role;
select pg_temp.check(
    'app.ledger: DELETE rows name tenant A', :'tenant_a', null, 'service', '{"job": "ledger"}',
    $v$('DELETE', 'ledger', 'l-two', null, null)$v$
);
-- Written without a context by the superuser: the tenant is looked up by its key, or NULL.
select tenancy.clear_context() \gset
select tenancy.set_request_metadata('{}') \gset
select pg_temp.step() \gset
insert into app.ledger (account_key, amount, memo) values (43, 1, 'l-b'), (99, 2, 'l-nobody');
select results_eq(
    $$select tenant_id, entity_id::jsonb = jsonb_build_object('id', new_data -> 'id'), new_data ->> 'memo',
        actor_user_id, actor_role, metadata from pg_temp.actual() order by new_data ->> 'memo'$$,
    format(
        $$values (%L::uuid, true, 'l-b'::text, null::text, null::text, '{}'::jsonb), (null, true, 'l-nobody', null, null, '{}')$$,
        :'tenant_b'
    ),
    'written by the superuser without a context: key 43 is tenant B, key 99 no tenant (NULL), no actor'
);

-- Under session_replication_role = replica the triggers fire all the same -------------------

set local session_replication_role = replica;
select pg_temp.act_as(:'tenant_a', :'admin_a') \gset
select tenancy.set_request_metadata('{}') \gset
reset role;
select pg_temp.step() \gset
set local role tenancy_app;
insert into app.projects (name) values ('replica-project');
reset role;
select pg_temp.check(
    'under session_replication_role = replica: INSERT rows are written', :'tenant_a', :'admin_a', 'admin', '{}',
    $v$('INSERT', 'projects', 'replica-project', null, null)$v$
);
select pg_temp.step() \gset
set local role tenancy_app;
update app.projects set name = 'replica-project-2'
where name = 'replica-project';
reset role;
select pg_temp.check(
    'under session_replication_role = replica: UPDATE rows are written', :'tenant_a', :'admin_a', 'admin', '{}',
    $v$('UPDATE', 'projects', 'replica-project', 'replica-project-2', '{name}')$v$
);
select pg_temp.step() \gset
set local role tenancy_app;
delete from app.projects
where name = 'replica-project-2';
reset role;
select pg_temp.check(
    'under session_replication_role = replica: DELETE rows are written', :'tenant_a', :'admin_a', 'admin', '{}',
    $v$('DELETE', 'projects', 'replica-project-2', null, null)$v$
);
select pg_temp.step() \gset
insert into app.ledger (account_key, amount, memo) values (42, 3, 'l-replica');
select is(
    (
        select count(*)::int from pg_temp.actual()
        where new_data ->> 'memo' = 'l-replica' and tenant_id = :'tenant_a'
    ),
    1,
    'and so for a superuser''s write into app.ledger'
);
reset session_replication_role;

-- TRUNCATE of an audited table is refused -----------------------------------------------------

-- The GRANT below rewrites these tables' pg_class rows in this transaction; an autovacuum of one
-- of them would then wait for this transaction to update its statistics there while the TRUNCATE
-- waits for the autovacuum (a deadlock). Holding SHARE UPDATE EXCLUSIVE first keeps autovacuum
-- off them until the test ends.
lock table app.documents, app.projects, app.ledger in share update exclusive mode;
select 'audit_truncater_' || substr(md5(random()::text), 1, 8) as truncater \gset
select format('create role %I nologin', :'truncater') \gexec
select format('grant usage on schema app to %I', :'truncater') \gexec
select format('grant truncate on app.documents, app.projects, app.ledger to %I', :'truncater') \gexec
set local role tenancy_app;
select throws_ok('truncate app.documents', '42501', null, 'tenancy_app cannot TRUNCATE a tenant table (no privilege)');
set local role tenancy_service;
select throws_ok('truncate app.documents', '42501', null, 'tenancy_service cannot either');
select format('set local role %I', :'truncater') \gexec
select throws_ok(
    'truncate app.documents', 'TN015',
    'TRUNCATE of audited table app.documents is refused: the audit trail could not record its rows',
    'a role holding TRUNCATE is refused by the trigger: TN015'
);
select throws_ok('truncate app.ledger', 'TN015', null, 'also on app.ledger');
reset role;
select throws_ok('truncate app.documents', 'TN015', null, 'the superuser is refused: TN015');
set local client_min_messages = warning;  -- not the NOTICE that the truncate cascades
select throws_ok('truncate app.projects cascade', 'TN015', null, 'TRUNCATE … CASCADE too');
reset client_min_messages;
set local session_replication_role = replica;
select throws_ok('truncate app.documents', 'TN015', null, 'and under session_replication_role = replica');
reset session_replication_role;
select cmp_ok((select count(*)::int from app.documents), '>', 0, 'the documents are still there');
select lives_ok(
    $$delete from app.ledger where memo = 'l-nobody'$$,
    'DELETE, which is recorded row by row, is the way to remove rows'
);

-- The audit trail is immutable ----------------------------------------------------------------

-- some_id: a row of this transaction, so in this month's partition.
select
    max(id) as some_id,
    count(*) as trail_count
from tenancy.audit_logs \gset
select to_jsonb(a) as some_row from tenancy.audit_logs as a
where a.id = :some_id \gset

set local role tenancy_app;
select throws_ok(
    format('update tenancy.audit_logs set action = %L where id = %s', 'X', :some_id), '42501', null,
    'tenancy_app cannot UPDATE audit rows (no privilege)'
);
select throws_ok(
    format('delete from tenancy.audit_logs where id = %s', :some_id), '42501', null,
    'tenancy_app cannot DELETE audit rows'
);
select throws_ok('truncate tenancy.audit_logs', '42501', null, 'tenancy_app cannot TRUNCATE the trail');
set local role tenancy_service;
select throws_ok(
    format('update tenancy.audit_logs set action = %L where id = %s', 'X', :some_id), '42501', null,
    'tenancy_service cannot UPDATE audit rows (no privilege)'
);
select throws_ok(
    format('delete from tenancy.audit_logs where id = %s', :some_id), '42501', null,
    'tenancy_service cannot DELETE audit rows'
);
select throws_ok('truncate tenancy.audit_logs', '42501', null, 'tenancy_service cannot TRUNCATE the trail');
set local role tenancy_admin;
select throws_ok(
    format('update tenancy.audit_logs set action = %L where id = %s', 'X', :some_id), '42501', null,
    'tenancy_admin cannot UPDATE audit rows (no privilege)'
);
select throws_ok(
    format('delete from tenancy.audit_logs where id = %s', :some_id), '42501', null,
    'tenancy_admin cannot DELETE audit rows'
);
select throws_ok('truncate tenancy.audit_logs', '42501', null, 'tenancy_admin cannot TRUNCATE the trail');
set local role tenancy_auditor;
select throws_ok(
    format('update tenancy.audit_logs set action = %L where id = %s', 'X', :some_id), '42501', null,
    'tenancy_auditor cannot UPDATE audit rows (no privilege)'
);
select throws_ok(
    format('delete from tenancy.audit_logs where id = %s', :some_id), '42501', null,
    'tenancy_auditor cannot DELETE audit rows'
);
select throws_ok('truncate tenancy.audit_logs', '42501', null, 'tenancy_auditor cannot TRUNCATE the trail');
set local role tenancy_owner;
select throws_ok(
    format('update tenancy.audit_logs set action = %L where id = %s', 'X', :some_id), '42501', null,
    'tenancy_owner cannot UPDATE audit rows (no privilege)'
);
select throws_ok(
    format('delete from tenancy.audit_logs where id = %s', :some_id), '42501', null,
    'tenancy_owner cannot DELETE audit rows'
);
select throws_ok('truncate tenancy.audit_logs', '42501', null, 'tenancy_owner cannot TRUNCATE the trail');
select throws_ok('truncate tenancy.audit_logs_default', '42501', null, 'nor one of its partitions');
-- The trail's owner holds the privileges; the triggers refuse it.
reset role;
set local role tenancy_audit_owner;
select throws_ok(
    format('update tenancy.audit_logs set action = %L where id = %s', 'X', :some_id), 'TN016', null,
    'tenancy_audit_owner, the owner, cannot UPDATE audit rows: TN016'
);
select throws_ok(
    format('delete from tenancy.audit_logs where id = %s', :some_id), 'TN016', null,
    'tenancy_audit_owner cannot DELETE audit rows: TN016'
);
select throws_ok('truncate tenancy.audit_logs', 'TN016', null, 'tenancy_audit_owner cannot TRUNCATE the trail: TN016');
reset role;
select throws_ok(
    format('update tenancy.audit_logs set action = %L where id = %s', 'X', :some_id), 'TN016', 'the audit trail is immutable: UPDATE on tenancy.audit_logs_' || to_char(now(), 'YYYY_MM') || ' is refused',
    'the superuser cannot UPDATE audit rows: TN016'
);
select throws_ok(
    format('delete from tenancy.audit_logs where id = %s', :some_id), 'TN016', null,
    'the superuser cannot DELETE audit rows: TN016'
);
select throws_ok('truncate tenancy.audit_logs', 'TN016', null, 'the superuser cannot TRUNCATE the trail: TN016');
select throws_ok(
    format('truncate tenancy.audit_logs_%s', to_char(now(), 'YYYY_MM')), 'TN016', null,
    'nor this month''s partition'
);
select throws_ok('truncate tenancy.audit_logs_default', 'TN016', null, 'nor the default partition');
set local session_replication_role = replica;
select throws_ok(
    format('update tenancy.audit_logs set action = %L where id = %s', 'X', :some_id), 'TN016', null,
    'under session_replication_role = replica: UPDATE is TN016'
);
select throws_ok(
    format('delete from tenancy.audit_logs where id = %s', :some_id), 'TN016', null,
    'DELETE is TN016'
);
select throws_ok('truncate tenancy.audit_logs', 'TN016', null, 'TRUNCATE is TN016');
reset session_replication_role;
select results_eq(
    format('select count(*), bool_and(action <> %L) from tenancy.audit_logs', 'X'),
    format('values (%s::bigint, true)', :trail_count),
    'every audit row is still there'
);
select is(
    (
        select to_jsonb(a) from tenancy.audit_logs as a
        where a.id = :some_id
    ), :'some_row'::jsonb,
    'and the row the statements aimed at is unchanged'
);

-- Only pgtenancy's functions write the trail ---------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'owner_a') \gset
select format(
    $$insert into tenancy.audit_logs (tenant_id, txid, action, entity_type) values (%L, 1, 'INSERT', 'forged')$$,
    :'tenant_a'
) as forge \gset
set local role tenancy_app;
select throws_ok(:'forge', '42501', null, 'tenancy_app cannot INSERT into the trail');
set local role tenancy_service;
select throws_ok(:'forge', '42501', null, 'tenancy_service cannot INSERT into the trail');
set local role tenancy_admin;
select throws_ok(:'forge', '42501', null, 'tenancy_admin cannot INSERT into the trail');
set local role tenancy_auditor;
select throws_ok(:'forge', '42501', null, 'tenancy_auditor cannot INSERT into the trail');
reset role;
select pg_temp.step() \gset
set local role tenancy_app;
select tenancy.set_request_metadata('{"request_id": "req-log", "ip": "198.51.100.1"}') \gset
select tenancy.log_audit(
    'user.updated', 'user', 'auth0|bob', '{"name": "Bob", "plan": "free", "zip": "1"}',
    '{"name": "Bob", "plan": "pro", "email": "bob@example.com"}', '{"ip": "198.51.100.2", "reason": "upgrade"}'
) as log_id \gset
reset role;
select results_eq(
    $$select action, tenant_id, entity_type, entity_id, old_data, new_data, changed_columns, actor_user_id,
        actor_role, db_user, metadata, this_transaction from pg_temp.actual()$$,
    format(
        $$values ('user.updated'::text, %L::uuid, 'user'::text, 'auth0|bob'::text,
            '{"name": "Bob", "plan": "free", "zip": "1"}'::jsonb, '{"name": "Bob", "plan": "pro", "email": "bob@example.com"}'::jsonb,
            '{email,plan,zip}'::text[], %L::text, 'owner'::text, session_user::text collate "default",
            '{"request_id": "req-log", "ip": "198.51.100.2", "reason": "upgrade"}'::jsonb, true)$$,
        :'tenant_a', :'owner_a'
    ),
    'tenancy.log_audit as tenancy_app writes one row: changed columns computed, its metadata over the request''s'
);
select is(
    (select max(id) from tenancy.audit_logs), :'log_id'::bigint, 'log_audit returns the id of its row'
);

-- log_audit's checks: 22023 naming the value, TN001 without a context, nothing written ----------

select pg_temp.step() \gset
set local role tenancy_app;
select throws_ok(
    $$select tenancy.log_audit(null, 'user', '1', null, null)$$, '22023',
    'audit action NULL is not valid: 1 to 100 characters, lower-case words of a-z, 0-9 and _ joined by dots (user.updated)',
    'log_audit: a NULL action is 22023'
);
select throws_ok(
    $$select tenancy.log_audit('User.Updated', 'user', '1', null, null)$$, '22023',
    'audit action ''User.Updated'' is not valid: 1 to 100 characters, lower-case words of a-z, 0-9 and _ joined by dots (user.updated)',
    'log_audit: an upper-case action is 22023'
);
select throws_ok(
    $$select tenancy.log_audit('user..updated', 'user', '1', null, null)$$, '22023', null,
    'log_audit: an action with an empty word is 22023'
);
select throws_ok(
    $$select tenancy.log_audit(repeat('a', 101), 'user', '1', null, null)$$, '22023', null,
    'log_audit: an action over 100 characters is 22023'
);
select throws_ok(
    $$select tenancy.log_audit('user.updated', null, '1', null, null)$$, '22023',
    'audit entity type NULL is not valid: 1 to 100 characters, lower-case words of a-z, 0-9 and _ joined by dots (user, billing.invoice)',
    'log_audit: a NULL entity type is 22023'
);
select throws_ok(
    $$select tenancy.log_audit('user.updated', '"app"."documents"', '1', null, null)$$, '22023', null,
    'log_audit: an entity type shaped like a table''s is 22023 (row changes are the triggers'')'
);
select throws_ok(
    $$select tenancy.log_audit('user.updated', 'user', repeat('x', 501), null, null)$$, '22023', null,
    'log_audit: an entity id over 500 characters is 22023'
);
select throws_ok(
    $$select tenancy.log_audit('user.updated', 'user', E'bob\nalice', null, null)$$, '22023',
    E'audit entity id ''bob\nalice'' is not valid: at most 500 characters, no control characters',
    'log_audit: an entity id with a control character is 22023'
);
select throws_ok(
    $$select tenancy.log_audit('user.updated', 'user', '1', '[1]', null)$$, '22023',
    'audit old and new values must be JSON objects or NULL, got [1] and NULL',
    'log_audit: an old value that is not an object is 22023'
);
select throws_ok(
    $$select tenancy.log_audit('user.updated', 'user', '1', null, '"x"')$$, '22023',
    'audit old and new values must be JSON objects or NULL, got NULL and "x"',
    'log_audit: a new value that is not an object is 22023'
);
select throws_ok(
    $$select tenancy.log_audit('user.updated', 'user', '1', null, null, null)$$, '22023',
    'audit metadata must be a JSON object, got NULL',
    'log_audit: NULL metadata is 22023'
);
select throws_ok(
    $$select tenancy.log_audit('user.updated', 'user', '1', null, null, '[]')$$, '22023',
    'audit metadata must be a JSON object, got []',
    'log_audit: metadata that is not an object is 22023'
);
reset role;
select tenancy.clear_context() \gset
set local role tenancy_app;
select throws_ok(
    $$select tenancy.log_audit('user.updated', 'user', '1', null, null)$$, 'TN001', null,
    'log_audit without a context is TN001'
);
set local role tenancy_auditor;
select throws_ok(
    $$select tenancy.log_audit('user.updated', 'user', '1', null, null)$$, '42501', null,
    'tenancy_auditor cannot call log_audit'
);
reset role;
select is((select count(*)::int from pg_temp.actual()), 0, 'the refused calls wrote nothing');

-- set_request_metadata's checks ------------------------------------------------------------------

set local role tenancy_app;
select throws_ok(
    'select tenancy.set_request_metadata(null)', '22023', 'request metadata must be a JSON object, got NULL',
    'set_request_metadata: NULL is 22023'
);
select throws_ok(
    $$select tenancy.set_request_metadata('["a"]')$$, '22023', 'request metadata must be a JSON object, got ["a"]',
    'set_request_metadata: an array is 22023'
);
select throws_ok(
    $$select tenancy.set_request_metadata('"a"')$$, '22023', null, 'set_request_metadata: a string is 22023'
);
select throws_ok(
    $$select tenancy.set_request_metadata(jsonb_build_object('ua', repeat('x', 8200)))$$, '22023',
    'request metadata of 8210 bytes is too large: at most 8192 (it is copied into every audit row)',
    'set_request_metadata: more than 8 KB is 22023'
);
select lives_ok(
    $$select tenancy.set_request_metadata(jsonb_build_object('ua', repeat('x', 8000)))$$,
    'set_request_metadata: 8 KB or less is taken'
);
reset role;

-- Who reads the trail (RLS) ----------------------------------------------------------------------

select
    count(*) filter (where tenant_id = :'tenant_a') as rows_a,
    count(*) filter (where tenant_id = :'tenant_b') as rows_b,
    count(*) as rows_all
from tenancy.audit_logs \gset
select pg_temp.act_as(:'tenant_a', :'owner_a') \gset
select results_eq(
    'select count(*)::int, count(*) filter (where tenant_id = tenancy.current_tenant_id())::int from tenancy.audit_logs',
    format('values (%s, %s)', :rows_a, :rows_a),
    'tenant A''s owner reads A''s trail, and nothing else'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'admin_a') \gset
select results_eq(
    'select count(*)::int, count(*) filter (where tenant_id = tenancy.current_tenant_id())::int from tenancy.audit_logs',
    format('values (%s, %s)', :rows_a, :rows_a),
    'tenant A''s admin reads A''s trail, and nothing else'
);
reset role;
select pg_temp.act_as(:'tenant_a') \gset
select is((select count(*)::int from tenancy.audit_logs), :rows_a, 'a service context in A reads A''s trail');
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a') \gset
select is((select count(*)::int from tenancy.audit_logs), 0, 'a member of A reads none');
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a') \gset
select is((select count(*)::int from tenancy.audit_logs), 0, 'a viewer of A reads none');
reset role;
select pg_temp.act_as(:'tenant_b', :'owner_b') \gset
select results_eq(
    'select count(*)::int, count(*) filter (where tenant_id = tenancy.current_tenant_id())::int from tenancy.audit_logs',
    format('values (%s, %s)', :rows_b, :rows_b),
    'tenant B''s owner reads B''s trail, none of A''s rows'
);
reset role;
select tenancy.clear_context() \gset
set local role tenancy_app;
select is((select count(*)::int from tenancy.audit_logs), 0, 'tenancy_app without a context reads none');
set local role tenancy_auditor;
select is((select count(*)::int from tenancy.audit_logs), :rows_all, 'tenancy_auditor reads every row of every tenant');
set local role tenancy_admin;
select throws_ok('select count(*) from tenancy.audit_logs', '42501', null, 'tenancy_admin holds no SELECT on the trail');
reset role;

select * from finish();
rollback;
