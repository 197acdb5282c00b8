-- Offboarding: tenancy.offboard_tenant step by step, in batches, children before parents; the deletion certificate and its verification; a deleted tenant can never be used again.
-- Tenants A (offboarded) and B (untouched) get rows in every kind of tenant table: the fixture's
-- projects, documents, customers, orders and visits, and its ledger (keyed by the tenant key), two
-- tables made here (app.tree refers to itself, app.leaf to it, both without ON DELETE CASCADE) and
-- pgtenancy's own (members, invitations, API keys, domains, settings, flags, usage, outbox,
-- audit). Everything runs as the real roles; the superuser only reads rows behind the policies
-- (and makes the two tables). One transaction: the steps are not committed in between
-- (tests/py/test_offboarding.py commits them, seals the trail and verifies the certificate).

begin;
select plan(81);

\ir setup/helpers.psql

\set secret 'pgtap-offboarding-secret-0123456789abcdefghijklmnopqrstuvwxyz'
\set issuer 'https://auth.example.test'
\set audience 'pgtenancy-tests'

-- app.tree refers to itself and app.leaf to it, neither with ON DELETE CASCADE: emptied in the
-- wrong order, or tree in batches, a foreign key would refuse.
create table app.tree (
    tenant_id uuid not null,
    id integer not null,
    parent_id integer,
    constraint tree_pkey primary key (tenant_id, id),
    constraint tree_parent_fkey foreign key (tenant_id, parent_id) references app.tree (tenant_id, id)
);
create table app.leaf (
    tenant_id uuid not null,
    id integer not null,
    tree_id integer not null,
    constraint leaf_pkey primary key (tenant_id, id),
    constraint leaf_tree_fkey foreign key (tenant_id, tree_id) references app.tree (tenant_id, id)
);
alter table app.tree enable row level security, force row level security;
alter table app.leaf enable row level security, force row level security;
create policy tenant_rows on app.tree using (tenant_id = (select tenancy.context_tenant_id(null)));
create policy tenant_rows on app.leaf using (tenant_id = (select tenancy.context_tenant_id(null)));
grant select, delete on app.tree, app.leaf to tenancy_owner;

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as owner_b,
    'off-a-' || left(md5(random()::text), 8) as slug_a,
    'off-b-' || left(md5(random()::text), 8) as slug_b,
    (700000000 + floor(random() * 100000000))::bigint::text as key_a,
    (800000000 + floor(random() * 100000000))::bigint::text as key_b,
    gen_random_uuid() as unknown_tenant
\gset

set local role tenancy_admin;
select tenancy.configure_jwt(:'secret', :'issuer', :'audience') \gset
select tenancy.configure_domains(array['offboard.test']) \gset
select tenancy.configure_regions(array['eu']) \gset
select tenancy.set_feature_default('offboarding.beta', 'false') \gset
select tenancy.create_tenant(:'slug_a', 'Offboarded A', :'owner_a', p_key => :'key_a') as tenant_a \gset
select tenancy.create_tenant(:'slug_b', 'Kept B', :'owner_b', p_key => :'key_b') as tenant_b \gset
reset role;

