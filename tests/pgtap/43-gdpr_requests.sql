-- GDPR subject requests and their statutory clock (open, extend, close, subject_request_status), isolation between tenants, declare_personal_data's refusals, and the grants and search_path of every subject rights function.
-- Tenants A and B; A has an admin, a member and a viewer. Requests are opened as tenancy_app in
-- the tenants' contexts, as applications do; requests received in the past are opened with
-- p_received_at (at most five minutes ahead of now is accepted). Every refusal is paired with the
-- same call succeeding for the rightful tenant or role. The superuser reads the rows behind the
-- functions and, for declare_personal_data (granted to nobody; generated policy files call it),
-- creates functions the registry must refuse. Times are compared in UTC.

begin;
select plan(68);

\ir setup/helpers.psql

set local timezone = 'UTC';

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
    'auth0|' || gen_random_uuid() as admin_a,
    'auth0|' || gen_random_uuid() as member_a,
    'auth0|' || gen_random_uuid() as viewer_a,
    'auth0|' || gen_random_uuid() as owner_b,
    'gr-a-' || left(md5(random()::text), 8) as slug_a,
    'gr-b-' || left(md5(random()::text), 8) as slug_b
\gset

set local role tenancy_admin;
select tenancy.create_tenant(:'slug_a', 'GDPR requests A', :'owner_a') as tenant_a \gset
select tenancy.create_tenant(:'slug_b', 'GDPR requests B', :'owner_b') as tenant_b \gset
reset role;
select pg_temp.act_as(:'tenant_a');
select tenancy.add_member(:'admin_a', 'admin');
select tenancy.add_member(:'member_a', 'member');
select tenancy.add_member(:'viewer_a', 'viewer');
reset role;

-- open_subject_request ---------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'admin_a');
select
    tenancy.open_subject_request('access', 'subject-xyz@example.com', null, 'by e-mail') as req_now,
    tenancy.open_subject_request('erasure', 'subject-xyz@example.com', '2026-01-15 12:00+00') as req_jan,
    tenancy.open_subject_request('portability', 'subject-xyz@example.com', now() - interval '10 days') as req_10d,
    tenancy.open_subject_request('objection', 'subject-xyz@example.com', now() - interval '2 months') as req_late,
    tenancy.open_subject_request('rectification', 'subject-xyz@example.com', now() + interval '1 minute') as req_ahead,
    tenancy.open_subject_request('restriction', 'subject-xyz@example.com') as req_restriction
\gset
reset role;

select results_eq(
    format(
        $$select r.kind, r.status, r.received_at, r.due_at, r.note, r.created_by, r.subject_hash
        from tenancy.subject_requests as r where r.tenant_id = %L and r.id = %L$$,
        :'tenant_a', :'req_now'
    ),
    format(
        $$values ('access', 'open', now(), now() + interval '1 month', 'by e-mail', %L, %L)$$,
        :'admin_a', encode(sha256(convert_to(:'tenant_a' || ':subject-xyz@example.com', 'UTF8')), 'hex')
    ),
    'an access request received now: open, due one month later, with its note, creator and the subject''s hash'
);
select results_eq(
    format($$select r.received_at, r.due_at from tenancy.subject_requests as r where r.id = %L$$, :'req_jan'),
    $$values ('2026-01-15 12:00+00'::timestamptz, '2026-02-15 12:00+00'::timestamptz)$$,
    'received on 15 January at noon: due on 15 February at noon'
);
select is(
    (
        select array_agg(r.kind order by r.kind) from tenancy.subject_requests as r
        where r.tenant_id = :'tenant_a'
    ),
    array['access', 'erasure', 'objection', 'portability', 'rectification', 'restriction'],
    'every kind of request opens: access, erasure, objection, portability, rectification, restriction'
);
select is(
    (
        select r.received_at from tenancy.subject_requests as r
        where r.id = :'req_ahead'
    ),
    now() + interval '1 minute',
    'a receipt a minute ahead of the database''s clock is accepted (clock skew)'
);
select is(
    (
        select count(*)::integer from tenancy.subject_requests as r
        where r.tenant_id = :'tenant_a' and strpos(r::text, 'subject-xyz') > 0
    ),
    0,
    'no request row holds the subject id'
);
select results_eq(
    format(
        $$select l.entity_type, l.actor_user_id, l.metadata ->> 'kind', strpos(l::text, 'subject-xyz') = 0
        from tenancy.audit_logs as l where l.tenant_id = %L and l.action = 'subject_request.opened' and l.entity_id = %L$$,
        :'tenant_a', :'req_now'
    ),
    format($$values ('subject_request', %L, 'access', true)$$, :'admin_a'),
    'the opening is in the audit trail (kind, by whom), without the subject id'
);

