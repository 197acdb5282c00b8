-- The fixture tables (tests/fixtures: app.projects, app.documents) with real rows in two tenants:
-- what each member role of tenant A can read and write, and that tenant B's rows never move.
-- Fixtures: tenants by tenancy_admin, members and rows written through service and owner
-- contexts as tenancy_app. The superuser only reads ids and, at the end, the stored rows.

begin;
select plan(39);

\ir setup/helpers.psql

-- Rows already in the database (of other tenants), counted by the superuser.
select
    (select count(*) from app.projects) as projects_before,
    (select count(*) from app.documents) as documents_before
\gset

select
    gen_random_uuid() as owner_a,
    gen_random_uuid() as admin_a,
    gen_random_uuid() as member_a,
    gen_random_uuid() as viewer_a,
    gen_random_uuid() as owner_b
\gset

set local role tenancy_admin;
select tenancy.create_tenant('app-a', 'App A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant('app-b', 'App B', :'owner_b') as tenant_b \gset

-- Tenant A: three members besides the owner; two projects with three documents.
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy.add_member(:'admin_a', 'admin') as added_admin \gset
select tenancy.add_member(:'member_a', 'member') as added_member \gset
select tenancy.add_member(:'viewer_a', 'viewer') as added_viewer \gset
insert into app.projects (name) values ('alpha-plan'), ('alpha-build');
insert into app.documents (project_id, title)
select
    p.id,
    d.title
from app.projects as p
inner join (values ('alpha-plan', 'Roadmap'), ('alpha-plan', 'Budget'), ('alpha-build', 'Runbook')) as d (project, title)
    on p.name = d.project;

-- Tenant B: one project with two documents, written by its owner.
select pg_temp.act_as(:'tenant_b', :'owner_b');
insert into app.projects (name) values ('beta-secret');
insert into app.documents (project_id, title, body)
select
    p.id,
    d.title,
    'confidential' as body
from app.projects as p, (values ('Contract'), ('Payroll')) as d (title)
where p.name = 'beta-secret';
select tenancy.clear_context() \gset

-- Ids of B's rows, read by the superuser, for the attacks below.
reset role;
select
    p.id as b_project,
    (
        select min(d.id) from app.documents as d
        where d.tenant_id = p.tenant_id
    ) as b_document
from app.projects as p
where p.tenant_id = :'tenant_b'
\gset

-- A member of A ---------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');

-- Only A's rows are visible: 2 projects, 3 documents.
select results_eq(
    'select tenant_id, count(*) from app.projects group by tenant_id',
    format('values (%L::uuid, 2::bigint)', :'tenant_a'),
    'a member of A sees the 2 projects of A and no other'
);
select results_eq(
    'select tenant_id, count(*) from app.documents group by tenant_id',
    format('values (%L::uuid, 3::bigint)', :'tenant_a'),
    'a member of A sees the 3 documents of A and no other'
);

-- B's rows cannot be found by id either.
select is_empty(
    format('select * from app.projects where id = %s', :b_project),
    'B''s project is not visible by id'
);
select is_empty(
    format('select * from app.documents where tenant_id = %L', :'tenant_b'),
    'B''s documents are not visible by tenant_id'
);

-- Writes aimed at B's rows touch nothing: 0 rows.
select is(
    pg_temp.row_count(format('update app.documents set body = %L where id = %s', 'pwned', :b_document)),
    0::bigint,
    'updating B''s document by id affects 0 rows'
);
select is(
    pg_temp.row_count(format('update app.documents set body = %L where tenant_id = %L', 'pwned', :'tenant_b')),
    0::bigint,
    'updating B''s documents by tenant_id affects 0 rows'
);
select is(
    pg_temp.row_count(format('delete from app.documents where id = %s', :b_document)),
    0::bigint,
    'deleting B''s document by id affects 0 rows'
);

-- A row for B: refused by row level security (42501).
select throws_ok(
    format(
        'insert into app.documents (tenant_id, project_id, title) values (%L, %s, %L)',
        :'tenant_b', :b_project, 'Planted'
    ),
    '42501',
    'new row violates row-level security policy for table "documents"',
    'a member of A cannot insert a document with B''s tenant_id'
);

-- A document of A pointing at B's project: the foreign key includes tenant_id (23503).
select throws_ok(
    format('insert into app.documents (project_id, title) values (%s, %L)', :b_project, 'Cross link'),
    '23503',
    'insert or update on table "documents" violates foreign key constraint "documents_project_fkey"',
    'a document of A cannot reference B''s project'
);

-- The member writes A's documents: a new one, then an edit (1 row).
select lives_ok(
    $$insert into app.documents (project_id, title)
      select id, 'Notes' from app.projects where name = 'alpha-build'$$,
    'a member adds a document to A'
);
select is(
    pg_temp.row_count($$update app.documents set body = 'edited' where title = 'Roadmap'$$),
    1::bigint,
    'a member edits a document of A (1 row)'
);

-- Moving a document to B: TN006.
select throws_ok(
    format('update app.documents set tenant_id = %L where title = %L', :'tenant_b', 'Roadmap'),
    'TN006',
    format('tenant_id of app.documents cannot change (from %s to %s)', :'tenant_a', :'tenant_b'),
    'a member cannot move a document to B'
);

-- Projects are written by owners and admins only: 42501 on insert, 0 rows on update and delete.
select throws_ok(
    $$insert into app.projects (name) values ('member-made')$$,
    '42501',
    'new row violates row-level security policy for table "projects"',
    'a member cannot create projects'
);
select is(
    pg_temp.row_count($$update app.projects set name = 'renamed' where name = 'alpha-plan'$$),
    0::bigint,
    'a member cannot rename projects (0 rows)'
);
select is(
    pg_temp.row_count($$delete from app.projects where name = 'alpha-build'$$),
    0::bigint,
    'a member cannot delete projects (0 rows)'
);

-- A viewer of A ---------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'viewer_a');

