-- GDPR subject rights: export_subject and erase_subject find exactly one subject's rows, erasure leaves its personal values nowhere a tenant admin or the auditor can read and the seals verify; ledger, reapply after a restore, ledger import, who may call them.
-- Tenants A and B; in A customers 1 and 11 (similar-looking data), in B a customer 1 too (the
-- same subject id in another tenant). Each has orders (anonymized) and visits (deleted), audit
-- history, security events and analytics events. Rows are written as tenancy_app in service
-- contexts, as applications do; the subject functions run as A's admin. Two audit rows of
-- customers 1 and 11 are written as if by an earlier transaction (tenancy_audit_owner, an ended
-- txid) and sealed, so erasure redacts sealed rows and verify_audit must still pass. The
-- superuser reads the rows behind the functions, restores erased values "as from a backup" (the
-- audit triggers fire), and compares what it captured with \gset. The leak scan reads, as A's
-- admin and as tenancy_auditor, every table and view of schemas app and tenancy the role may
-- select, each row cast to text, for every erased value.

begin;
select plan(98);

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

-- scanned(): the relations of schemas app and tenancy the current role may select, but the
-- lint views (tenancy.lint_*: catalog findings and row counts, never a row's values; the slowest
-- to read by far).
create function pg_temp.scanned()
returns table (rel regclass, name text)
language sql
as $$
    select c.oid::regclass, format('%s.%s', n.nspname, c.relname)
    from pg_class as c
    inner join pg_namespace as n on c.relnamespace = n.oid
    where
        n.nspname in ('app', 'tenancy')
        and c.relkind in ('r', 'p', 'v', 'm', 'f')
        and not (c.relkind = 'v' and c.relname like 'lint\_%')
        and has_table_privilege(current_user, c.oid, 'select')
    order by 2
$$;

-- found_where(values): 'schema.relation: value' for every relation pg_temp.scanned() gives in
-- which some row, cast to text, holds one of the values.
create function pg_temp.found_where(p_values text[])
returns text[]
language plpgsql
as $$
declare
    v_rel record;
    v_found text[];
    v_hits text[] := '{}';
begin
    for v_rel in select s.rel, s.name from pg_temp.scanned() as s loop
        execute format(
            'select array_agg(distinct v.value order by v.value) from %s as t cross join unnest($1) as v (value) '
            'where strpos(t::text, v.value) > 0',
            v_rel.rel
        )
        into v_found
        using p_values;
        v_hits := v_hits || array(select v_rel.name || ': ' || f.value from unnest(v_found) as f (value));
    end loop;
    return v_hits;
end
$$;

-- rows_digest(tenant, customer): md5 of a customer's rows in customers, orders and visits (as the superuser).
create function pg_temp.rows_digest(p_tenant uuid, p_customer bigint)
returns text
language sql
as $$
    select md5(concat_ws(
        '|',
        (select string_agg(c::text, ',' order by c.id) from app.customers as c where c.tenant_id = p_tenant and c.id = p_customer),
        (select string_agg(o::text, ',' order by o.id) from app.orders as o where o.tenant_id = p_tenant and o.customer_id = p_customer),
        (select string_agg(v::text, ',' order by v.id) from app.visits as v where v.tenant_id = p_tenant and v.customer_id = p_customer)
    ))
$$;

select
    'auth0|' || gen_random_uuid() as owner_a,
    'auth0|' || gen_random_uuid() as admin_a,
    'auth0|' || gen_random_uuid() as member_a,
    'auth0|' || gen_random_uuid() as viewer_a,
    'auth0|' || gen_random_uuid() as owner_b,
    'gs-a-' || left(md5(random()::text), 8) as slug_a,
    'gs-b-' || left(md5(random()::text), 8) as slug_b,
    greatest((select s.frontier from tenancy.audit_seal_state as s), 3) as base,
    'app.customers'::regclass::oid as customers_oid
\gset