-- seed(tenant, n): rows of the tenant in every kind of tenant table, the way applications and
-- operators write them.
create function pg_temp.seed(p_tenant uuid, p_n integer)
returns void
language plpgsql
as $$
begin
    set local role tenancy_admin;
    perform tenancy.set_tenant_region(p_tenant, 'eu');
    perform tenancy.set_feature_flag(p_tenant, 'offboarding.beta', 'true');
    perform tenancy.configure_issuer(
        'https://idp.' || p_tenant || '.test', array['app'], p_tenant_id => p_tenant,
        p_jwks_url => 'https://idp.' || p_tenant || '.test/jwks'
    );
    perform pg_temp.act_as(p_tenant);
    perform tenancy.add_member('auth0|member-' || p_tenant, 'member');
    perform tenancy.create_api_key('key', 'member');
    perform tenancy.invite('someone@example.com', 'member');
    perform tenancy.add_custom_domain('shop-' || left(p_tenant::text, 8) || '.example.com');
    perform tenancy.set_branding('{"display_name": "Offboarding test"}');
    perform tenancy.configure_webhook('hook', 'https://hooks.example.com/' || p_tenant);
    perform tenancy.log_connector_event('crm', 'synced', '{}');
    perform tenancy.track_event('signed_up', 'user-1');
    perform tenancy.create_meter('api_calls');
    perform tenancy.create_tier('pro', 10, '{"api_calls": 1000}');
    perform tenancy.subscribe('customer-1', 'pro');
    perform tenancy.track_usage('api_calls', 'customer-1', 5);
    perform tenancy.log_audit('note.added', 'note', '1', null, '{"text": "hello"}');
    insert into app.projects (name) select 'project ' || g from generate_series(1, p_n) as g;
    insert into app.documents (project_id, title) select p.id, 'document' from app.projects as p;
    insert into app.customers (email) select 'c' || g || '@example.com' from generate_series(1, p_n) as g;
    insert into app.orders (customer_id, shipping_address) select c.id, 'street' from app.customers as c;
    insert into app.visits (customer_id, ip_address) select c.id, '192.0.2.1' from app.customers as c;
    insert into app.ledger (amount) select g from generate_series(1, p_n) as g;
    perform tenancy.clear_context();
    reset role;
    -- A chain in app.tree (each row the parent of the next) and leaves on it, by the superuser.
    insert into app.tree (tenant_id, id, parent_id) select p_tenant, g, nullif(g - 1, 0) from generate_series(1, p_n) as g;
    insert into app.leaf (tenant_id, id, tree_id) select p_tenant, g, g from generate_series(1, p_n) as g;
end
$$;

select pg_temp.seed(:'tenant_a', 5);
select pg_temp.seed(:'tenant_b', 3);

-- status_of(id): the tenant's status.
create function pg_temp.status_of(p_tenant uuid)
returns text
language sql
as $$
    select t.status from tenancy.tenants as t where t.id = p_tenant
$$;

-- tenant_rows(id, key): per table (partitions, not their roots) and column, the rows naming the
-- tenant: a uuid column holding its id, a text column holding it as text, a tenant column
-- holding its key. Read by the superuser, past every policy.
create function pg_temp.tenant_rows(p_tenant uuid, p_key text)
returns table (relation text, col text, n bigint)
language plpgsql
as $$
declare
    v record;
begin
    for v in
        select c.oid::regclass::text as rel, a.attname, a.atttypid, tt.relid is not null as tenant_column
        from pg_class as c
        inner join pg_namespace as s on s.oid = c.relnamespace
        inner join pg_attribute as a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        left join tenancy.lint_tenant_tables as tt
            on tt.relid in (c.oid, (select i.inhparent from pg_inherits as i where i.inhrelid = c.oid))
            and tt.tenant_column = a.attname
        where c.relkind = 'r' and s.nspname !~ '^pg_' and s.nspname <> 'information_schema'
            and (a.atttypid in ('uuid'::regtype, 'text'::regtype) or tt.relid is not null)
    loop
        relation := v.rel;
        col := v.attname;
        execute format(
            'select count(*) from %s where %I::text = any($1)', v.rel, v.attname
        ) into n using case
            when v.tenant_column and v.atttypid <> 'uuid'::regtype then array[p_key]
            else array[p_tenant::text]
        end;
        if n > 0 then
            return next;
        end if;
    end loop;
end
$$;

-- rows_of(table, id): the tenant's rows in one tenant table (named as in
-- tenancy.offboarding_tables, listed once in ob_tables), as the superuser reads them;
-- rows_left(id): in all of them.
create temporary table ob_tables as select * from tenancy.offboarding_tables();
create function pg_temp.rows_of(p_table text, p_tenant uuid)
returns bigint
language plpgsql
as $$
declare
    v record;
    v_n bigint;
begin
    select o.predicate, o.value_kind into v from ob_tables as o where o.table_name = p_table;
    execute format('select count(*) from %s as t where %s', p_table, v.predicate)
    into v_n
    using tenancy.offboarding_value(
        p_tenant, (select t.key from tenancy.tenants as t where t.id = p_tenant), v.value_kind
    );
    return coalesce(v_n, 0);
end
$$;
create function pg_temp.rows_left(p_tenant uuid)
returns bigint
language sql
as $$
    select sum(pg_temp.rows_of(o.table_name, p_tenant))::bigint from ob_tables as o
$$;

create temporary table b_before as select * from pg_temp.tenant_rows(:'tenant_b', :'key_b');
select id as a_endpoint from tenancy.connector_endpoints
where tenant_id = :'tenant_a' \gset