select count(*) as requests_before from tenancy.subject_requests \gset
select pg_temp.act_as(:'tenant_a', :'admin_a');
select results_eq(
    $$select k, pg_temp.sqlstate_of(format('select tenancy.open_subject_request(%L, %L)', k, 's'))
    from unnest(array['deletion', '', null, 'Access']) with ordinality as u (k, n) order by n$$,
    $$values ('deletion', '22023'), ('', '22023'), (null, '22023'), ('Access', '22023')$$,
    'an unknown, empty or NULL kind is refused (22023)'
);
select throws_ok(
    $$select tenancy.open_subject_request('access', 's', now() + interval '1 hour')$$,
    '22023',
    null,
    'a request received an hour in the future is refused (22023)'
);
select throws_ok(
    $$select tenancy.open_subject_request('access', 's', null, repeat('n', 2001))$$,
    '22023',
    'request note of 2001 characters is too long: at most 2000',
    'a note over 2000 characters is refused (22023)'
);
select results_eq(
    $$select pg_temp.sqlstate_of(format('select tenancy.open_subject_request(%L, %L)', 'access', s))
    from unnest(array['', null, E'a\nb', repeat('s', 501)]) with ordinality as u (s, n) order by n$$,
    $$values ('22023'), ('22023'), ('22023'), ('22023')$$,
    'a subject id that is empty, NULL, holds a control character or is over 500 characters is refused (22023)'
);
reset role;
select is((select count(*) from tenancy.subject_requests), :requests_before::bigint, 'the refused calls opened nothing');

-- extend_subject_request -------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'admin_a');
select is(
    tenancy.extend_subject_request(:'req_10d', 'many requests from this subject'),
    now() - interval '10 days' + interval '3 months',
    'an open request is extended to three months after its receipt; the new due time is returned'
);
select throws_ok(
    format($$select tenancy.extend_subject_request(%L, 'again')$$, :'req_10d'),
    '55000',
    format('subject request %s cannot be extended: it was extended already', :'req_10d'),
    'a second extension is refused (55000)'
);
select throws_ok(
    format($$select tenancy.extend_subject_request(%L, 'too late')$$, :'req_late'),
    '55000',
    null,
    'an overdue request cannot be extended (55000)'
);
select results_eq(
    $$select r, pg_temp.sqlstate_of(format('select tenancy.extend_subject_request(%L, %L)', tenancy.uuid_v7(), r))
    from unnest(array['', '  ', null, repeat('r', 501)]) with ordinality as u (r, n) order by n$$,
    $$values ('', '22023'), ('  ', '22023'), (null, '22023'), (repeat('r', 501), '22023')$$,
    'an empty, blank, NULL or over-long reason is refused (22023)'
);
select throws_ok(
    format($$select tenancy.extend_subject_request(%L, 'why')$$, gen_random_uuid()),
    'P0002',
    null,
    'an unknown request cannot be extended (P0002)'
);
select throws_ok(
    $$select tenancy.extend_subject_request(null, 'why')$$,
    'P0002',
    'subject request NULL does not exist in this tenant',
    'nor a NULL one (P0002)'
);
reset role;
select results_eq(
    format(
        $$select r.due_at, r.extended_at, r.extension_reason, r.status from tenancy.subject_requests as r where r.id = %L$$,
        :'req_10d'
    ),
    $$values (now() - interval '10 days' + interval '3 months', now(), 'many requests from this subject', 'open')$$,
    'the extension is stored: new due time, when, why; the request stays open'
);
select results_eq(
    format(
        $$select l.metadata -> 'due_at' from tenancy.audit_logs as l
        where l.tenant_id = %L and l.action = 'subject_request.extended' and l.entity_id = %L$$,
        :'tenant_a', :'req_10d'
    ),
    $$values (to_jsonb(now() - interval '10 days' + interval '3 months'))$$,
    'the extension is in the audit trail with the new due time'
);

