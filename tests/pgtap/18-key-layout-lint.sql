-- Doctor lint 0005 (key_layout) and tenancy.assert_tenant_keys: one rule, tenancy.key_layout_problems,
-- for any tenant column. Nothing found on pgtenancy and the fixtures; each problem planted on
-- tables keyed by company_id bigint is found (n issues), then fixed with the lint's own
-- remediation (0 issues). Everything is planted inside the transaction, which is rolled back.

begin;
select plan(18);

select is_empty(
    'select object, detail from tenancy.lint_0005_key_layout',
    '0005: 0 issues on pgtenancy and the fixture tables (app.ledger keyed by account_key included)'
);

create schema lint5;

-- A tenant table keyed by company_id bigint: its primary key and an index not led by it.
create table lint5.accounts (
    company_id bigint not null,
    id integer not null,
    title text not null,
    constraint accounts_pkey primary key (id)
);
create index accounts_title_idx on lint5.accounts (title);
create policy p on lint5.accounts
using (company_id = (select tenancy.tenant_key_int8(tenancy.context_tenant_key(null))));
select set_eq(
    'select object, detail, remediation from tenancy.lint_0005_key_layout',
    $$values
        ('lint5.accounts',
         'primary key accounts_pkey of lint5.accounts (PRIMARY KEY (id)) does not start with company_id',
         'alter table lint5.accounts drop constraint accounts_pkey, add constraint accounts_pkey primary key (company_id, id);'),
        ('lint5.accounts',
         'index lint5.accounts_title_idx of lint5.accounts (on title) does not start with company_id',
         'drop index lint5.accounts_title_idx; create index accounts_title_idx ON lint5.accounts USING btree (company_id, title);')$$,
    '0005: 2 issues: a primary key and an index the tenant column company_id does not lead, each with its fix'
);
select is(
    array(select distinct level from tenancy.lint_0005_key_layout),
    array['ERROR'],
    '0005 is an error'
);

-- One rule: the policy file's check names the same problems (TN007), for the same column.
select throws_ok(
    $$select tenancy.assert_tenant_keys('lint5.accounts', p_column => 'company_id')$$,
    'TN007',
    E'tenant table lint5.accounts: 2 key layout problems:\n'
    || '- primary key accounts_pkey of lint5.accounts (PRIMARY KEY (id)) does not start with company_id; '
    || 'fix: alter table lint5.accounts drop constraint accounts_pkey, add constraint accounts_pkey primary key (company_id, id)'
    || E'\n- index lint5.accounts_title_idx of lint5.accounts (on title) does not start with company_id; '
    || 'fix: drop index lint5.accounts_title_idx; create index accounts_title_idx ON lint5.accounts USING btree (company_id, title)',
    'assert_tenant_keys with p_column raises TN007 with the problems the lint finds'
);
select throws_ok(
    $$select tenancy.assert_tenant_keys('lint5.accounts')$$,
    'TN007',
    'tenant table lint5.accounts: 1 key layout problem:' || E'\n'
    || '- table lint5.accounts has no column tenant_id; fix: alter table lint5.accounts add column tenant_id '
    || '(uuid for the tenant id; bigint, integer or text for the tenant key) not null, or name the table''s '
    || 'tenant column with tenant_column in the spec',
    'assert_tenant_keys without p_column checks tenant_id, which this table does not have'
);

-- The fix is the lint's remediation, run as it is.
do $fix$
declare
    v_fix text;
begin
    for v_fix in select remediation from tenancy.lint_0005_key_layout loop
        execute v_fix;
    end loop;
end
$fix$;
select is_empty(
    'select 1 from tenancy.lint_0005_key_layout',
    '0005: 0 issues once its remediations ran'
);
select lives_ok(
    $$select tenancy.assert_tenant_keys('lint5.accounts', p_column => 'company_id')$$,
    'assert_tenant_keys accepts the fixed table'
);

-- A foreign key to another tenant table (one with a company_id column) that does not pair
-- company_id with company_id first; one to a platform table (without company_id) is fine.
create table lint5.companies (id bigint primary key);
create table lint5.entries (
    company_id bigint not null,
    id integer not null,
    account_id integer not null,
    constraint entries_pkey primary key (company_id, id),
    constraint entries_account_fkey foreign key (account_id, company_id)
    references lint5.accounts (id, company_id),
    constraint entries_company_fkey foreign key (company_id) references lint5.companies (id)
);
create index entries_company_id_account_id_idx on lint5.entries (company_id, account_id);
create policy p on lint5.entries
using (company_id = (select tenancy.tenant_key_int8(tenancy.context_tenant_key(null))));
select results_eq(
    'select object, detail, remediation from tenancy.lint_0005_key_layout',
    $$values (
        'lint5.entries',
        'foreign key entries_account_fkey of lint5.entries to tenant table lint5.accounts does not pair company_id with company_id first',
        'alter table lint5.entries drop constraint entries_account_fkey, add constraint entries_account_fkey foreign key (company_id, account_id) references lint5.accounts (company_id, id);'
    )$$,
    '0005: 1 issue: a foreign key to another tenant table not paired on company_id first (not the one to a platform table)'
);
do $fix$
declare
    v_fix text;