-- Who may offboard --------------------------------------------------------------------------------

select
    function_privs_are(
        'tenancy', f.name, f.args, r.role,
        case when r.role = any(f.allowed) then array['EXECUTE'] else array[]::text[] end,
        format('%s %s execute tenancy.%s', r.role, case when r.role = any(f.allowed) then 'may' else 'may not' end, f.name)
    )
from (
    values
    ('offboard_tenant', array['uuid', 'text', 'integer'], array['tenancy_admin']),
    ('offboard', array['uuid', 'text', 'integer'], array['tenancy_admin']),
    ('deletion_certificate', array['uuid'], array['tenancy_admin', 'tenancy_auditor']),
    ('verify_deletion_certificate', array['jsonb'], array['tenancy_admin', 'tenancy_auditor']),
    ('canonical_json', array['jsonb'], array['tenancy_admin', 'tenancy_auditor'])
) as f (name, args, allowed)
cross join (values ('tenancy_app'), ('tenancy_service'), ('tenancy_admin'), ('tenancy_auditor')) as r (role)
order by f.name, r.role;

set local role tenancy_service;
select throws_ok(
    format('select tenancy.offboard_tenant(%L, %L)', :'tenant_a', 'by a service'),
    '42501', 'permission denied for function offboard_tenant', 'tenancy_service cannot offboard a tenant'
);
set local role tenancy_auditor;
select throws_ok(
    format('select tenancy.offboard_tenant(%L, %L)', :'tenant_a', 'by an auditor'),
    '42501', 'permission denied for function offboard_tenant', 'tenancy_auditor cannot offboard a tenant'
);
set local role tenancy_app;
select throws_ok(
    format('call tenancy.offboard(%L, %L)', :'tenant_a', 'by an application'),
    '42501', 'permission denied for procedure offboard', 'tenancy_app cannot call tenancy.offboard'
);

-- Refusals before anything is done ---------------------------------------------------------------

set local role tenancy_admin;
select throws_ok(
    format('select tenancy.offboard_tenant(%L, %L)', :'unknown_tenant', 'gone'),
    'P0002', format('tenant %s does not exist', :'unknown_tenant'), 'an unknown tenant is P0002 naming it'
);
select throws_ok(
    format('select tenancy.offboard_tenant(%L, %L)', :'tenant_a', '  '),
    '22023', 'invalid offboarding reason ''  ''', 'a blank reason is 22023'
);
select throws_ok(
    format('select tenancy.offboard_tenant(%L, %L, 0)', :'tenant_a', 'contract ended'),
    '22023', 'offboarding batch of 0 rows is out of range: 1 to 1000000', 'a batch of 0 rows is 22023'
);
select throws_ok(
    format('select tenancy.deletion_certificate(%L)', :'tenant_a'),
    'P0002', format('tenant %s has no deletion certificate: it was never offboarded', :'tenant_a'),
    'a tenant never offboarded has no certificate (P0002)'
);