set local role tenancy_admin;
select tenancy.create_tenant(:'slug_a', 'GDPR subject A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant(:'slug_b', 'GDPR subject B', :'owner_b') as tenant_b \gset
reset role;

-- Tenant A: customers 1 (the subject) and 11 (similar), their orders and visits, history ------

select pg_temp.act_as(:'tenant_a');
select tenancy.add_member(:'admin_a', 'admin');
select tenancy.add_member(:'member_a', 'member');
select tenancy.add_member(:'viewer_a', 'viewer');
insert into app.customers (id, email, full_name, phone) overriding system value
values
(1, 'alice@example.com', 'Alice Ashdown', '+44 20 7946 0000'),
(11, 'alice.b@example.com', 'Alice B. Ashdown', '+44 20 7946 0011');
-- A change of the subject's phone: the old value is in the audit trail too.
update app.customers set phone = '+44 20 7946 0001'
where id = 1;
insert into app.orders (customer_id, shipping_address, total)
values (1, '1 Erasure Lane, Leeds', 10), (1, '1 Erasure Lane, Leeds', 20), (11, '11 Erasure Lane, York', 30);
insert into app.visits (customer_id, ip_address, path)
values (1, '198.51.100.7', '/a'), (1, '198.51.100.9', '/b'), (11, '198.51.100.17', '/c');
-- A visit of the subject deleted before any request: its IP stays in the audit trail.
insert into app.visits (customer_id, ip_address, path) values (1, '198.51.100.66', '/gone');
delete from app.visits
where ip_address = '198.51.100.66';
select
    tenancy.track_event('signup', '1') as a_event_1,
    tenancy.track_event('login', '1') as a_event_1b,
    tenancy.track_event('signup', '11') as a_event_11
\gset
-- Requests: access, portability and erasure of subject 1, access and erasure of subject 11.
select
    tenancy.open_subject_request('access', '1') as req_access,
    tenancy.open_subject_request('portability', '1') as req_portability,
    tenancy.open_subject_request('erasure', '1') as req_erasure,
    tenancy.open_subject_request('access', '11') as req_access_11,
    tenancy.open_subject_request('erasure', '11') as req_erasure_11
\gset
reset role;

-- Tenant B: its own customer 1, with different values.
select pg_temp.act_as(:'tenant_b');
insert into app.customers (id, email, full_name, phone) overriding system value
values (1, 'alice@example.net', 'Alicia Ashdown', '+44 20 7946 0101');
insert into app.orders (customer_id, shipping_address) values (1, '1 Erasure Lane, Bath');
insert into app.visits (customer_id, ip_address) values (1, '198.51.100.8');
select tenancy.track_event('signup', '1') as b_event_1 \gset
reset role;

-- Security events (as pgtenancy's functions write them): A's users 1 and 11, B's user 1.
insert into tenancy.security_events (kind, tenant_id, user_id, reason)
values
('authentication.failed', :'tenant_a', '1', 'a-1 refused'),
('authentication.failed', :'tenant_a', '11', 'a-11 refused'),
('authentication.failed', :'tenant_b', '1', 'b-1 refused');

-- Audit rows of customers 1 and 11 as an earlier, ended transaction wrote them, then sealed.
set local role tenancy_audit_owner;
insert into tenancy.audit_logs (
    tenant_id, txid, action, entity_type, entity_id, schema_name, table_name, old_data, new_data,
    changed_columns, actor_role
)
values
(
    :'tenant_a', :base, 'UPDATE', '"app"."customers"', '{"id": 1}', 'app', 'customers',
    '{"id": 1, "email": "alice.old@example.com", "full_name": "Alice Ashdown"}',
    '{"id": 1, "email": "alice@example.com", "full_name": "Alice Ashdown"}', '{email}', 'owner'
),
(
    :'tenant_a', :base, 'UPDATE', '"app"."customers"', '{"id": 11}', 'app', 'customers',
    '{"id": 11, "email": "alice.b.old@example.com"}', '{"id": 11, "email": "alice.b@example.com"}', '{email}',
    'owner'
);
reset role;
select l.id as sealed_1 from tenancy.audit_logs as l
where l.tenant_id = :'tenant_a' and l.txid = :base and l.entity_id = '{"id": 1}' \gset
select l.id as sealed_11 from tenancy.audit_logs as l
where l.tenant_id = :'tenant_a' and l.txid = :base and l.entity_id = '{"id": 11}' \gset
select sealed_rows as sealed_now from tenancy.seal_audit() \gset

select ok(
    exists (
        select from tenancy.audit_seals as s
        where s.tenant_id = :'tenant_a' and :sealed_1 = any(s.ids) and :sealed_11 = any(s.ids)
    ),
    'the earlier transaction''s audit rows of customers 1 and 11 are sealed'
);
select results_eq(
    format('select ok, first_bad_id from tenancy.verify_audit(%L)', :'tenant_a'),
    $$values (true, null::bigint)$$,
    'tenant A''s trail verifies before any erasure'
);

-- The values erasure must remove, and those of the other subjects it must keep.
select
    array[
        'alice@example.com', 'alice.old@example.com', 'Alice Ashdown', '+44 20 7946 0000', '+44 20 7946 0001',
        '1 Erasure Lane, Leeds', '198.51.100.7', '198.51.100.9'
    ] as erased_values,
    array[
        'alice.b@example.com', 'alice.b.old@example.com', 'Alice B. Ashdown', '+44 20 7946 0011', '11 Erasure Lane, York',
        '198.51.100.17'
    ] as kept_a_values,
    array['alice@example.net', 'Alicia Ashdown', '+44 20 7946 0101', '1 Erasure Lane, Bath', '198.51.100.8'] as kept_b_values
\gset

-- export_subject -------------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'admin_a');
select tenancy.export_subject('1') as export_a1 \gset
reset role;

select is(
    (select array_agg(k order by k) from jsonb_object_keys(:'export_a1'::jsonb) as k),
    array['audit', 'exported_at', 'format', 'security_events', 'subject', 'tables', 'tenant_id', 'version'],
    'the export has format, version, tenant_id, subject, exported_at, tables, audit and security_events'
);
select is(
    :'export_a1'::jsonb - array['exported_at', 'tables', 'audit', 'security_events'],
    jsonb_build_object('format', 'pgtenancy.subject_export', 'version', 1, 'tenant_id', :'tenant_a', 'subject', '1'),
    'format pgtenancy.subject_export, version 1, tenant A, subject 1'
);
select is(
    :'export_a1'::jsonb -> 'tables' -> 'app.customers',
    (
        select jsonb_agg(to_jsonb(c.*)) from app.customers as c
        where c.tenant_id = :'tenant_a' and c.id = 1
    ),
    'customers: exactly A''s customer 1, every column'
);
select is(
    :'export_a1'::jsonb -> 'tables' -> 'app.orders',
    (
        select jsonb_agg(to_jsonb(o.*) order by o.id) from app.orders as o
        where o.tenant_id = :'tenant_a' and o.customer_id = 1
    ),
    'orders: exactly the two orders of A''s customer 1'
);
select is(
    :'export_a1'::jsonb -> 'tables' -> 'app.visits',
    (
        select jsonb_agg(to_jsonb(v.*) order by v.id) from app.visits as v
        where v.tenant_id = :'tenant_a' and v.customer_id = 1
    ),
    'visits: exactly the two visits of A''s customer 1'
);
select is(
    (select array_agg(k order by k) from jsonb_object_keys(:'export_a1'::jsonb -> 'tables') as k),
    array['app.customers', 'app.orders', 'app.visits'],
    'every table of the personal data registry is in the export'
);
select is(
    array(
        select v from unnest(:'kept_a_values'::text[] || :'kept_b_values'::text[]) as v
        where strpos(:'export_a1', v) > 0
    ),
    '{}'::text[],
    'no value of A''s customer 11 or of B''s customer 1 is anywhere in the export'
);
select is(
    (select array_agg((a ->> 'id')::bigint order by (a ->> 'id')::bigint) from jsonb_array_elements(:'export_a1'::jsonb -> 'audit') as a),
    (
        select array_agg(l.id order by l.id) from tenancy.audit_logs as l
        where
            l.tenant_id = :'tenant_a'
            and (
                l.entity_type = '"app"."customers"' and l.entity_id = '{"id": 1}'
                or l.entity_type = '"app"."orders"' and l.entity_id in (
                    select jsonb_build_object('id', o.id)::text from app.orders as o
                    where o.tenant_id = :'tenant_a' and o.customer_id = 1
                )
                or l.entity_type = '"app"."visits"' and l.entity_id in (
                    select jsonb_build_object('id', v.id)::text from app.visits as v
                    where v.tenant_id = :'tenant_a' and v.customer_id = 1
                )
                -- the subject's visit deleted before the request: the trail still names it
                or l.entity_type = '"app"."visits"' and (l.old_data ->> 'customer_id' = '1' or l.new_data ->> 'customer_id' = '1')
            )
    ),
    'audit: every audit row of the subject''s customer, orders and visits (the sealed one and a deleted visit''s included), and no other'
);
select ok(
    :sealed_1 in (select (a ->> 'id')::bigint from jsonb_array_elements(:'export_a1'::jsonb -> 'audit') as a)
    and :sealed_11 not in (select (a ->> 'id')::bigint from jsonb_array_elements(:'export_a1'::jsonb -> 'audit') as a),
    'audit: the earlier change of customer 1 is there, that of customer 11 is not'
);
select is(
    (
        select count(*)::integer from jsonb_array_elements(:'export_a1'::jsonb -> 'audit') as a
        where a ->> 'table' = 'app.customers' and a -> 'key' <> '{"id": 1}'
    ),
    0,
    'audit: no audit row of another customer (11 looks like 1)'
);
select is(
    (select array_agg(e ->> 'reason') from jsonb_array_elements(:'export_a1'::jsonb -> 'security_events') as e),
    array['a-1 refused'],
    'security events: exactly A''s events of user 1 (not user 11''s, not B''s user 1''s)'
);
select ok(
    strpos(:'export_a1', '198.51.100.66') > 0,
    'audit: the history of the subject''s visit deleted before the request (its IP) is in the export'
);
select results_eq(
    format(
        $$select l.entity_type, l.entity_id, l.actor_user_id, l.old_data is null and l.new_data is null,
            l.metadata - 'audit_rows'
        from tenancy.audit_logs as l where l.tenant_id = %L and l.action = 'subject.exported'$$,
        :'tenant_a'
    ),
    format(
        $$values ('data_subject', %L, %L, true,
            '{"tables": {"app.customers": 1, "app.orders": 2, "app.visits": 2}, "security_events": 1}'::jsonb)$$,
        encode(sha256(convert_to(:'tenant_a' || ':1', 'UTF8')), 'hex'), :'admin_a'
    ),
    'the export is in the audit trail: subject.exported, keyed by sha256(tenant:subject), by A''s admin, with counts'
);
select is(
    (
        select count(*)::integer from tenancy.audit_logs as l
        where
            l.tenant_id = :'tenant_a' and l.action = 'subject.exported'
            and (jsonb_path_exists(l.metadata, '$.** ? (@ == "1")') or l.entity_id = '1')
    ),
    0,
    'the subject.exported row does not hold the subject id'
);
select results_eq(
    format(
        $$select r.id, r.status, r.outcome from tenancy.subject_requests as r
        where r.tenant_id = %L order by r.id$$,
        :'tenant_a'
    ),
    format(
        $$select * from (values (%L::uuid, 'completed', 'exported'), (%L::uuid, 'completed', 'exported'),
            (%L::uuid, 'open', null), (%L::uuid, 'open', null), (%L::uuid, 'open', null)) as v order by 1$$,
        :'req_access', :'req_portability', :'req_erasure', :'req_access_11', :'req_erasure_11'
    ),
    'the subject''s open access and portability requests are completed; its erasure request and subject 11''s stay open'
);

-- B exports its own subject 1: its rows alone.
select pg_temp.act_as(:'tenant_b', :'owner_b');
select tenancy.export_subject('1') as export_b1 \gset
reset role;
select is(
    :'export_b1'::jsonb -> 'tables',
    (
        select jsonb_build_object(
            'app.customers', (
                select jsonb_agg(to_jsonb(c.*)) from app.customers as c
                where c.tenant_id = :'tenant_b'
            ),
            'app.orders', (
                select jsonb_agg(to_jsonb(o.*)) from app.orders as o
                where o.tenant_id = :'tenant_b'
            ),
            'app.visits', (
                select jsonb_agg(to_jsonb(v.*)) from app.visits as v
                where v.tenant_id = :'tenant_b'
            )
        )
    ),
    'B''s export of its subject 1 holds B''s customer 1, order and visit'
);
select is(
    array(
        select v from unnest(:'erased_values'::text[] || :'kept_a_values'::text[]) as v
        where strpos(:'export_b1', v) > 0
    ),
    '{}'::text[],
    'no value of A''s customers is anywhere in B''s export of subject 1'
);
select is(
    (select array_agg(e ->> 'reason') from jsonb_array_elements(:'export_b1'::jsonb -> 'security_events') as e),
    array['b-1 refused'],
    'B''s export has B''s security event of user 1 alone'
);

-- A service context may export (which completes subject 11's access request).
select pg_temp.act_as(:'tenant_a');
select lives_ok($$select tenancy.export_subject('11')$$, 'a service context exports a subject');
reset role;

-- Who may not, and what is refused ---------------------------------------------------------------

select count(*) as ledger_before from tenancy.erasure_ledger \gset
select count(*) as audit_before from tenancy.audit_logs
where tenant_id = :'tenant_a' \gset
select pg_temp.rows_digest(:'tenant_a', 1) as digest_a1_before \gset

select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok($$select tenancy.export_subject('1')$$, '42501', null, 'a member cannot export a subject');
select throws_ok($$select tenancy.erase_subject('1', 'asked')$$, '42501', null, 'a member cannot erase a subject');
select throws_ok($$select * from tenancy.reapply_erasures()$$, '42501', null, 'a member cannot reapply erasures');
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok($$select tenancy.export_subject('1')$$, '42501', null, 'a viewer cannot export a subject');
select throws_ok($$select tenancy.erase_subject('1', 'asked')$$, '42501', null, 'a viewer cannot erase a subject');
reset role;
select tenancy.clear_context();
set local role tenancy_app;
select throws_ok(
    $$select tenancy.export_subject('1')$$,
    'TN001',
    'no tenant context: tenancy.export_subject needs tenancy.authenticate() or tenancy.set_context() first',
    'without a context export_subject is refused (TN001)'
);
select throws_ok($$select tenancy.erase_subject('1', 'asked')$$, 'TN001', null, 'without a context erase_subject is refused (TN001)');
select throws_ok($$select * from tenancy.reapply_erasures()$$, 'TN001', null, 'without a context reapply_erasures is refused (TN001)');
reset role;

select pg_temp.act_as(:'tenant_a', :'admin_a');
select results_eq(
    $$select s, pg_temp.sqlstate_of(format('select tenancy.erase_subject(%L, %L)', s, 'asked'))
    from unnest(array['', null, E'1\n', E'1\x01', repeat('1', 501)]) with ordinality as u (s, n) order by n$$,
    $$values ('', '22023'), (null, '22023'), (E'1\n', '22023'), (E'1\x01', '22023'), (repeat('1', 501), '22023')$$,
    'erase_subject refuses a subject id that is empty, NULL, holds a control character or is over 500 characters (22023)'
);
select results_eq(
    $$select s, pg_temp.sqlstate_of(format('select tenancy.export_subject(%L)', s))
    from unnest(array['', null, E'1\t', repeat('x', 501)]) with ordinality as u (s, n) order by n$$,
    $$values ('', '22023'), (null, '22023'), (E'1\t', '22023'), (repeat('x', 501), '22023')$$,
    'export_subject refuses the same subject ids (22023)'
);
select results_eq(
    $$select r, pg_temp.sqlstate_of(format('select tenancy.erase_subject(%L, %L)', '1', r))
    from unnest(array['', '   ', null, repeat('r', 501)]) with ordinality as u (r, n) order by n$$,
    $$values ('', '22023'), ('   ', '22023'), (null, '22023'), (repeat('r', 501), '22023')$$,
    'erase_subject refuses a reason that is empty, blank, NULL or over 500 characters (22023)'
);
reset role;
select is(
    (select count(*) from tenancy.erasure_ledger),
    :ledger_before::bigint,
    'the refused calls wrote no ledger entry'
);
select is(
    (
        select count(*) from tenancy.audit_logs
        where tenant_id = :'tenant_a'
    ),
    :audit_before::bigint,
    'nor any audit row'
);
select is(pg_temp.rows_digest(:'tenant_a', 1), :'digest_a1_before', 'and changed none of the subject''s rows');

-- A role that may read a table but not change it: the generated function refuses (42501). The
-- fixture tables are written by every role that reads them but viewers (refused before), so
-- pg_temp.read_not_write narrows the update policy of app.orders to owners and members in a
-- subtransaction, tries the erasure as A's admin and as its owner, and rolls it all back; the
-- outcomes are captured in psql variables.
create function pg_temp.read_not_write(p_tenant uuid, p_admin text, p_owner text)
returns jsonb
language plpgsql
as $$
declare
    v_seen jsonb;
begin
    begin
        drop policy "tenant rows are updated by writers of the tenant" on app.orders;
        create policy "tenant rows are updated by writers of the tenant" on app.orders
        for update
        using (tenant_id = (select tenancy.context_tenant_id(array['owner', 'member'])))
        with check (tenant_id = (select tenancy.context_tenant_id(array['owner', 'member'])));
        perform pg_temp.act_as(p_tenant, p_admin);
        v_seen := jsonb_build_object(
            'admin_state', pg_temp.sqlstate_of($q$select tenancy.erase_subject('11', 'asked')$q$),
            'fn_state', pg_temp.sqlstate_of($q$select app.tenancy_erase_orders('{11}')$q$)
        );
        reset role;
        v_seen := v_seen || jsonb_build_object(
            'digest_11', pg_temp.rows_digest(p_tenant, 11),
            'ledger', (select count(*) from tenancy.erasure_ledger)
        );
        perform pg_temp.act_as(p_tenant, p_owner);
        v_seen := v_seen || jsonb_build_object('owner_tables', tenancy.erase_subject('11', 'asked') -> 'tables');
        raise exception using errcode = 'P0001', message = 'rolled back';
    exception when sqlstate 'P0001' then
        -- the policy, the context, the role and the owner's erasure are gone with the subtransaction
    end;
    return v_seen;
end
$$;
select
    n.v ->> 'admin_state' as narrowed_admin_state,
    n.v ->> 'fn_state' as narrowed_fn_state,
    n.v ->> 'digest_11' as narrowed_digest_11,
    n.v ->> 'ledger' as narrowed_ledger,
    n.v -> 'owner_tables' as narrowed_owner_tables
from (select pg_temp.read_not_write(:'tenant_a', :'admin_a', :'owner_a') as v) as n
\gset
select ok(
    current_user = session_user
    and exists (
        select from pg_policies as p
        where p.schemaname = 'app' and p.tablename = 'orders' and p.cmd = 'UPDATE' and p.qual ~ 'admin'
    ),
    'after the subtransaction: the session''s own role again, and admins may update orders again'
);
select is(:'narrowed_admin_state'::text, '42501', 'an admin who reads orders but may not update them cannot erase (42501)');
select is(:'narrowed_fn_state'::text, '42501', 'the generated function tenancy_erase_orders refuses it itself (42501)');
select is(
    :'narrowed_digest_11',
    pg_temp.rows_digest(:'tenant_a', 11),
    'nothing of the subject''s rows changed (customers included)'
);
select is(:narrowed_ledger::bigint, :ledger_before::bigint, 'and no ledger entry was written');
select is(
    :'narrowed_owner_tables'::jsonb,
    '{"app.customers": 1, "app.orders": 1, "app.visits": 1}'::jsonb,
    'while the owner, who may update orders, erases the same subject'
);

-- erase_subject ----------------------------------------------------------------------------------

select pg_temp.rows_digest(:'tenant_a', 11) as digest_a11 \gset
select pg_temp.rows_digest(:'tenant_b', 1) as digest_b1 \gset
select array_agg(o.id order by o.id) as orders_a1 from app.orders as o
where o.tenant_id = :'tenant_a' and o.customer_id = 1 \gset

-- The scan finds the values while they are there (as A's admin and as the auditor).
select pg_temp.act_as(:'tenant_a', :'admin_a');
select is(
    array(
        select distinct split_part(h, ': ', 2) from unnest(pg_temp.found_where(:'erased_values')) as h
        order by 1
    ),
    array(
        select v from unnest(:'erased_values'::text[]) as v
        order by 1
    ),
    'before erasure, the scan as A''s admin finds every value of the subject'
);
select ok(
    pg_temp.found_where(array['alice@example.com'])
    @> array['app.customers: alice@example.com', 'tenancy.audit_logs: alice@example.com'],
    'in app.customers and in tenancy.audit_logs'
);
reset role;
set local role tenancy_auditor;
select is(
    array(
        select distinct split_part(h, ': ', 2) from unnest(pg_temp.found_where(:'erased_values')) as h
        order by 1
    ),
    array(
        select v from unnest(:'erased_values'::text[]) as v
        order by 1
    ),
    'before erasure, the scan as tenancy_auditor finds every value of the subject (in the audit trail)'
);
reset role;

select pg_temp.act_as(:'tenant_a', :'admin_a');
select tenancy.erase_subject('1', 'the subject asked (ticket 42)') as erased_a1 \gset
reset role;

select is(
    :'erased_a1'::jsonb ->> 'subject_hash',
    encode(sha256(convert_to(:'tenant_a' || ':1', 'UTF8')), 'hex'),
    'erase_subject returns the subject hash, sha256 of tenant:subject'
);
select is(
    tenancy.subject_hash(:'tenant_a', '1'),
    encode(sha256(convert_to(:'tenant_a' || ':1', 'UTF8')), 'hex'),
    'tenancy.subject_hash computes the same'
);
select is(
    :'erased_a1'::jsonb -> 'tables',
    '{"app.customers": 1, "app.orders": 2, "app.visits": 2}'::jsonb,
    'it counts one customer, two orders and two visits'
);
select results_eq(
    format(
        $$select c.email, c.full_name, c.phone from app.customers as c where c.tenant_id = %L and c.id = 1$$,
        :'tenant_a'
    ),
    format(
        $$values (%L::text, null::text, 'erased'::text)$$,
        'erased-' || left(encode(sha256(convert_to(:'tenant_a' || ':app.customers.email:1', 'UTF8')), 'hex'), 16)
    ),
    'customer 1 is anonymized: email the deterministic pseudonym, full_name NULL, phone the fixed ''erased'''
);
select results_eq(
    format(
        $$select o.id, o.shipping_address, o.total from app.orders as o where o.tenant_id = %L and o.customer_id = 1 order by o.id$$,
        :'tenant_a'
    ),
    format($$values (%s::bigint, null::text, 10.00::numeric), (%s, null, 20.00)$$, (:'orders_a1'::bigint[])[1], (:'orders_a1'::bigint[])[2]),
    'its orders are kept with shipping_address NULL (other columns as they were)'
);
select is(
    (
        select count(*)::integer from app.visits as v
        where v.tenant_id = :'tenant_a' and v.customer_id = 1
    ),
    0,
    'its visits are deleted'
);
select is(pg_temp.rows_digest(:'tenant_a', 11), :'digest_a11', 'A''s customer 11, its orders and visits are untouched');
select is(pg_temp.rows_digest(:'tenant_b', 1), :'digest_b1', 'B''s customer 1, its order and visit are untouched');

-- The ledger, the request, the outbox, analytics.
select pg_temp.act_as(:'tenant_a', :'admin_a');
select results_eq(
    $$select id, subject_hash, reason, counts, audit_rows, erased_by, reapplied_at from tenancy.erasure_ledger$$,
    format(
        $$values (%L::uuid, %L, 'the subject asked (ticket 42)', '{"app.customers": 1, "app.orders": 2, "app.visits": 2}'::jsonb,
            %s, %L, null::timestamptz)$$,
        :'erased_a1'::jsonb ->> 'ledger_id', tenancy.subject_hash(:'tenant_a', '1'),
        :'erased_a1'::jsonb ->> 'audit_rows', :'admin_a'
    ),
    'A''s admin reads one ledger entry: subject hash, reason, counts, audit rows, who erased'
);
select is(
    (select request_id from tenancy.erasure_ledger),
    :'req_erasure'::uuid,
    'the entry names the erasure request it answered'
);
select results_eq(
    $$select r.id, r.status, r.outcome from tenancy.subject_requests as r order by r.id$$,
    format(
        $$select * from (values (%L::uuid, 'completed', 'exported'), (%L::uuid, 'completed', 'exported'),
            (%L::uuid, 'completed', %L), (%L::uuid, 'completed', 'exported'), (%L::uuid, 'open', null)) as v order by 1$$,
        :'req_access', :'req_portability', :'req_erasure',
        format('erased (ledger %s)', :'erased_a1'::jsonb ->> 'ledger_id'), :'req_access_11', :'req_erasure_11'
    ),
    'the open erasure request is completed with the ledger id; subject 11''s erasure request stays open'
);
reset role;
select results_eq(
    format(
        $$select c.connector, c.action, c.ordering_key, c.payload -> 'ledger_id', c.payload -> 'tables'
        from tenancy.connector_events as c where c.tenant_id = %L and c.connector = 'subject'$$,
        :'tenant_a'
    ),
    format(
        $$values ('subject', 'erased', %L, %L::jsonb, '{"app.customers": 1, "app.orders": 2, "app.visits": 2}'::jsonb)$$,
        'subject:' || tenancy.subject_hash(:'tenant_a', '1'), to_jsonb(:'erased_a1'::jsonb ->> 'ledger_id')
    ),
    'a connector event subject.erased is enqueued in A, with the ledger id and the counts'
);
select is(
    (
        select count(*)::integer from tenancy.connector_events as c
        where c.tenant_id = :'tenant_b' and c.connector = 'subject'
    ),
    0,
    'none in B'
);
select results_eq(
    format(
        $$select a.id from tenancy.analytics_events as a
        where a.tenant_id in (%L, %L) and a.event !~ '^[$]' order by a.id$$,
        :'tenant_a', :'tenant_b'
    ),
    format($$values (%L::uuid), (%L::uuid)$$, least(:'a_event_11', :'b_event_1'), greatest(:'a_event_11', :'b_event_1')),
    'the subject''s analytics events are dropped; A''s of distinct id 11 and B''s of distinct id 1 are kept'
);
select is(
    (
        select count(*)::integer from tenancy.deliveries as d
        where d.event_id in (:'a_event_1'::uuid, :'a_event_1b'::uuid)
    ),
    0,
    'and their deliveries with them'
);
select results_eq(
    format(
        $$select l.entity_type, l.entity_id, l.metadata ->> 'ledger_id', l.metadata -> 'analytics_events_dropped'
        from tenancy.audit_logs as l where l.tenant_id = %L and l.action = 'subject.erased'$$,
        :'tenant_a'
    ),
    format(
        $$values ('data_subject', %L, %L, '2'::jsonb)$$,
        tenancy.subject_hash(:'tenant_a', '1'), :'erased_a1'::jsonb ->> 'ledger_id'
    ),
    'the erasure is in the audit trail: subject.erased keyed by the subject hash, with the ledger id'
);

-- The audit trail: redacted, sealed rows included, and the seals verify.
select results_eq(
    format(
        $$select l.redacted_at is not null, l.body_digest is not null, l.new_data -> 'email', l.old_data -> 'email'
        from tenancy.audit_logs as l where l.id = %s$$,
        :sealed_1
    ),
    $$values (true, true, 'null'::jsonb, 'null'::jsonb)$$,
    'the sealed audit row of customer 1 is redacted (its body digest kept)'
);
select results_eq(
    format(
        $$select l.redacted_at, l.new_data ->> 'email' from tenancy.audit_logs as l where l.id = %s$$,
        :sealed_11
    ),
    $$values (null::timestamptz, 'alice.b@example.com')$$,
    'the sealed audit row of customer 11 is not'
);
select is(
    :'erased_a1'::jsonb -> 'audit_rows',
    (
        select to_jsonb(count(*)::integer) from tenancy.audit_logs as l
        where l.tenant_id = :'tenant_a' and l.redacted_at is not null
    ),
    'audit_rows is the number of A''s audit rows redacted'
);
select * from tenancy.seal_audit() \gset seal_after_
select results_eq(
    format('select ok, first_bad_id, problem from tenancy.verify_audit(%L)', :'tenant_a'),
    $$values (true, null::bigint, null::text)$$,
    'after erasure and seal_audit, tenant A''s trail verifies'
);
select results_eq(
    format('select ok from tenancy.verify_audit(%L)', :'tenant_b'),
    $$values (true)$$,
    'and tenant B''s'
);

-- No erased value anywhere A's admin or the auditor can read.
select pg_temp.act_as(:'tenant_a', :'admin_a');
select cmp_ok((select count(*)::integer from pg_temp.scanned()), '>=', 20, 'A''s admin may select at least 20 relations of app and tenancy');
select is(pg_temp.found_where(:'erased_values'), '{}'::text[], 'after erasure, no erased value in any row A''s admin can read');
select is(
    array(
        select distinct split_part(h, ': ', 2) from unnest(pg_temp.found_where(:'kept_a_values')) as h
        order by 1
    ),
    array(
        select v from unnest(:'kept_a_values'::text[]) as v
        order by 1
    ),
    'while every value of customer 11 is still there'
);
reset role;
set local role tenancy_auditor;
select
    (select count(*) from pg_temp.scanned()) as auditor_scanned,
    pg_temp.found_where(:'erased_values'::text[] || :'kept_b_values'::text[] || '{198.51.100.66}'::text[]) as auditor_hits
\gset
reset role;
select cmp_ok(:auditor_scanned::integer, '>=', 10, 'the auditor may select at least 10 relations of app and tenancy');
select is(
    array(
        select h from unnest(:'auditor_hits'::text[]) as h
        where split_part(h, ': ', 2) = any(:'erased_values'::text[])
    ),
    '{}'::text[],
    'after erasure, no erased value in any row tenancy_auditor can read'
);
select ok(
    :'auditor_hits'::text[] @> array['tenancy.audit_logs: alice@example.net', 'tenancy.audit_logs: 198.51.100.8'],
    'while it still reads B''s customer''s values in B''s trail'
);
select ok(
    not ('tenancy.audit_logs: 198.51.100.66' = any(:'auditor_hits'::text[])),
    'the IP of the subject''s visit deleted before the request is erased from the trail too'
);

-- record_erasure, called directly: keys it names are redacted only when this transaction changed
-- their rows (or, in tables naming the subject, when a DELETE of the subject's row is in the
-- trail); the call is recorded in the ledger as an erasure of that subject all the same ----------

select pg_temp.act_as(:'tenant_a', :'owner_a');
select id as invitation from tenancy.invite('carol.invited@example.com', 'member') \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'admin_a');
select
    tenancy.record_erasure(
        '11', 'forged',
        jsonb_build_object(
            :'customers_oid',
            jsonb_build_object('table', 'app.customers', 'entity', '"app"."customers"', 'rows', 1, 'keys', jsonb_build_array('{"id": 11}'))
        ),
        null
    ) -> 'audit_rows' as forged_same
\gset
select
    tenancy.record_erasure(
        '11', 'forged',
        jsonb_build_object(
            :'customers_oid',
            jsonb_build_object(
                'table', 'app.customers', 'entity', '"tenancy"."invitations"', 'rows', 1,
                'keys', jsonb_build_array(jsonb_build_object('id', :'invitation')::text)
            )
        ),
        null
    ) -> 'audit_rows' as forged_entity
\gset
reset role;
select is(
    :'forged_same'::integer, 0,
    'a direct call for subject 11 redacts nothing of rows it did not change (customer 11 exists: only its DELETEs would count)'
);
select is(
    (
        select count(*)::integer from tenancy.audit_logs as l
        where
            l.tenant_id = :'tenant_a' and l.entity_type = '"app"."customers"' and l.entity_id = '{"id": 11}'
            and l.redacted_at is not null
    ),
    0,
    'no audit row of customer 11 is redacted'
);
select is(
    (
        select count(*)::integer from tenancy.erasure_ledger as e
        where e.tenant_id = :'tenant_a' and e.subject_hash = tenancy.subject_hash(:'tenant_a', '11')
    ),
    2,
    'both direct calls are in the ledger as erasures of subject 11 all the same'
);
select is(:'forged_entity'::integer, 0, 'an entity that is not the registered table''s is not redacted');
select is(
    (
        select l.new_data ->> 'email' from tenancy.audit_logs as l
        where
            l.tenant_id = :'tenant_a' and l.entity_type = '"tenancy"."invitations"'
            and l.entity_id = jsonb_build_object('id', :'invitation')::text and l.action = 'INSERT'
    ),
    'carol.invited@example.com',
    'the invitation''s audit row keeps its email'
);
select pg_temp.act_as(:'tenant_a', :'admin_a');
select throws_ok(
    format(
        $$select tenancy.record_erasure('11', 'forged', '{}', %L)$$,
        :'erased_a1'::jsonb ->> 'ledger_id'
    ),
    '22023',
    null,
    'a reapply of another subject''s ledger entry is refused (22023)'
);
reset role;
-- Clean up the ledger entries the calls above wrote.
delete from tenancy.erasure_ledger
where tenant_id = :'tenant_a' and reason = 'forged';

-- reapply_erasures after a restore ---------------------------------------------------------------

-- The subject's values come back "as from a backup": customer 1's columns and a visit, written
-- by the superuser with the audit triggers firing as they do.
update app.customers set email = 'alice@example.com', full_name = 'Alice Ashdown', phone = '+44 20 7946 0001'
where tenant_id = :'tenant_a' and id = 1;
insert into app.visits (tenant_id, id, customer_id, ip_address, path) overriding system value
select
    :'tenant_a' as tenant_id,
    v.id,
    1 as customer_id,
    '198.51.100.7' as ip_address,
    '/a' as path
from (select max(v.id) + 1000 as id from app.visits as v) as v;
select ok(
    (
        select count(*) from app.customers
        where tenant_id = :'tenant_a' and email = 'alice@example.com'
    ) = 1
    and exists (
        select from tenancy.audit_logs as l
        where
            l.tenant_id = :'tenant_a' and l.entity_id = '{"id": 1}' and l.new_data ->> 'email' = 'alice@example.com'
            and l.redacted_at is null
    ),
    'restored: customer 1 has its email again, and the restore is in the audit trail'
);
-- A ledger entry whose subject is in no table any more (imported from elsewhere).
select pg_temp.act_as(:'tenant_a', :'admin_a');
select
    tenancy.import_erasure_ledger(
        jsonb_build_array(jsonb_build_object(
            'tenant_id', :'tenant_a', 'id', gen_random_uuid(), 'subject_hash', tenancy.subject_hash(:'tenant_a', '999'),
            'reason', 'erased before the restore', 'erased_at', now() - interval '1 day'
        ))
    ) as imported_gone
\gset
select results_eq(
    $$select subject_hash, subjects, rows_changed > 0 from tenancy.reapply_erasures() order by subject_hash$$,
    format(
        $$select * from (values (%L, 1, true), (%L, 0, false)) as v order by 1$$,
        tenancy.subject_hash(:'tenant_a', '1'), tenancy.subject_hash(:'tenant_a', '999')
    ),
    'reapply_erasures finds subject 1 again and reports subject 999 (found nowhere) with no subject'
);
reset role;
select results_eq(
    format($$select c.email, c.full_name, c.phone from app.customers as c where c.tenant_id = %L and c.id = 1$$, :'tenant_a'),
    format(
        $$values (%L::text, null::text, 'erased'::text)$$,
        'erased-' || left(encode(sha256(convert_to(:'tenant_a' || ':app.customers.email:1', 'UTF8')), 'hex'), 16)
    ),
    'customer 1 is anonymized again, with the same pseudonym'
);
select is(
    (
        select count(*)::integer from app.visits as v
        where v.tenant_id = :'tenant_a' and v.customer_id = 1
    ),
    0,
    'the restored visit is deleted again'
);
select is(pg_temp.rows_digest(:'tenant_a', 11), :'digest_a11', 'customer 11 is still untouched');
select results_eq(
    format(
        $$select e.reapplied_at is not null, e.reapplied_rows > 0 from tenancy.erasure_ledger as e
        where e.tenant_id = %L and e.id = %L$$,
        :'tenant_a', :'erased_a1'::jsonb ->> 'ledger_id'
    ),
    $$values (true, true)$$,
    'the ledger entry has reapplied_at and the rows changed'
);
set local role tenancy_auditor;
select is(pg_temp.found_where(:'erased_values'), '{}'::text[], 'after reapply, the auditor finds no erased value (the restore''s audit rows are redacted too)');
reset role;
select results_eq(
    format('select ok from tenancy.verify_audit(%L)', :'tenant_a'),
    $$values (true)$$,
    'and tenant A''s trail still verifies'
);
select pg_temp.act_as(:'tenant_b', :'owner_b');
select is(
    (select count(*)::integer from tenancy.reapply_erasures()),
    0,
    'B''s reapply_erasures sees none of A''s ledger entries'
);
reset role;
select is(pg_temp.rows_digest(:'tenant_b', 1), :'digest_b1', 'and B''s customer 1 is still untouched');

-- import_erasure_ledger --------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'admin_a');
select jsonb_agg(to_jsonb(e.*)) as ledger_a from tenancy.erasure_ledger as e \gset
select count(*) as ledger_a_count from tenancy.erasure_ledger \gset
select gen_random_uuid() as new_entry \gset
select is(
    tenancy.import_erasure_ledger(
        :'ledger_a'::jsonb || jsonb_build_array(
            jsonb_build_object(
                'tenant_id', :'tenant_a', 'id', :'new_entry', 'subject_hash', tenancy.subject_hash(:'tenant_a', '77'),
                'reason', 'erased elsewhere', 'erased_at', '2026-01-02T03:04:05Z', 'counts', '{"app.customers": 1}'::jsonb,
                'audit_rows', 3
            ),
            jsonb_build_object(
                'tenant_id', :'tenant_a', 'id', :'new_entry', 'subject_hash', tenancy.subject_hash(:'tenant_a', '77'),
                'reason', 'erased elsewhere', 'erased_at', '2026-01-02T03:04:05Z'
            )
        )
    ),
    1,
    'import adds the one missing entry; those present and the duplicate are ignored'
);
select results_eq(
    format(
        $$select subject_hash, reason, erased_at, counts, audit_rows from tenancy.erasure_ledger where id = %L$$,
        :'new_entry'
    ),
    format(
        $$values (%L, 'erased elsewhere', '2026-01-02T03:04:05Z'::timestamptz, '{"app.customers": 1}'::jsonb, 3)$$,
        tenancy.subject_hash(:'tenant_a', '77')
    ),
    'the imported entry is stored as given, by id'
);
select is(tenancy.import_erasure_ledger(:'ledger_a'::jsonb), 0, 'importing the same entries again adds none');
reset role;

select pg_temp.act_as(:'tenant_b', :'owner_b');
select throws_ok(
    format('select tenancy.import_erasure_ledger(%L)', :'ledger_a'),
    '22023',
    null,
    'B cannot import A''s entries (22023)'
);
select throws_ok(
    format(
        'select tenancy.import_erasure_ledger(%L)',
        jsonb_build_array(jsonb_build_object(
            'tenant_id', :'tenant_b', 'id', gen_random_uuid(), 'subject_hash', tenancy.subject_hash(:'tenant_b', '5'),
            'reason', 'r', 'erased_at', now()
        ), (:'ledger_a'::jsonb) -> 0)
    ),
    '22023',
    null,
    'nor a mix of its own and A''s (22023)'
);
select is(
    tenancy.import_erasure_ledger(
        jsonb_build_array(jsonb_build_object(
            'tenant_id', :'tenant_b', 'id', gen_random_uuid(), 'subject_hash', tenancy.subject_hash(:'tenant_b', '5'),
            'reason', 'r', 'erased_at', now()
        ))
    ),
    1,
    'while B imports an entry of its own'
);
reset role;
select is(
    (
        select count(*) from tenancy.erasure_ledger
        where tenant_id = :'tenant_a'
    ),
    :ledger_a_count::bigint + 1,
    'A''s ledger holds its entries and the one imported, nothing from B'
);
select pg_temp.act_as(:'tenant_a', :'admin_a');
select results_eq(
    $$select pg_temp.sqlstate_of(format('select tenancy.import_erasure_ledger(%L)', e))
    from unnest(array[
        '{}', 'null', '[1]', '[{"tenant_id": null}]',
        '[{"id": "x", "subject_hash": "00", "reason": "r", "erased_at": "2026-01-01"}]'
    ]) with ordinality as u (e, n) order by n$$,
    $$values ('22023'), ('22023'), ('22023'), ('22023'), ('22023')$$,
    'malformed entries are refused (22023)'
);
-- An entry of A that would be valid, with one field changed.
select results_eq(
    $$select c.change, pg_temp.sqlstate_of(format(
        'select tenancy.import_erasure_ledger(%L)',
        jsonb_build_array(jsonb_build_object(
            'tenant_id', tenancy.current_tenant_id(), 'id', gen_random_uuid(), 'subject_hash', repeat('a', 64),
            'reason', 'r', 'erased_at', '2026-01-02T03:04:05Z'
        ) || c.change)
    ))
    from unnest(array[
        '{"erased_at": "not a time"}', '{"erased_at": "2026-02-30T00:00:00Z"}', '{"audit_rows": "many"}',
        '{"audit_rows": -1}', '{"counts": 5}', '{"reason": "   "}', jsonb_build_object('reason', repeat('r', 501)),
        '{"subject_hash": "ABC"}', '{}'
    ]::jsonb []) with ordinality as c (change, n) order by c.n$$,
    $$values
        ('{"erased_at": "not a time"}'::jsonb, '22023'), ('{"erased_at": "2026-02-30T00:00:00Z"}', '22023'),
        ('{"audit_rows": "many"}', '22023'), ('{"audit_rows": -1}', '22023'), ('{"counts": 5}', '22023'),
        ('{"reason": "   "}', '22023'), (jsonb_build_object('reason', repeat('r', 501)), '22023'),
        ('{"subject_hash": "ABC"}', '22023'), ('{}', null)$$,
    'an entry whose erased_at is no time, audit_rows no count, counts no object, reason blank or too long is refused (22023)'
);
reset role;
select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok(
    $$select tenancy.import_erasure_ledger('[]')$$, '42501', null, 'a member cannot import ledger entries'
);
reset role;

select * from finish();
rollback;