-- close_subject_request --------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'admin_a');
select lives_ok(
    format($$select tenancy.close_subject_request(%L, 'completed', 'data sent by e-mail')$$, :'req_now'),
    'an open request is closed as completed'
);
select lives_ok(
    format($$select tenancy.close_subject_request(%L, 'refused', 'manifestly unfounded')$$, :'req_late'),
    'an open request, overdue, is closed as refused'
);
select throws_ok(
    format($$select tenancy.close_subject_request(%L, 'refused', 'again')$$, :'req_now'),
    '55000',
    format('subject request %s is completed already', :'req_now'),
    'a closed request cannot be closed again (55000)'
);
select throws_ok(
    format($$select tenancy.extend_subject_request(%L, 'after closing')$$, :'req_late'),
    '55000',
    format('subject request %s cannot be extended: it is refused', :'req_late'),
    'a refused request cannot be extended (55000)'
);
select results_eq(
    $$select s, pg_temp.sqlstate_of(format('select tenancy.close_subject_request(%L, %L, %L)', tenancy.uuid_v7(), s, 'x'))
    from unnest(array['open', 'done', null, '']) with ordinality as u (s, n) order by n$$,
    $$values ('open', '22023'), ('done', '22023'), (null, '22023'), ('', '22023')$$,
    'a status other than completed or refused is refused (22023)'
);
select results_eq(
    $$select o, pg_temp.sqlstate_of(format('select tenancy.close_subject_request(%L, %L, %L)', tenancy.uuid_v7(), 'completed', o))
    from unnest(array['', ' ', null, repeat('o', 501)]) with ordinality as u (o, n) order by n$$,
    $$values ('', '22023'), (' ', '22023'), (null, '22023'), (repeat('o', 501), '22023')$$,
    'an empty, blank, NULL or over-long outcome is refused (22023)'
);
select throws_ok(
    format($$select tenancy.close_subject_request(%L, 'completed', 'done')$$, gen_random_uuid()),
    'P0002',
    null,
    'an unknown request cannot be closed (P0002)'
);
select is(
    pg_temp.sqlstate_of(format($$select tenancy.extend_subject_request(%L, 'closed')$$, :'req_now')),
    '55000',
    'a closed request cannot be extended (55000)'
);
reset role;
select results_eq(
    format(
        $$select r.id, r.status, r.outcome, r.closed_at from tenancy.subject_requests as r
        where r.id in (%L, %L) order by r.id$$,
        :'req_now', :'req_late'
    ),
    format(
        $$select * from (values (%L::uuid, 'completed', 'data sent by e-mail', now()), (%L::uuid, 'refused', 'manifestly unfounded', now())) as v
        order by 1$$,
        :'req_now', :'req_late'
    ),
    'closing stores the status, the outcome and when'
);
select is(
    (
        select array_agg(l.metadata ->> 'status' order by l.metadata ->> 'status') from tenancy.audit_logs as l
        where l.tenant_id = :'tenant_a' and l.action = 'subject_request.closed'
    ),
    array['completed', 'refused'],
    'both closings are in the audit trail'
);

