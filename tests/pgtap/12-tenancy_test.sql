-- The checks of sql/testing (schema tenancy_test) fail on a wrong table and pass on a right one:
-- check_test() for the single assertions, the outcome of each assertion for the per-table sets, on
-- fixture tables secured as the generator secures them, then broken one way each (RLS not forced,
-- a policy missing, a policy too permissive, a grant missing, a sample row that cannot be stored,
-- a serial sequence without USAGE, a partition not forced, missing a policy or too permissive).
-- Fixtures: the superuser creates the tables (rolled back); the checks act as the real roles.
-- Policies are named as sentences, so one naming lint is off:
-- noqa: disable=RF05

begin;
select plan(44);

\ir setup/helpers.psql

-- secure(table, whole): row level security and policies as a generated policy file leaves them
-- (owners and admins write, every member role reads) and tenancy_app's grants; with whole, the
-- guard triggers too (a partition inherits them from its parent).
create function pg_temp.secure(p_table regclass, p_whole boolean default true)
returns regclass
language plpgsql
as $$
declare
    v_table regclass := p_table;
begin
    execute format('alter table %s enable row level security', v_table);
    execute format('alter table %s force row level security', v_table);
    execute format(
        'create policy "tenant rows are visible to readers of the tenant" on %s for select to public '
        'using (tenant_id = (select tenancy.context_tenant_id(array[''admin'', ''member'', ''owner'', ''viewer''])))',
        v_table
    );
    execute format(
        'create policy "tenant rows are inserted by writers of the tenant" on %s for insert to public '
        'with check (tenant_id = (select tenancy.context_tenant_id(array[''admin'', ''owner''])))',
        v_table
    );
    execute format(
        'create policy "tenant rows are updated by writers of the tenant" on %s for update to public '
        'using (tenant_id = (select tenancy.context_tenant_id(array[''admin'', ''owner'']))) '
        'with check (tenant_id = (select tenancy.context_tenant_id(array[''admin'', ''owner''])))',
        v_table
    );
    execute format(
        'create policy "tenant rows are deleted by writers of the tenant" on %s for delete to public '
        'using (tenant_id = (select tenancy.context_tenant_id(array[''admin'', ''owner''])))',
        v_table
    );
    execute format('grant select, insert, update, delete on %s to tenancy_app', v_table);
    if not p_whole then
        return v_table;
    end if;
    execute format(
        'create trigger tenancy_require_context before insert or update or delete on %s '
        'for each statement execute function tenancy.tg_require_context()',
        v_table
    );
    execute format(
        'create trigger tenancy_tenant_id_immutable before update of tenant_id on %s for each row '
        'when (old.tenant_id is distinct from new.tenant_id) execute function tenancy.tg_tenant_id_immutable()',
        v_table
    );
    execute format(
        'create trigger tenancy_tenant_id_immutable_after after update on %s for each row '
        'when (old.tenant_id is distinct from new.tenant_id) execute function tenancy.tg_tenant_id_immutable()',
        v_table
    );
    return v_table;
end
$$;

-- secured(name): a table created and secured as generated, with a NOT NULL label and no default.
create function pg_temp.secured(p_name text)
returns regclass
language plpgsql
as $$
begin
    execute format(
        'create table tenancy_test_fixture.%I (tenant_id uuid not null default tenancy.current_tenant_id(), '
        'id bigint generated always as identity, label text not null, primary key (tenant_id, id))',
        p_name
    );
    return pg_temp.secure(format('tenancy_test_fixture.%I', p_name)::regclass);
end
$$;

-- checks(table, sample, sequences, descendants): every assertion of
-- tenancy_test.tenant_table_structure and _isolation for a table secured by pg_temp.secure.
create function pg_temp.checks(
    p_table regclass,
    p_sample jsonb default '{"label": "''sample''"}',
    p_sequences regclass[] default '{}',
    p_descendants regclass[] default '{}'
)
returns table (passed boolean, description text)
language sql
as $$
    select * from pg_temp.outcomes(
        format(
            $q$select * from tenancy_test.tenant_table_structure(%1$L, array['admin', 'owner'], %2$L, %4$L, %5$L)
               union all
               select * from tenancy_test.tenant_table_isolation(
                   %1$L, array['admin', 'member', 'owner', 'viewer'],
                   array['admin', 'member', 'owner', 'viewer'], array['admin', 'owner'],
                   %5$L, %3$L
               )$q$,
            p_table,
            array[
                ['tenant rows are deleted by writers of the tenant', 'delete', 'public'],
                ['tenant rows are inserted by writers of the tenant', 'insert', 'public'],
                ['tenant rows are updated by writers of the tenant', 'update', 'public'],
                ['tenant rows are visible to readers of the tenant', 'select', 'public']
            ],
            p_sample,
            p_sequences,
            p_descendants
        )
    )