-- Reads everything of A: 4 documents now.
select is((select count(*) from app.documents), 4::bigint, 'a viewer of A sees the 4 documents of A');

-- Writes nothing: 42501 on insert, 0 rows on update and delete.
select throws_ok(
    $$insert into app.documents (project_id, title)
      select id, 'Viewer notes' from app.projects where name = 'alpha-plan'$$,
    '42501',
    'new row violates row-level security policy for table "documents"',
    'a viewer cannot add documents'
);
select is(
    pg_temp.row_count($$update app.documents set body = 'viewer was here'$$),
    0::bigint,
    'a viewer cannot edit documents (0 rows)'
);
select is(
    pg_temp.row_count('delete from app.documents'),
    0::bigint,
    'a viewer cannot delete documents (0 rows)'
);

-- An admin of A ---------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'admin_a');

-- Creates, renames and deletes A's projects.
select lives_ok(
    $$insert into app.projects (name) values ('alpha-ship')$$, 'an admin creates a project in A'
);
select is(
    pg_temp.row_count($$update app.projects set name = 'alpha-launch' where name = 'alpha-ship'$$),
    1::bigint,
    'an admin renames a project of A (1 row)'
);
select is(
    pg_temp.row_count($$delete from app.projects where name = 'alpha-launch'$$),
    1::bigint,
    'an admin deletes a project of A (1 row)'
);

-- New rows default to the context's tenant.
select lives_ok(
    $$insert into app.projects (name) values ('alpha-default')$$, 'an admin inserts without tenant_id'
);
select is(
    (
        select tenant_id from app.projects
        where name = 'alpha-default'
    ),
    :'tenant_a'::uuid,
    'a row inserted without tenant_id belongs to the context''s tenant'
);