-- subject_request_status -------------------------------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'admin_a');
select results_eq(
    $$select s.id, s.kind, s.status, s.extended, s.days_left, s.overdue from tenancy.subject_request_status as s
    order by s.id$$,
    format(
        $$select * from (values
            (%L::uuid, 'access', 'completed', false, ceil(date_part('epoch', now() + interval '1 month' - now()) / 86400)::integer, false),
            (%L::uuid, 'erasure', 'open', false,
                ceil(date_part('epoch', '2026-02-15 12:00+00'::timestamptz - now()) / 86400)::integer,
                now() > '2026-02-15 12:00+00'::timestamptz),
            (%L::uuid, 'portability', 'open', true,
                ceil(date_part('epoch', now() - interval '10 days' + interval '3 months' - now()) / 86400)::integer, false),
            (%L::uuid, 'objection', 'refused', false,
                ceil(date_part('epoch', now() - interval '2 months' + interval '1 month' - now()) / 86400)::integer, false),
            (%L::uuid, 'rectification', 'open', false,
                ceil(date_part('epoch', now() + interval '1 minute' + interval '1 month' - now()) / 86400)::integer, false),
            (%L::uuid, 'restriction', 'open', false, ceil(date_part('epoch', now() + interval '1 month' - now()) / 86400)::integer, false)
        ) as v order by 1$$,
        :'req_now', :'req_jan', :'req_10d', :'req_late', :'req_ahead', :'req_restriction'
    ),
    'the status view: kind, status, extended, days left, overdue (only while open)'
);
select ok(
    (
        select s.days_left between 28 and 31 and not s.overdue from tenancy.subject_request_status as s
        where s.id = :'req_restriction'
    )
    and (
        select s.days_left between 80 and 83 from tenancy.subject_request_status as s
        where s.id = :'req_10d'
    ),
    'a request received now has 28 to 31 days left; one received 10 days ago and extended, 80 to 83'
);
reset role;
-- An open request past its due time is overdue, with days left negative.
select pg_temp.act_as(:'tenant_a');
select tenancy.open_subject_request('access', 'late-subject', now() - interval '3 months') as req_overdue \gset
reset role;
select pg_temp.act_as(:'tenant_a', :'admin_a');
select results_eq(
    format($$select s.overdue, s.days_left < -28 from tenancy.subject_request_status as s where s.id = %L$$, :'req_overdue'),
    $$values (true, true)$$,
    'an open request received three months ago is overdue, about two months late'
);
reset role;

-- Isolation: B cannot see, extend or close A's requests -----------------------------------------

select pg_temp.act_as(:'tenant_b', :'owner_b');
select tenancy.open_subject_request('access', 'subject-xyz@example.com') as req_b \gset
select results_eq(
    $$select s.id from tenancy.subject_request_status as s$$,
    format($$values (%L::uuid)$$, :'req_b'),
    'B''s owner sees its own request in the status view, none of A''s'
);
select is(
    (select count(*)::integer from tenancy.subject_requests),
    1,
    'nor in tenancy.subject_requests'
);
select throws_ok(
    format($$select tenancy.extend_subject_request(%L, 'from B')$$, :'req_restriction'),
    'P0002',
    format('subject request %s does not exist in this tenant', :'req_restriction'),
    'B cannot extend A''s request (P0002)'
);
select throws_ok(
    format($$select tenancy.close_subject_request(%L, 'refused', 'from B')$$, :'req_restriction'),
    'P0002',
    format('subject request %s does not exist in this tenant', :'req_restriction'),
    'B cannot close A''s request (P0002)'
);
select lives_ok(
    format($$select tenancy.extend_subject_request(%L, 'B''s own')$$, :'req_b'),
    'while B extends its own request'
);
select lives_ok(
    format($$select tenancy.close_subject_request(%L, 'completed', 'B''s own')$$, :'req_b'),
    'and closes it'
);
reset role;
select results_eq(
    format(
        $$select r.status, r.extended_at, r.due_at from tenancy.subject_requests as r where r.id = %L$$,
        :'req_restriction'
    ),
    $$values ('open', null::timestamptz, now() + interval '1 month')$$,
    'A''s request is unchanged'
);
select isnt(
    (
        select r.subject_hash from tenancy.subject_requests as r
        where r.id = :'req_b'
    ),
    (
        select r.subject_hash from tenancy.subject_requests as r
        where r.id = :'req_restriction'
    ),
    'the same subject id in two tenants has two hashes'
);