$$;

-- failed_checks(table): the descriptions of the checks that fail, in the order they run.
create function pg_temp.failed_checks(p_table regclass)
returns text[]
language sql
as $$
    select coalesce(array_agg(c.description), '{}')
    from pg_temp.checks(p_table) as c
    where not c.passed
$$;

create schema tenancy_test_fixture;
grant usage on schema tenancy_test_fixture to tenancy_app;
select
    pg_temp.secured('sound') as sound,
    pg_temp.secured('not_forced') as not_forced,
    pg_temp.secured('missing_policy') as missing_policy,
    pg_temp.secured('too_permissive') as too_permissive,
    pg_temp.secured('missing_grant') as missing_grant,
    pg_temp.secured('no_rls') as no_rls
\gset
alter table tenancy_test_fixture.not_forced no force row level security;
drop policy "tenant rows are deleted by writers of the tenant" on tenancy_test_fixture.missing_policy;
drop policy "tenant rows are visible to readers of the tenant" on tenancy_test_fixture.too_permissive;
create policy "tenant rows are visible to readers of the tenant" on tenancy_test_fixture.too_permissive
for select to public using (true);
revoke delete on tenancy_test_fixture.missing_grant from tenancy_app;
alter table tenancy_test_fixture.no_rls disable row level security;

-- The sound table passes every check (39 assertions) ----------------------------------------------

select is(
    (select count(*) from pg_temp.checks(:'sound')), 39::bigint,
    'the checks make 39 assertions on a table with 4 policies, 4 roles, 2 of them writers'
);
select is(
    pg_temp.failed_checks(:'sound'), '{}'::text[],
    'every check passes on a table secured as generated'
);

-- Row level security -----------------------------------------------------------------------------

select * from check_test(
    tenancy_test.row_security_forced(:'sound', 'forced'), true,
    'row_security_forced on a forced table', 'forced', ''
);
select * from check_test(
    tenancy_test.row_security_forced(:'not_forced', 'forced'), false,
    'row_security_forced on a table not forced', 'forced', ''
);
select * from check_test(
    tenancy_test.row_security_enabled(:'no_rls', 'enabled'), false,
    'row_security_enabled on a table without row level security', 'enabled', ''
);
select is(
    pg_temp.failed_checks(:'not_forced'),
    array['row level security is forced on "tenancy_test_fixture"."not_forced", for its owner too'],
    'on a table whose row level security is not forced exactly that check fails'
);

-- Policies ---------------------------------------------------------------------------------------

select * from check_test(
    tenancy_test.policy_applies_to(
        :'sound', 'tenant rows are deleted by writers of the tenant', array['public']::name[], 'roles'
    ),
    true, 'policy_applies_to on a policy for PUBLIC', 'roles', ''
);
select * from check_test(
    tenancy_test.policy_applies_to(
        :'missing_policy', 'tenant rows are deleted by writers of the tenant', array['public']::name[],
        'roles'
    ),
    false, 'policy_applies_to on a missing policy', 'roles'
);
select * from check_test(
    tenancy_test.policy_applies_to(
        :'sound', 'tenant rows are deleted by writers of the tenant', array['tenancy_owner']::name[],
        'roles'
    ),
    false, 'policy_applies_to on a policy for other roles', 'roles'
);
select is(
    pg_temp.failed_checks(:'missing_policy'),
    array[
        '"tenancy_test_fixture"."missing_policy" has exactly the generated policies',
        'policy "tenant rows are deleted by writers of the tenant" on "tenancy_test_fixture"."missing_policy" is for DELETE',
        'policy "tenant rows are deleted by writers of the tenant" on "tenancy_test_fixture"."missing_policy" applies to PUBLIC'
    ],
    'on a table missing a policy the policy checks fail'
);
select is(
    pg_temp.failed_checks(:'too_permissive'),
    array[
        'without a tenant context tenancy_app sees no row of "tenancy_test_fixture"."too_permissive"',
        'an admin of tenant A sees no row of another tenant in "tenancy_test_fixture"."too_permissive"',
        'a member of tenant A sees no row of another tenant in "tenancy_test_fixture"."too_permissive"',
        'an owner of tenant A sees no row of another tenant in "tenancy_test_fixture"."too_permissive"',
        'a viewer of tenant A sees no row of another tenant in "tenancy_test_fixture"."too_permissive"',
        'a service context of tenant A sees no row of another tenant in "tenancy_test_fixture"."too_permissive"'
    ],
    'on a table whose SELECT policy admits every row the visibility checks fail'
);