-- In a transaction with a tenant context (tenancy_service's, then acting as an operator): 55000.
set local role tenancy_service;
select tenancy.set_context(:'tenant_b') \gset
set local role tenancy_admin;
select throws_ok(
    format('select tenancy.offboard_tenant(%L, %L)', :'tenant_a', 'contract ended'),
    '55000', format('offboarding sets a context of its own: this transaction has one already (tenant %s)', :'tenant_b'),
    'offboarding refuses a transaction that has a tenant context'
);
select tenancy.clear_context() \gset

-- A tenant table tenancy_owner may not read or delete, one without a delete policy, and one
-- owned by a role that is not a member of tenancy_owner (a trigger of its own would run with
-- tenancy_owner's rights): the first step refuses, naming them, and nothing changes.
reset role;
create table app.no_grant (tenant_id uuid not null primary key);
alter table app.no_grant enable row level security;
create policy tenant_rows on app.no_grant using (tenant_id = (select tenancy.context_tenant_id(null)));
create table app.read_only (tenant_id uuid not null primary key);
alter table app.read_only enable row level security;
create policy tenant_rows on app.read_only for select using (tenant_id = (select tenancy.context_tenant_id(null)));
grant select, delete on app.read_only to tenancy_owner;
create role pgtap_outsider nologin;
create table app.outsiders (tenant_id uuid not null primary key);
alter table app.outsiders enable row level security;
create policy tenant_rows on app.outsiders using (tenant_id = (select tenancy.context_tenant_id(null)));
grant select, delete on app.outsiders to tenancy_owner;
alter table app.outsiders owner to pgtap_outsider;
set local role tenancy_admin;
select throws_ok(
    format('select tenancy.offboard_tenant(%L, %L)', :'tenant_a', 'contract ended'),
    '42501',
    'offboarding could not empty every tenant table: app.no_grant: tenancy_owner lacks SELECT or DELETE on it; '
    'app.outsiders: its owner pgtap_outsider is not a member of tenancy_owner (its triggers and policies '
    'would run with tenancy_owner''s rights); app.read_only: no policy lets tenancy_owner delete its rows',
    'a tenant table offboarding could not empty (safely) is refused before anything is done (42501)'
);
select is(pg_temp.status_of(:'tenant_a'), 'active', 'the refused offboarding changed nothing');
reset role;
drop table app.no_grant, app.read_only, app.outsiders;

-- Step 1: suspend and count -----------------------------------------------------------------------

set local role tenancy_admin;
select tenancy.offboard_tenant(:'tenant_a', 'contract ended (ticket 42)', 3) as step1 \gset
reset role;
select is(
    (select jsonb_build_object('step', s -> 'step', 'deleted', s -> 'deleted', 'done', s -> 'done') from (select :'step1'::jsonb as s) as x),
    '{"step": 1, "deleted": 0, "done": false}',
    'the first step deletes nothing'
);
select is(pg_temp.status_of(:'tenant_a'), 'suspended', 'the first step suspends the tenant');
select is(
    (:'step1'::jsonb ->> 'rows_before')::bigint, pg_temp.rows_left(:'tenant_a'),
    'it counts every row of the tenant in its tenant tables'
);
select is(
    (
        select o.counts from tenancy.tenant_offboardings as o
        where o.tenant_id = :'tenant_a'
    ),
    (
        select
            jsonb_object_agg(
                o.table_name, jsonb_build_object('before', pg_temp.rows_of(o.table_name, :'tenant_a'), 'deleted', 0)
            )
        from ob_tables as o
    ),
    'per table: the rows of the tenant there, none deleted yet'
);
select ok(
    exists (
        select from tenancy.audit_logs
        where
            tenant_id = :'tenant_a' and action = 'tenant.offboarding_started'
            and new_data ->> 'reason' = 'contract ended (ticket 42)'
    ),
    'the audit trail records that the offboarding began, and why'
);
select is(tenancy.current_tenant_id(), null, 'the step leaves no tenant context behind');

-- While it runs: no new context, no reactivation.
set local role tenancy_service;
select throws_ok(
    format('select tenancy.set_context(%L)', :'tenant_a'),
    'TN002', format('tenant %s is suspended', :'tenant_a'), 'set_context refuses the tenant being offboarded'
);
set local role tenancy_admin;
select throws_ok(
    format('select tenancy.reactivate_tenant(%L)', :'tenant_a'),
    '55000', format('tenant %s is being offboarded and cannot become active', :'tenant_a'),
    'a tenant being offboarded cannot be reactivated'
);
select throws_ok(
    format('select tenancy.deletion_certificate(%L)', :'tenant_a'),
    '55000', null, 'no certificate while the offboarding is under way (55000)'
);
reset role;

-- Steps 2…: batches of at most 3 rows --------------------------------------------------------------

-- run_steps(tenant, batch): offboard_tenant until done, as tenancy_admin; per step its result
-- and how many of the tenant's rows its tenant tables lost (counted by the superuser).
create temporary table steps (n integer, result jsonb, removed bigint);
create function pg_temp.run_steps(p_tenant uuid, p_batch integer)
returns void
language plpgsql
as $$
declare
    v_result jsonb;
    v_before bigint;
    v_after bigint;
begin
    for i in 1..200 loop
        v_before := pg_temp.rows_left(p_tenant);
        set local role tenancy_admin;
        v_result := tenancy.offboard_tenant(p_tenant, 'contract ended (ticket 42)', p_batch);
        reset role;
        v_after := pg_temp.rows_left(p_tenant);
        insert into steps values (i, v_result, v_before - v_after);
        exit when (v_result ->> 'done')::boolean;
    end loop;
end
$$;
select pg_temp.run_steps(:'tenant_a', 3);

-- first_step(table), last_step(table): the first and the last step that deleted rows of it.
create function pg_temp.first_step(p_table text)
returns integer
language sql
as $$
    select min(s.n) from steps as s where s.result -> 'tables' ? p_table
$$;
create function pg_temp.last_step(p_table text)
returns integer
language sql
as $$
    select max(s.n) from steps as s where s.result -> 'tables' ? p_table
$$;

select ok((select bool_or((result ->> 'done')::boolean) from steps), 'the steps end with done');
select is(
    (
        select count(*) from steps
        where not (result ->> 'done')::boolean and (removed > 3 or (result ->> 'deleted')::bigint > 3) and not result -> 'tables' ? 'app.tree'
    ),
    0::bigint,
    'every step deletes at most 3 rows (batch of 3), but for a table referring to itself'
);
select is(
    (
        select count(*) from steps
        where not (result ->> 'done')::boolean and removed <> (result ->> 'deleted')::bigint
    ),
    0::bigint,
    'each step deletes the rows it says it deletes'
);
select is(
    (
        select (result -> 'tables' ->> 'app.tree')::bigint from steps
        where result -> 'tables' ? 'app.tree'
    ),
    5::bigint,
    'a table referring to itself goes in one statement, all 5 rows'
);
select ok(
    pg_temp.last_step('app.leaf') < pg_temp.first_step('app.tree')
    and pg_temp.last_step('app.orders') < pg_temp.first_step('app.customers')
    and pg_temp.last_step('app.visits') < pg_temp.first_step('app.customers')
    and pg_temp.last_step('tenancy.subscriptions') < pg_temp.first_step('tenancy.tiers'),
    'children go before their parents (leaf before tree, orders and visits before customers, subscriptions before tiers)'
);
select is(
    (
        select count(*) from steps
        where (result ->> 'done')::boolean and result ? 'sha256'
    ),
    1::bigint,
    'the last step returns the certificate'
);

-- Every row of A is gone, B's are all there ---------------------------------------------------------

select is(pg_temp.status_of(:'tenant_a'), 'deleted', 'the tenant is deleted');
select is_empty(
    format(
        $$select relation || '.' || col || ': ' || n from pg_temp.tenant_rows(%L, %L)
        where not (relation ~ '^tenancy\.audit_logs_' or relation in ('tenancy.tenants', 'tenancy.security_events', 'tenancy.tenant_offboardings'))$$,
        :'tenant_a', :'key_a'
    ),
    'no table holds a row naming the tenant but the kept ones: tenants, its audit trail and security events, its offboarding'
);
select is(
    (
        select count(*) from tenancy.audit_logs
        where tenant_id = :'tenant_a' and action = 'DELETE' and table_name = 'orders'
    ),
    5::bigint,
    'the audit trail is kept, and records every deleted row of an audited table'
);
select set_eq(
    'select relation, col, n from pg_temp.tenant_rows(' || quote_literal(:'tenant_b') || ', ' || quote_literal(:'key_b') || ') where relation !~ ''^tenancy.audit_logs_''',
    'select relation, col, n from b_before where relation !~ ''^tenancy.audit_logs_''',
    'every row of tenant B is still there'
);
select is(
    (
        select count(*) from tenancy.connector_secrets
        where endpoint_id = :'a_endpoint'
    ),
    0::bigint, 'the URL and signing secret of its webhook are gone (tenancy.connector_secrets)'
);
select is(
    (
        select count(*) from tenancy.jwt_issuers
        where tenant_id = :'tenant_a'
    ), 0::bigint, 'its own token issuer is gone'
);
select is(
    (
        select count(*) from tenancy.domain_claims
        where tenant_id = :'tenant_a'
    ), 0::bigint, 'its hostnames are free'
);
select ok(
    (
        select count(*) from tenancy.jwt_issuers
        where tenant_id = :'tenant_b'
    ) = 1
    and (
        select count(*) from tenancy.domain_claims
        where tenant_id = :'tenant_b'
    ) = 2,
    'B keeps its issuer and hostnames'
);

-- The certificate -----------------------------------------------------------------------------------

set local role tenancy_auditor;
select tenancy.deletion_certificate(:'tenant_a') as cert \gset
reset role;
select is(
    :'cert'::jsonb,
    (
        select result - 'done' from steps
        where (result ->> 'done')::boolean
    ),
    'tenancy.deletion_certificate returns what the last step returned'
);
select is(
    (select jsonb_build_object('tenant', c -> 'tenant', 'reason', c -> 'reason', 'format', c -> 'format', 'rows', c -> 'rows') from (select :'cert'::jsonb as c) as x),
    jsonb_build_object(
        'tenant', jsonb_build_object('id', :'tenant_a', 'slug', :'slug_a'),
        'reason', 'contract ended (ticket 42)',
        'format', 'pgtenancy.deletion_certificate.v1',
        'rows', jsonb_build_object(
            'before', (:'step1'::jsonb ->> 'rows_before')::bigint,
            'deleted', (:'step1'::jsonb ->> 'rows_before')::bigint,
            'after', 0
        )
    ),
    'it names the tenant, the reason, and every row counted before as deleted, none after'
);
select is(
    (select array_agg(e ->> 'table' order by e ->> 'table') from jsonb_array_elements(:'cert'::jsonb -> 'tables') as e),
    (select array_agg(o.table_name order by convert_to(o.table_name, 'UTF8')) from ob_tables as o),
    'it lists every tenant table'
);
select is(
    (
        select count(*) from jsonb_array_elements(:'cert'::jsonb -> 'tables') as e
        where (e ->> 'after')::bigint <> 0 or (e ->> 'deleted') <> (e ->> 'before')
    ),
    0::bigint,
    'per table: every row counted before deleted, none after'
);
select ok(
    (:'cert'::jsonb -> 'tables') @> '[{"table": "app.ledger", "before": 5, "deleted": 5, "after": 0}, {"table": "app.tree", "before": 5, "deleted": 5, "after": 0}, {"table": "app.orders", "before": 5, "deleted": 5, "after": 0}]',
    'the tables keyed by the tenant key, referring to themselves, holding personal data are in it'
);
select ok(
    (:'cert'::jsonb -> 'platform_rows') @> '{"tenancy.connector_secrets": 1, "tenancy.jwt_issuers": 1, "tenancy.domain_claims": 2}',
    'it counts the platform rows that went: the webhook''s secret, the issuer, the two hostnames'
);
select is(
    :'cert'::jsonb ->> 'sha256',
    encode(sha256(convert_to(tenancy.canonical_json(:'cert'::jsonb - 'sha256' - 'audit_id'), 'UTF8')), 'hex'),
    'its sha256 is the SHA-256 of the canonical JSON of the rest'
);
select is(
    (
        select new_data from tenancy.audit_logs
        where id = (:'cert'::jsonb ->> 'audit_id')::bigint and tenant_id = :'tenant_a' and action = 'tenant.offboarded'
    ),
    :'cert'::jsonb - 'audit_id',
    'the tenant.offboarded entry of its audit trail holds the same certificate'
);

-- Verification: not sealed yet in this transaction; tampering and forgeries show.
set local role tenancy_auditor;
select results_eq(
    format('select ok, sealed, audit_id from tenancy.verify_deletion_certificate(%L)', :'cert'),
    format('values (false, false, %s::bigint)', :'cert'::jsonb ->> 'audit_id'),
    'the certificate does not verify before a sealing round has chained its audit entry'
);
select matches(
    (select problem from tenancy.verify_deletion_certificate(:'cert')),
    'is not sealed yet', 'and it says so'
);
select matches(
    (select problem from tenancy.verify_deletion_certificate(jsonb_set(:'cert'::jsonb, '{rows,after}', '1'))),
    '^the certificate was changed: its contents hash to [0-9a-f]{64}, not to its sha256 ',
    'a changed count does not verify'
);
select matches(
    (
        select v.problem
        from (select jsonb_set(:'cert'::jsonb, '{reason}', '"asked nicely"') as c) as x
        cross join lateral tenancy.verify_deletion_certificate(
            x.c || jsonb_build_object(
                'sha256', encode(sha256(convert_to(tenancy.canonical_json(x.c - 'sha256' - 'audit_id'), 'UTF8')), 'hex')
            )
        ) as v
    ),
    '^audit row [0-9]+ holds another certificate of tenant ',
    'a certificate rewritten with a matching hash does not verify: the audit trail holds the real one'
);
select matches(
    (select problem from tenancy.verify_deletion_certificate('{"format": "something else"}')),
    '^not a deletion certificate', 'something else is not a certificate'
);
reset role;

-- Idempotent: offboarding again returns the stored certificate.
set local role tenancy_admin;
select is(
    tenancy.offboard_tenant(:'tenant_a', 'again', 100),
    :'cert'::jsonb || '{"done": true}',
    'offboarding a deleted tenant again returns its certificate and does nothing'
);

-- A deleted tenant can never be used ----------------------------------------------------------------

select throws_ok(
    format('select tenancy.reactivate_tenant(%L)', :'tenant_a'),
    '55000', format('tenant %s is deleted and cannot become active', :'tenant_a'), 'it cannot be reactivated'
);
select throws_ok(
    format('select tenancy.set_tenant_branding(%L, %L)', :'tenant_a', '{}'),
    '55000', format('tenant %s is deleted: nothing more is stored for it', :'tenant_a'), 'set_tenant_branding refuses it'
);
select throws_ok(
    format('select tenancy.set_tenant_region(%L, %L)', :'tenant_a', 'eu'),
    '55000', null, 'set_tenant_region refuses it'
);
select throws_ok(
    format('select tenancy.set_feature_flag(%L, %L, %L)', :'tenant_a', 'offboarding.beta', 'true'),
    '55000', null, 'set_feature_flag refuses it'
);
select throws_ok(
    format('select tenancy.configure_issuer(%L, array[%L], p_tenant_id => %L)', 'https://idp.again.test', 'app', :'tenant_a'),
    '55000', null, 'configure_issuer refuses it'
);
select throws_ok(
    format('select tenancy.rename_tenant_slug(%L, %L)', :'tenant_a', 'renamed-' || left(md5(random()::text), 8)),
    '55000', format('tenant %s is deleted: its slug %L stays its own', :'tenant_a', :'slug_a'), 'its slug cannot be renamed'
);
select throws_ok(
    format('select tenancy.begin_support_access(%L, %L, 5)', :'tenant_a', 'look around'),
    '55000', format('tenant %s is deleted: it has no rows to read', :'tenant_a'), 'support access to it is refused'
);
select lives_ok(
    $$select tenancy.configure_domains(array['offboard.test', 'offboard-two.test'])$$,
    'the base domains change'
);
reset role;
select ok(
    (
        select count(*) from tenancy.domain_claims
        where tenant_id = :'tenant_a'
    ) = 0
    and (
        select count(*) from tenancy.domain_claims
        where tenant_id = :'tenant_b'
    ) = 3,
    'and the deleted tenant gets no hostname back, B gets the new one'
);
set local role tenancy_service;
select throws_ok(
    format('select tenancy.set_context(%L)', :'tenant_a'),
    'TN002', format('tenant %s is deleted', :'tenant_a'), 'set_context refuses it (TN002)'
);
select is(tenancy.resolve_tenant(:'slug_a' || '.offboard.test'), null, 'its old hostname resolves to no tenant');
reset role;
select pg_temp.jwt(jsonb_build_object(
    'sub', :'owner_a', 'tenant_id', :'tenant_a', 'iss', :'issuer', 'aud', :'audience',
    'iat', extract(epoch from now())::bigint, 'exp', extract(epoch from now())::bigint + 300
), :'secret') as token_a \gset
set local role tenancy_app;
select throws_ok(
    format('select tenancy.authenticate(%L)', :'token_a'),
    'TN002', format('tenant %s is deleted', :'tenant_a'), 'authenticate refuses a valid token of its former owner (TN002)'
);
reset role;
-- A security event of the deleted tenant (a refused API key, say) enqueues nothing for it.
select tenancy.record_security_event('api_key.refused', 'test', :'tenant_a') \gset
select is(
    (
        select count(*) from tenancy.connector_events
        where tenant_id = :'tenant_a'
    ),
    0::bigint, 'a security event of the deleted tenant adds no outbox row'
);

-- A legacy deleted tenant (marked by hand, rows left) is offboarded too.
update tenancy.tenants set status = 'deleted'
where id = :'tenant_b';
select pg_temp.run_steps(:'tenant_b', 1000);
select is(pg_temp.rows_left(:'tenant_b'), 0::bigint, 'a tenant marked deleted by hand, its rows left, gets them deleted');

select * from finish();
rollback;