-- Members, viewers and no context are refused ----------------------------------------------------

select pg_temp.act_as(:'tenant_a', :'member_a');
select throws_ok($$select tenancy.open_subject_request('access', 's')$$, '42501', null, 'a member cannot open a request');
select throws_ok(
    format($$select tenancy.extend_subject_request(%L, 'm')$$, :'req_restriction'), '42501', null,
    'a member cannot extend a request'
);
select throws_ok(
    format($$select tenancy.close_subject_request(%L, 'completed', 'm')$$, :'req_restriction'), '42501', null,
    'a member cannot close a request'
);
select is((select count(*)::integer from tenancy.subject_request_status), 0, 'a member sees no request');
reset role;
select pg_temp.act_as(:'tenant_a', :'viewer_a');
select throws_ok($$select tenancy.open_subject_request('access', 's')$$, '42501', null, 'a viewer cannot open a request');
select throws_ok(
    format($$select tenancy.close_subject_request(%L, 'completed', 'v')$$, :'req_restriction'), '42501', null,
    'a viewer cannot close a request'
);
select is((select count(*)::integer from tenancy.subject_request_status), 0, 'a viewer sees no request');
reset role;
select tenancy.clear_context();
set local role tenancy_app;
select throws_ok(
    $$select tenancy.open_subject_request('access', 's')$$,
    'TN001',
    'no tenant context: tenancy.open_subject_request needs tenancy.authenticate() or tenancy.set_context() first',
    'without a context a request cannot be opened (TN001)'
);
select is((select count(*)::integer from tenancy.subject_request_status), 0, 'and no request is visible');
reset role;
select pg_temp.act_as(:'tenant_a', :'owner_a');
select lives_ok(
    format($$select tenancy.close_subject_request(%L, 'completed', 'by the owner')$$, :'req_restriction'),
    'while A''s owner closes the request'
);
select is((select count(*)::integer from tenancy.subject_request_status), 7, 'and sees A''s seven requests');
reset role;

-- declare_personal_data --------------------------------------------------------------------------