-- Privileges -------------------------------------------------------------------------------------

select is(
    pg_temp.failed_checks(:'missing_grant'),
    array[
        'tenancy_app may only select, insert, update, delete on "tenancy_test_fixture"."missing_grant"',
        'without a tenant context tenancy_app cannot delete from "tenancy_test_fixture"."missing_grant"'
    ],
    'on a table missing the DELETE grant the privilege check fails (and DELETE fails with 42501, not TN001)'
);

-- Inserts must succeed ---------------------------------------------------------------------------

select
    gen_random_uuid() as owner_a,
    gen_random_uuid() as viewer_a
\gset
set local role tenancy_admin;
select tenancy.create_tenant('checks-a', 'Checks A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant('checks-b', 'Checks B', gen_random_uuid()::text) as tenant_b \gset
-- check_test() runs as the superuser (it resets pgTAP's counter); the insert runs as the owner of A.
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy_test.inserts_row(:'sound', '{"label": "''a label''"}', :'tenant_a', 'inserts') as have \gset
reset role;
select * from check_test(:'have', true, 'inserts_row with a valid sample row', 'inserts', '');
select is(
    (
        select count(*) from tenancy_test_fixture.sound
        where tenant_id = :'tenant_a'
    ),
    0::bigint,
    'inserts_row leaves no row behind'
);

-- The NOT NULL label missing: row level security admits the row (no 42501), the insert fails (23502).
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy_test.inserts_row(:'sound', '{}', :'tenant_a', 'inserts') as have \gset
reset role;
select * from check_test(
    :'have', false, 'inserts_row when the row violates NOT NULL', 'inserts',
    'the insert failed: null value in column "label" of relation "sound" violates not-null constraint (SQLSTATE 23502)'
    || E'\nstatement: insert into tenancy_test_fixture.sound default values returning tableoid, ctid, tenant_id'
);

-- The row stored, but in tenant A when tenant B was expected.
select pg_temp.act_as(:'tenant_a', :'owner_a');
select tenancy_test.inserts_row(:'sound', '{"label": "''a label''"}', :'tenant_b', 'inserts') as have \gset
reset role;
select * from check_test(:'have', false, 'inserts_row when the row lands in another tenant', 'inserts');

-- No context: TN001.
select pg_temp.act_as(:'tenant_a', :'owner_a');
do $clear$ begin perform tenancy.clear_context(); end $clear$;
select tenancy_test.inserts_row(:'sound', '{"label": "''a label''"}', :'tenant_a', 'inserts') as have \gset
reset role;
select * from check_test(:'have', false, 'inserts_row without a tenant context', 'inserts');

-- A viewer: 42501.
select pg_temp.act_as(:'tenant_a', null);
select tenancy.add_member(:'viewer_a', 'viewer') as added \gset
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select tenancy_test.inserts_row(:'sound', '{"label": "''a label''"}', :'tenant_a', 'inserts') as have \gset
reset role;
select * from check_test(:'have', false, 'inserts_row as a role that may not write', 'inserts');

-- Serial sequences and partitions --------------------------------------------------------------

-- parted: list-partitioned with a serial column; rows take kind 'x' and land in parted_other.
create table tenancy_test_fixture.parted (
    tenant_id uuid not null default tenancy.current_tenant_id(),
    line serial,
    kind text not null default 'x',
    label text not null,
    primary key (tenant_id, line, kind)
) partition by list (kind);
create table tenancy_test_fixture.parted_a partition of tenancy_test_fixture.parted for values in ('a');
create table tenancy_test_fixture.parted_other partition of tenancy_test_fixture.parted default;
select pg_temp.secure('tenancy_test_fixture.parted') as parted \gset
select pg_temp.secure('tenancy_test_fixture.parted_a', false) as parted_a \gset
select pg_temp.secure('tenancy_test_fixture.parted_other', false) as parted_other \gset
grant usage on sequence tenancy_test_fixture.parted_line_seq to tenancy_app;

-- parted_failures(): the checks of parted, its sequence and its two partitions that fail.
create function pg_temp.parted_failures()
returns text[]
language sql
as $$
    select coalesce(array_agg(c.description), '{}')
    from pg_temp.checks(
        'tenancy_test_fixture.parted', '{"label": "''sample''"}',
        array['tenancy_test_fixture.parted_line_seq']::regclass[],
        array['tenancy_test_fixture.parted_a', 'tenancy_test_fixture.parted_other']::regclass[]
    ) as c
    where not c.passed
$$;

select is(
    (
        select count(*) from pg_temp.checks(
            :'parted', '{"label": "''sample''"}',
            array['tenancy_test_fixture.parted_line_seq']::regclass[],
            array[:'parted_a', :'parted_other']::regclass[]
        )
    ),
    46::bigint,
    'with a serial sequence and two partitions the checks make 46 assertions'
);
select is(pg_temp.parted_failures(), '{}'::text[], 'every check passes on the partitioned table');

-- Without USAGE the sample row cannot be stored, so only the structure checks run here.
revoke usage on sequence tenancy_test_fixture.parted_line_seq from tenancy_app;
select is(
    (
        select array_agg(o.description)
        from
            pg_temp.outcomes(
                $$select * from tenancy_test.tenant_table_structure(
                    'tenancy_test_fixture.parted', array['admin', 'owner'],
                    array[
                        ['tenant rows are deleted by writers of the tenant', 'delete', 'public'],
                        ['tenant rows are inserted by writers of the tenant', 'insert', 'public'],
                        ['tenant rows are updated by writers of the tenant', 'update', 'public'],
                        ['tenant rows are visible to readers of the tenant', 'select', 'public']
                    ],
                    array['tenancy_test_fixture.parted_line_seq']::regclass[],
                    array['tenancy_test_fixture.parted_a', 'tenancy_test_fixture.parted_other']::regclass[]
                )$$
            ) as o
        where not o.passed
    ),
    array['tenancy_app may use the serial sequence "tenancy_test_fixture"."parted_line_seq"'],
    'without USAGE on the serial sequence the sequence check fails'
);
grant usage on sequence tenancy_test_fixture.parted_line_seq to tenancy_app;

alter table tenancy_test_fixture.parted_a no force row level security;
select is(
    pg_temp.parted_failures(),
    array['row level security is enabled and forced on "tenancy_test_fixture"."parted_a"'],
    'on a partition whose row level security is not forced the partition check fails'
);
alter table tenancy_test_fixture.parted_a force row level security;

drop policy "tenant rows are updated by writers of the tenant" on tenancy_test_fixture.parted_a;
select is(
    pg_temp.parted_failures(),
    array['"tenancy_test_fixture"."parted_a" has exactly the generated policies'],
    'on a partition missing a policy the partition''s policy check fails'
);

drop policy "tenant rows are visible to readers of the tenant" on tenancy_test_fixture.parted_other;
create policy "tenant rows are visible to readers of the tenant" on tenancy_test_fixture.parted_other
for select to public using (true);
select is(
    pg_temp.parted_failures(),
    array[
        '"tenancy_test_fixture"."parted_a" has exactly the generated policies',
        'without a tenant context tenancy_app sees no row of "tenancy_test_fixture"."parted_other" queried directly'
    ],
    'on a partition whose SELECT policy admits every row the direct query check fails'
);

-- A sample row that cannot be stored stops the per-table checks at once: the fixture rows are
-- inserted with it before any assertion.
select throws_ok(
    $$select * from tenancy_test.tenant_table_isolation(
        'tenancy_test_fixture.sound', array['owner'], array['owner'], array['owner'], p_sample => '{}'
    )$$,
    '23502',
    'the sample row of "tenancy_test_fixture"."sound" cannot be stored in a service context: null '
    'value in column "label" '
    'of relation "sound" violates not-null constraint',
    'the per-table checks stop with the error of a sample row that cannot be stored'
);

-- The sample row is SQL: a sample naming tenant_id is refused (22023).
select throws_ok(
    $$select tenancy_test.insert_statement('tenancy_test_fixture.sound', '{"tenant_id": "null"}')$$,
    '22023',
    'the sample row of tenancy_test_fixture.sound sets tenant_id: the checks set it',
    'insert_statement refuses a sample that sets tenant_id'
);
select is(
    tenancy_test.insert_statement('tenancy_test_fixture.sound', '{"label": "''x''"}', :'tenant_b'),
    format('insert into tenancy_test_fixture.sound ("tenant_id", label) values (%L::uuid, ''x'')', :'tenant_b'),
    'insert_statement writes the sample columns and the tenant'
);

select * from finish();
rollback;