-- But never touches B's: 42501 on insert, 0 rows on update and delete, TN006 on moving.
select throws_ok(
    format('insert into app.projects (tenant_id, name) values (%L, %L)', :'tenant_b', 'planted'),
    '42501',
    'new row violates row-level security policy for table "projects"',
    'an admin of A cannot insert a project with B''s tenant_id'
);
select is(
    pg_temp.row_count(format('update app.projects set name = %L where id = %s', 'taken', :b_project)),
    0::bigint,
    'an admin of A cannot rename B''s project (0 rows)'
);
select is(
    pg_temp.row_count(format('delete from app.projects where id = %s', :b_project)),
    0::bigint,
    'an admin of A cannot delete B''s project (0 rows)'
);
select throws_ok(
    format('update app.projects set tenant_id = %L where name = %L', :'tenant_b', 'alpha-plan'),
    'TN006',
    format('tenant_id of app.projects cannot change (from %s to %s)', :'tenant_a', :'tenant_b'),
    'an admin cannot move a project to B'
);

-- No context --------------------------------------------------------------------------------------

select tenancy.clear_context() \gset

-- Nothing is visible.
select is((select count(*) from app.projects), 0::bigint, 'without a context no project is visible');
select is((select count(*) from app.documents), 0::bigint, 'without a context no document is visible');

-- Every write is TN001, even one that would touch no row.
select throws_ok(
    $$insert into app.projects (tenant_id, name) values (gen_random_uuid(), 'orphan')$$,
    'TN001',
    'no tenant context: INSERT on app.projects needs tenancy.authenticate() or tenancy.set_context() '
    'earlier in the transaction',
    'inserting without a context is TN001'
);
select throws_ok(
    $$update app.documents set body = 'x'$$,
    'TN001',
    'no tenant context: UPDATE on app.documents needs tenancy.authenticate() or tenancy.set_context() '
    'earlier in the transaction',
    'updating without a context is TN001'
);
select throws_ok(
    'delete from app.documents',
    'TN001',
    'no tenant context: DELETE on app.documents needs tenancy.authenticate() or tenancy.set_context() '
    'earlier in the transaction',
    'deleting without a context is TN001'
);

-- B's owner, meanwhile, still sees all of B --------------------------------------------------------

select pg_temp.act_as(:'tenant_b', :'owner_b');
select results_eq(
    'select title, body from app.documents order by title',
    $$values ('Contract'::text, 'confidential'::text), ('Payroll', 'confidential')$$,
    'B''s owner sees B''s two documents, unchanged'
);

-- What is stored (read by the superuser) ----------------------------------------------------------

reset role;
select results_eq(
    format('select name from app.projects where tenant_id = %L', :'tenant_b'),
    $$values ('beta-secret'::text)$$,
    'B''s project is stored unchanged'
);
select results_eq(
    format('select title, body from app.documents where tenant_id = %L order by title', :'tenant_b'),
    $$values ('Contract'::text, 'confidential'::text), ('Payroll', 'confidential')$$,
    'B''s documents are stored unchanged'
);
select results_eq(
    format('select name from app.projects where tenant_id = %L order by name', :'tenant_a'),
    $$values ('alpha-build'::text), ('alpha-default'), ('alpha-plan')$$,
    'A''s projects are the two originals plus the admin''s'
);
select results_eq(
    format('select title, body from app.documents where tenant_id = %L order by title', :'tenant_a'),
    $$values ('Budget'::text, ''::text), ('Notes', ''), ('Roadmap', 'edited'), ('Runbook', '')$$,
    'A''s documents are the three originals plus the member''s, with the member''s edit'
);
select is(
    array[
        (
            select count(*) from app.projects
            where tenant_id not in (:'tenant_a', :'tenant_b')
        ),
        (
            select count(*) from app.documents
            where tenant_id not in (:'tenant_a', :'tenant_b')
        )
    ],
    array[:projects_before, :documents_before]::bigint[],
    'the rows of every other tenant are as many as before'
);

select * from finish();
rollback;