select to_jsonb(d.*) - 'declared_at' as customers_entry from tenancy.personal_data as d
where d.table_name = 'app.customers'::regclass \gset
create function app.gdpr_definer_erase(p_subjects text[])
returns jsonb
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$ select pg_catalog.jsonb_build_object('rows', 0, 'keys', '[]'::pg_catalog.jsonb, 'n', pg_catalog.cardinality(p_subjects)) $$;
select throws_ok(
    $$select tenancy.declare_personal_data(
        'app.customers', 'id', null, '{email}', 'anonymize', 0, true,
        '"app"."tenancy_export_customers"(text[])', 'app.gdpr_definer_erase(text[])'
    )$$,
    '42501',
    'function app.gdpr_definer_erase(text[]) of the personal data of app.customers is SECURITY DEFINER: it must run as its caller',
    'declare_personal_data refuses a SECURITY DEFINER erasure function (42501)'
);
select throws_ok(
    $$select tenancy.declare_personal_data(
        'app.customers', 'id', null, '{email}', 'anonymize', 0, true,
        'app.gdpr_definer_erase(text[])', '"app"."tenancy_erase_customers"(text[])'
    )$$,
    '42501',
    null,
    'and a SECURITY DEFINER export function (42501)'
);
select throws_ok(
    $$select tenancy.declare_personal_data(
        'app.customers', 'id', null, '{email}', 'anonymize', 0, true,
        '"app"."tenancy_export_customers"(text[])', 'app.no_such_erase(text[])'
    )$$,
    '42883',
    'function app.no_such_erase(text[]) of the personal data of app.customers does not exist',
    'declare_personal_data refuses a function that does not exist (42883)'
);
select is(
    (
        select to_jsonb(d.*) - 'declared_at' from tenancy.personal_data as d
        where d.table_name = 'app.customers'::regclass
    ),
    :'customers_entry'::jsonb,
    'the registry entry of app.customers is unchanged'
);
select lives_ok(
    format(
        $$select tenancy.declare_personal_data(%L, %L, null, %L, %L, %s, %s, %L, %L)$$,
        :'customers_entry'::jsonb ->> 'table_name', :'customers_entry'::jsonb ->> 'subject_column',
        array(select jsonb_array_elements_text(:'customers_entry'::jsonb -> 'pii')),
        :'customers_entry'::jsonb ->> 'erase', :'customers_entry'::jsonb ->> 'depth',
        :'customers_entry'::jsonb ->> 'subject_direct',
        :'customers_entry'::jsonb ->> 'export_function', :'customers_entry'::jsonb ->> 'erase_function'
    ),
    'while its generated functions are declared again'
);
set local role tenancy_app;
select throws_ok(
    $$select tenancy.declare_personal_data(
        'app.customers', 'id', null, '{}', 'delete', 0, true,
        '"app"."tenancy_export_customers"(text[])', '"app"."tenancy_erase_customers"(text[])'
    )$$,
    '42501',
    null,
    'tenancy_app cannot execute declare_personal_data (42501)'
);
select throws_ok(
    $$select tenancy.forget_personal_data('app.customers')$$, '42501', null,
    'nor forget_personal_data (42501)'
);
reset role;
select is(
    (
        select to_jsonb(d.*) - 'declared_at' from tenancy.personal_data as d
        where d.table_name = 'app.customers'::regclass
    ),
    :'customers_entry'::jsonb,
    'the registry entry of app.customers is as it was'
);

-- Grants and search_path of every subject rights function ---------------------------------------

create temporary table gdpr_functions on commit drop as
select
    p.oid::regprocedure as fn,
    p.prosecdef as definer,
    p.proconfig as config,
    p.proacl,
    p.proowner
from pg_proc as p
where
    p.pronamespace = 'tenancy'::regnamespace
    and p.proname in (
        'close_subject_request', 'declare_personal_data', 'erase_subject', 'erasure_audit_keys', 'export_subject',
        'extend_subject_request', 'forget_personal_data', 'import_erasure_ledger', 'open_subject_request',
        'reapply_erasures', 'record_erasure', 'record_subject_export', 'redact_audit_entities',
        'require_subject_rights', 'subject_hash', 'subject_rows'
    )
    or p.pronamespace = 'app'::regnamespace and p.proname ~ '^tenancy_(export|erase)_';