begin
    for v_fix in select remediation from tenancy.lint_0005_key_layout loop
        execute v_fix;
    end loop;
end
$fix$;
select is_empty('select 1 from tenancy.lint_0005_key_layout', '0005: 0 issues once the foreign key is paired');

-- Partitions: a partition's own index is reported once, on the partition (the partition is a
-- tenant table too, with the generated policies, but is checked with its parent). Whether each
-- partition is secured is the policy file's check, not this lint's.
create table lint5.events (
    company_id bigint not null,
    id integer not null,
    day date not null,
    note text,
    constraint events_pkey primary key (company_id, id, day)
) partition by range (day);
create table lint5.events_2026 partition of lint5.events for values from ('2026-01-01') to ('2027-01-01');
create index events_2026_note_idx on lint5.events_2026 (note);
create policy p on lint5.events
using (company_id = (select tenancy.tenant_key_int8(tenancy.context_tenant_key(null))));
create policy p on lint5.events_2026
using (company_id = (select tenancy.tenant_key_int8(tenancy.context_tenant_key(null))));
select results_eq(
    'select object, detail from tenancy.lint_0005_key_layout',
    $$values (
        'lint5.events_2026',
        'index lint5.events_2026_note_idx of lint5.events_2026 (on note) does not start with company_id'
    )$$,
    '0005: 1 issue: an index of a partition, reported once'
);
select throws_like(
    $$select tenancy.assert_tenant_keys('lint5.events', '{}', 'company_id')$$,
    '%partition lint5.events_2026 of lint5.events has no row level security from this policy file%',
    'assert_tenant_keys (a policy file covering no partition) also names the partition it does not secure'
);
-- p_covered => null (partitions created at run time): no partition is missing, keys still count.
select throws_ok(
    $$select tenancy.assert_tenant_keys('lint5.events', null, 'company_id')$$,
    'TN007',
    'tenant table lint5.events: 1 key layout problem:' || E'\n- '
    || 'index lint5.events_2026_note_idx of lint5.events_2026 (on note) does not start with company_id; '
    || 'fix: drop index lint5.events_2026_note_idx; create index events_2026_note_idx '
    || 'ON lint5.events_2026 USING btree (company_id, note)',
    'assert_tenant_keys with p_covered null names the partition''s index, not the partition'
);
drop index lint5.events_2026_note_idx;
select is_empty('select 1 from tenancy.lint_0005_key_layout', '0005: 0 issues once the index is dropped');
select lives_ok(
    $$select tenancy.assert_tenant_keys('lint5.events', null, 'company_id')$$,
    'assert_tenant_keys with p_covered null accepts a partition no policy file secures'
);

-- A uuid tenant_id table without a primary key.
create table lint5.notes (tenant_id uuid not null, id integer);
create policy p on lint5.notes using (tenant_id = (select tenancy.context_tenant_id(null)));
select results_eq(
    'select object, detail, remediation from tenancy.lint_0005_key_layout',
    $$values (
        'lint5.notes', 'table lint5.notes has no primary key',
        'alter table lint5.notes add primary key (tenant_id, id);'
    )$$,
    '0005: 1 issue: a tenant table without a primary key'
);
alter table lint5.notes alter column id set not null;
alter table lint5.notes add primary key (tenant_id, id);
select is_empty('select 1 from tenancy.lint_0005_key_layout', '0005: 0 issues once it has one');

-- Who may run it: the platform's operators and auditors, not the application.
create index notes_id_idx on lint5.notes (id);
set local role tenancy_auditor;
select is(
    (select count(*) from tenancy.lint_0005_key_layout),
    1::bigint,
    'tenancy_auditor reads the lint (and may call tenancy.key_layout_problems)'
);
set local role tenancy_app;
select throws_ok(
    'select 1 from tenancy.lint_0005_key_layout',
    '42501',
    'permission denied for view lint_0005_key_layout',
    'tenancy_app cannot read the lint'
);
reset role;

select * from finish();
rollback;