select is((select count(*)::integer from gdpr_functions), 22, 'sixteen pgtenancy functions and six generated ones');
select is(
    array(
        select g.fn::text from gdpr_functions as g
        cross join lateral aclexplode(coalesce(g.proacl, acldefault('f', g.proowner))) as a
        where a.grantee = 0 and a.privilege_type = 'EXECUTE'
        order by 1
    ),
    '{}'::text[],
    'none of them may be executed by PUBLIC'
);
select is(
    array(
        select g.fn::text from gdpr_functions as g
        where g.definer
        order by 1
    ),
    array[
        'tenancy.close_subject_request(uuid,text,text)', 'tenancy.erasure_audit_keys(uuid,text,text[])',
        'tenancy.extend_subject_request(uuid,text)', 'tenancy.import_erasure_ledger(jsonb)',
        'tenancy.open_subject_request(text,text,timestamp with time zone,text)',
        'tenancy.record_erasure(text,text,jsonb,uuid)', 'tenancy.record_subject_export(text,jsonb,integer)',
        'tenancy.redact_audit_entities(uuid,text,text[],text[])'
    ],
    'these run as their owner (SECURITY DEFINER); export_subject, erase_subject and the generated ones as the caller'
);
select is(
    array(
        select g.fn::text from gdpr_functions as g
        where g.definer and not coalesce('search_path=pg_catalog, pg_temp' = any(g.config), false)
    ),
    '{}'::text[],
    'every SECURITY DEFINER one sets search_path = pg_catalog, pg_temp'
);
select is(
    array(
        select g.fn::text from gdpr_functions as g
        where not coalesce('search_path=pg_catalog, pg_temp' = any(g.config), false)
        order by 1
    ),
    array['tenancy.subject_hash(uuid,text)'],
    'so does every other but subject_hash (inlined SQL, every name qualified)'
);
select results_eq(
    $$select g.fn::text,
        has_function_privilege('tenancy_app', g.fn, 'execute'),
        has_function_privilege('tenancy_service', g.fn, 'execute'),
        has_function_privilege('tenancy_admin', g.fn, 'execute'),
        has_function_privilege('tenancy_auditor', g.fn, 'execute')
    from gdpr_functions as g
    where g.fn::text !~ '^app\.'
    order by 1$$,
    $$values
        ('tenancy.close_subject_request(uuid,text,text)', true, true, false, false),
        ('tenancy.declare_personal_data(regclass,name,regclass,text[],text,integer,boolean,text,text)', false, false, false, false),
        ('tenancy.erase_subject(text,text)', true, true, false, false),
        ('tenancy.erasure_audit_keys(uuid,text,text[])', false, false, false, false),
        ('tenancy.export_subject(text)', true, true, false, false),
        ('tenancy.extend_subject_request(uuid,text)', true, true, false, false),
        ('tenancy.forget_personal_data(regclass)', false, false, false, false),
        ('tenancy.import_erasure_ledger(jsonb)', true, true, false, false),
        ('tenancy.open_subject_request(text,text,timestamp with time zone,text)', true, true, false, false),
        ('tenancy.reapply_erasures()', true, true, false, false),
        ('tenancy.record_erasure(text,text,jsonb,uuid)', true, true, false, false),
        ('tenancy.record_subject_export(text,jsonb,integer)', true, true, false, false),
        ('tenancy.redact_audit_entities(uuid,text,text[],text[])', false, false, false, false),
        ('tenancy.require_subject_rights(text,text)', true, true, false, false),
        ('tenancy.subject_hash(uuid,text)', true, true, true, true),
        ('tenancy.subject_rows(text,boolean)', true, true, false, false)$$,
    'who may execute each: the application and service roles, never tenancy_admin or the auditor (subject_hash aside)'
);
select results_eq(
    $$select g.fn::text, has_function_privilege('tenancy_owner', g.fn, 'execute')
    from gdpr_functions as g where g.fn::text in (
        'tenancy.erasure_audit_keys(uuid,text,text[])', 'tenancy.redact_audit_entities(uuid,text,text[],text[])'
    ) order by 1$$,
    $$values ('tenancy.erasure_audit_keys(uuid,text,text[])', true), ('tenancy.redact_audit_entities(uuid,text,text[],text[])', true)$$,
    'the audit trail''s helpers are for tenancy_owner (record_erasure''s owner)'
);
select ok(
    (
        select
            bool_and(
                has_function_privilege('tenancy_app', g.fn, 'execute') and has_function_privilege('tenancy_service', g.fn, 'execute')
                and not has_function_privilege('tenancy_auditor', g.fn, 'execute')
            )
        from gdpr_functions as g
        where g.fn::text ~ '^app\.'
    ),
    'the generated functions are for the application and service roles'
);
select results_eq(
    $$select 'security_invoker=true' = any(c.reloptions), has_table_privilege('public', c.oid, 'select'),
        has_table_privilege('tenancy_app', c.oid, 'select')
    from pg_class as c where c.oid = 'tenancy.subject_request_status'::regclass$$,
    $$values (true, false, true)$$,
    'subject_request_status is security_invoker, readable by tenancy_app, not by PUBLIC'
);

select * from finish();
rollback;
