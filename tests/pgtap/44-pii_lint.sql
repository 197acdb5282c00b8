-- Lint 0022 (personal data not classified): columns that look personal by name or by sampled contents are WARNs until classified, the spec decides for the tables it lists, and no finding shows a value.
-- Runs as the superuser (it sees every tenant's rows), then as tenancy_auditor without a tenant
-- context (row level security shows it none: only names are checked). Tenant ids are random:
-- the lint reads rows, not tenants. Everything is rolled back.
-- noqa: disable=RF05

begin;
select plan(30);

-- The findings of lint 0022 on the tables of this test, as "object".
create function pg_temp.found()
returns setof text
language sql
as $$
    select f.object from tenancy.lint_0022_personal_data_not_classified as f
    where f.object ~ '^public\.pii_' order by f.object
$$;

-- A tenant table as the generated files make them: row level security forced, a tenant policy.
create function pg_temp.secure(p_table regclass)
returns void
language plpgsql
as $$
begin
    execute format('alter table %s enable row level security, force row level security', p_table);
    execute format(
        'create policy "tenant rows" on %s using (tenant_id = (select tenancy.context_tenant_id(null)))',
        p_table
    );
end
$$;

create table public.pii_people (
    tenant_id uuid not null,
    id integer not null,
    email text,
    mobile_phone text,
    last_login_ip inet,
    email_verified boolean not null default false,
    name text,
    contact text,
    words text,
    constraint pii_people_pkey primary key (tenant_id, id)
);
select pg_temp.secure('public.pii_people');
-- Two tenants' rows; contact holds email addresses, words random words.
insert into public.pii_people (tenant_id, id, email, mobile_phone, last_login_ip, name, contact, words)
select
    case when g % 2 = 0 then 'aaaaaaaa-0000-4000-8000-000000000001'::uuid else 'aaaaaaaa-0000-4000-8000-000000000002'::uuid end
        as tenant_id,
    g as id,
    'mail' || g || '@example.net' as email,
    '+49 30 555 ' || (1000 + g) as mobile_phone,
    ('10.1.2.' || g)::inet as last_login_ip,
    'Person ' || g as name,
    'piicontact' || g || '@example.org' as contact,
    (array['apple', 'river', 'stone', 'violet', 'thunder', 'maple'])[g % 6 + 1] || ' ' || md5(g::text) as words
from generate_series(1, 12) as g;

-- A table of things: its name column is a thing's name.
create table public.pii_projects (
    tenant_id uuid not null,
    id integer not null,
    name text not null,
    title text,
    constraint pii_projects_pkey primary key (tenant_id, id)
);
select pg_temp.secure('public.pii_projects');
insert into public.pii_projects
select
    'aaaaaaaa-0000-4000-8000-000000000001' as tenant_id,
    g as id,
    'project ' || g as name,
    'Quarterly plan ' || g as title
from generate_series(1, 12) as g;

-- 1-2: by name (email, a phone, an IP address) and by contents (contact); not the boolean
-- email_verified, not name outside a people table, not the random words.
select is(
    array(select * from pg_temp.found()),
    array[
        'public.pii_people.contact', 'public.pii_people.email', 'public.pii_people.last_login_ip',
        'public.pii_people.mobile_phone'
    ],
    '0022: email, mobile_phone, last_login_ip (names) and contact (contents) of pii_people, nothing else'
);
select is(
    array(
        select distinct f.code || ' ' || f.name || ' ' || f.level
        from tenancy.lint_0022_personal_data_not_classified as f
        where f.object ~ '^public\.pii_'
    ),
    array['0022 personal_data_not_classified WARN'],
    '0022 is a WARN, never an ERROR'
);

-- 3-6: what each finding says.
select is(
    (
        select f.detail from tenancy.lint_0022_personal_data_not_classified as f
        where f.object = 'public.pii_people.contact'
    ),
    'column contact of tenant table public.pii_people looks like it holds email addresses (by its contents: 12 '
    'of the 12 non-empty values sampled), but tenancy.personal_data does not classify it as personal data (pii, '
    'or the subject column): exporting or erasing a data subject leaves it out',
    'contact: email addresses by its contents, with the counts, no value'
);
select is(
    (
        select f.detail from tenancy.lint_0022_personal_data_not_classified as f
        where f.object = 'public.pii_people.last_login_ip'
    ),
    'column last_login_ip of tenant table public.pii_people looks like it holds IP addresses (by its name), but '
    'tenancy.personal_data does not classify it as personal data (pii, or the subject column): exporting or '
    'erasing a data subject leaves it out',
    'last_login_ip (inet): IP addresses by its name'
);
select matches(
    (
        select f.detail from tenancy.lint_0022_personal_data_not_classified as f
        where f.object = 'public.pii_people.mobile_phone'
    ),
    'holds phone numbers \(by its name\)',
    'mobile_phone: phone numbers by its name'
);
select is(
    (
        select f.remediation from tenancy.lint_0022_personal_data_not_classified as f
        where f.object = 'public.pii_people.email'
    ),
    'declare the personal data of [tables."public.pii_people"] in the spec (tenancy.toml): subject = "<the column '
    'naming the data subject>", pii = ["email"]; then pgtenancy generate and apply its file; or ignore this '
    'suggestion if it holds no personal data',
    'the fix of a table without personal data: declare it in the spec, or ignore'
);

-- 7-8: no value of the table in any finding of lint 0022, nor any part of a sampled value.
select is_empty(
    $$
    select f.object
    from tenancy.lint_0022_personal_data_not_classified as f
    cross join public.pii_people as p
    where
        strpos(f.object || f.detail || f.remediation, p.contact) > 0
        or strpos(f.object || f.detail || f.remediation, p.email) > 0
        or strpos(f.object || f.detail || f.remediation, p.mobile_phone) > 0
        or strpos(f.object || f.detail || f.remediation, host(p.last_login_ip)) > 0
        or strpos(f.object || f.detail || f.remediation, p.name) > 0
        or strpos(f.object || f.detail || f.remediation, md5(p.id::text)) > 0
    $$,
    'no finding holds a value of the table'
);
select is_empty(
    $$
    select f.object from tenancy.lint_0022_personal_data_not_classified as f
    where f.object || f.detail || f.remediation ~ '(@|example\.|piicontact|10\.1\.2\.|\+49)'
    $$,
    'no finding holds any part of a sampled email address, phone number or IP address'
);

-- 9-10: names, word by word. Reported: e-mail (quoted), camelCase phoneNumber, first and last
-- names, street, postcode, zip, birth dates (date and text), remote_addr, ssn, passport, iban,
-- card number, a billing address, emails (text[]). Not: city (coarse), ip_allowlist (cidr[]: not
-- an address of a person), a mobile_app name, zip_file, server_address, email_template, a
-- phone_count (integer), birth_year (integer), a tenant-less "name".
create table public.pii_names (
    tenant_id uuid not null,
    id integer not null,
    "e-mail" varchar(200),
    "phoneNumber" text,
    first_name text,
    "lastName" text,
    street text,
    postcode text,
    zip text,
    city text,
    birth_date date,
    dob text,
    remote_addr text,
    ssn text,
    passport_no text,
    iban text,
    card_number text,
    billing_address text,
    emails text[],
    ip_allowlist cidr[],
    mobile_app text,
    zip_file text,
    server_address text,
    email_template text,
    phone_count integer,
    birth_year integer,
    name text,
    constraint pii_names_pkey primary key (tenant_id, id)
);
select pg_temp.secure('public.pii_names');
select is(
    array(
        select * from pg_temp.found() as o
        where o ~ '^public\.pii_names\.'
    ),
    array[
        'public.pii_names."e-mail"', 'public.pii_names."lastName"', 'public.pii_names."phoneNumber"',
        'public.pii_names.billing_address', 'public.pii_names.birth_date', 'public.pii_names.card_number',
        'public.pii_names.dob', 'public.pii_names.emails', 'public.pii_names.first_name', 'public.pii_names.iban',
        'public.pii_names.passport_no', 'public.pii_names.postcode', 'public.pii_names.remote_addr',
        'public.pii_names.ssn', 'public.pii_names.street', 'public.pii_names.zip'
    ],
    'by name: the personal names reported, the look-alikes (email_template, ip_allowlist, zip_file, ...) not'
);
select is(
    array(
        select substring(f.detail from 'holds (.*) \(by its name\)')
        from tenancy.lint_0022_personal_data_not_classified as f
        where f.object in ('public.pii_names.iban', 'public.pii_names.ssn', 'public.pii_names.dob', 'public.pii_names.street')
        order by f.object
    ),
    array['birth dates', 'bank account numbers', 'identity document or tax numbers', 'postal addresses'],
    'each name says what it looks like'
);
-- 11: a bare name is a person's in a table of people.
alter table public.pii_names rename to customers;
select is(
    array(
        select f.object from tenancy.lint_0022_personal_data_not_classified as f
        where f.object = 'public.customers.name'
    ),
    array['public.customers.name'],
    'name alone is reported in a table named for people (customers)'
);
alter table public.customers rename to pii_names;

-- 12-13: contents, one kind per column. Phone numbers (international or in groups) and IP
-- addresses (v4 and v6) are found; dates, amounts, codes and times that look a little like them
-- are not; a column with fewer than 5 values is not judged.
create table public.pii_contents (
    tenant_id uuid not null,
    id integer not null,
    reach text,
    origin text,
    code text,
    stamp text,
    sparse text,
    constraint pii_contents_pkey primary key (tenant_id, id)
);
select pg_temp.secure('public.pii_contents');
insert into public.pii_contents
select
    'aaaaaaaa-0000-4000-8000-000000000003' as tenant_id,
    g as id,
    (array['+49 30 1234567', '(555) 123-4567', '555-123-4567', '+1 (555) 987-6543', '+442079460958', '030 1234 5678'])[g % 6 + 1] as reach,
    (array['10.0.0.1', '2001:db8::1', 'fe80::1%eth0', '::ffff:10.1.2.3', '2001:0db8:0000:0000:0000:ff00:0042:8329', '::1'])[g % 6 + 1] as origin,
    (array['2024-01-15', '12345678', '1234.5678', 'SKU-123-456', '1.2.3', '42'])[g % 6 + 1] as code,
    (array['10:30:00', '00:1a:2b:3c:4d:5e', 'deadbeef', '12:34', 'a:b:c', '23:59:59'])[g % 6 + 1] as stamp,
    case when g <= 4 then 'someone' || g || '@example.com' end as sparse
from generate_series(1, 18) as g;
select is(
    array(
        select * from pg_temp.found() as o
        where o ~ '^public\.pii_contents\.'
    ),
    array['public.pii_contents.origin', 'public.pii_contents.reach'],
    'by contents: phone numbers and IP addresses; not dates, codes, times or a column of 4 values'
);
select is(
    array(
        select substring(f.detail from 'holds (.*) \(by its contents')
        from tenancy.lint_0022_personal_data_not_classified as f
        where f.object ~ '^public\.pii_contents\.'
        order by f.object
    ),
    array['IP addresses', 'phone numbers'],
    'each sampled column says what it looks like'
);
delete from public.pii_contents;

-- 14-17: classified in tenancy.personal_data (as a generated file declares it), a column is no
-- longer reported: pii, and the subject column.
create function public.pii_export_people(text[]) returns jsonb language sql as 'select null::jsonb';
create function public.pii_erase_people(text[]) returns jsonb language sql as 'select null::jsonb';
select tenancy.declare_personal_data(
    p_table => 'public.pii_people',
    p_subject_column => 'id',
    p_references => null,
    p_pii => '{mobile_phone}',
    p_erase => 'delete',
    p_depth => 0,
    p_subject_direct => true,
    p_export_function => 'public.pii_export_people(text[])',
    p_erase_function => 'public.pii_erase_people(text[])'
);
select is(
    array(
        select * from pg_temp.found() as o
        where o ~ '^public\.pii_people\.'
    ),
    array['public.pii_people.contact', 'public.pii_people.email', 'public.pii_people.last_login_ip', 'public.pii_people.name'],
    'mobile_phone in pii: no longer reported; the rows are data subjects now, so name alone is a person''s'
);
select is(
    (
        select f.remediation from tenancy.lint_0022_personal_data_not_classified as f
        where f.object = 'public.pii_people.email'
    ),
    'add "email" to pii of [tables."public.pii_people"] in the spec (tenancy.toml), then pgtenancy generate and '
    'apply its file; or ignore this suggestion if it holds no personal data',
    'the fix of a table with personal data: add the column to its pii, or ignore'
);
select tenancy.declare_personal_data(
    p_table => 'public.pii_people',
    p_subject_column => 'email',
    p_references => null,
    p_pii => '{mobile_phone,last_login_ip,contact,name}',
    p_erase => 'delete',
    p_depth => 0,
    p_subject_direct => true,
    p_export_function => 'public.pii_export_people(text[])',
    p_erase_function => 'public.pii_erase_people(text[])'
);
select is_empty(
    $$select * from pg_temp.found() as o where o ~ '^public\.pii_people\.'$$,
    'every personal column classified (email as the subject column): nothing reported'
);
select is(
    (
        select count(*)::int from tenancy.lint_personal_data() as f
        where f.object ~ '^public\.pii_people\.'
    ),
    0,
    'the function without a spec is the view'
);

-- 18-21: with a spec, the spec decides for the tables it lists; the registry for the others.
select is(
    array(
        select f.object from
            tenancy.lint_personal_data(
                '{"display": "app/tenancy.toml", "tables": [{"schema": "public", "name": "pii_people", "pii": ["email"], "subject": "id"}]}'
            ) as f
        where f.object ~ '^public\.pii_people\.'
        order by f.object
    ),
    array[
        'public.pii_people.contact', 'public.pii_people.last_login_ip', 'public.pii_people.mobile_phone',
        'public.pii_people.name'
    ],
    'spec: what the registry classifies but the spec does not is reported'
);
select matches(
    (
        select f.detail || ' / ' || f.remediation from
            tenancy.lint_personal_data(
                '{"display": "app/tenancy.toml", "tables": [{"schema": "public", "name": "pii_people", "pii": ["email"], "subject": "id"}]}'
            ) as f
        where f.object = 'public.pii_people.contact'
    ),
    'but app/tenancy\.toml does not classify it .* / add "contact" to pii of \[tables\."public\.pii_people"\] in app/tenancy\.toml,',
    'spec: the finding names the spec as the source and in the fix'
);
select is_empty(
    $$
    select f.object from tenancy.lint_personal_data(
        '{"display": "app/tenancy.toml", "tables": [{"schema": "public", "name": "pii_people",
          "pii": ["mobile_phone", "last_login_ip", "contact", "name"], "subject": "email"}]}'
    ) as f
    where f.object ~ '^public\.pii_people\.'
    $$,
    'spec: every personal column in its pii or subject: nothing reported'
);
select is(
    array(
        select f.object from
            tenancy.lint_personal_data(
                '{"display": "app/tenancy.toml", "tables": [{"schema": "public", "name": "pii_projects"}]}'
            ) as f
        where f.object ~ '^public\.pii_people\.'
        order by f.object
    ),
    array[]::text[],
    'spec: a table it does not list is judged by the registry (pii_people: all classified there)'
);

-- 22-25: as tenancy_auditor without a tenant context, row level security shows no row: names
-- are still checked, contents are not (contact is not reported, and not because it was read).
select tenancy.forget_personal_data('public.pii_people');
grant usage on schema public to tenancy_auditor;
grant select on public.pii_people to tenancy_auditor;
set local role tenancy_auditor;
select is(
    (select count(*)::int from public.pii_people),
    0,
    'tenancy_auditor without a tenant context sees no row of pii_people'
);
select is(
    array(
        select f.object from tenancy.lint_0022_personal_data_not_classified as f
        where f.object ~ '^public\.pii_people\.'
        order by f.object
    ),
    array['public.pii_people.email', 'public.pii_people.last_login_ip', 'public.pii_people.mobile_phone'],
    'tenancy_auditor: the names found, the contents of rows it cannot see not judged'
);
reset role;
select is(
    array(
        select * from pg_temp.found() as o
        where o ~ '^public\.pii_people\.'
    ),
    array['public.pii_people.contact', 'public.pii_people.email', 'public.pii_people.last_login_ip', 'public.pii_people.mobile_phone'],
    'the superuser sees every tenant''s rows: contact by its contents too'
);
set local role tenancy_app;
select throws_ok(
    'select * from tenancy.lint_personal_data()',
    '42501',
    'permission denied for function lint_personal_data',
    'tenancy_app may not run the lint (it reads every column of every tenant table it sees)'
);
reset role;

-- 26-28: a large table is sampled, not read: at most 100 rows from a few of its pages.
create table public.pii_large (
    tenant_id uuid not null,
    id integer not null,
    reference text not null,
    constraint pii_large_pkey primary key (tenant_id, id)
) with (fillfactor = 10);
select pg_temp.secure('public.pii_large');
insert into public.pii_large
select
    'aaaaaaaa-0000-4000-8000-000000000004' as tenant_id,
    g as id,
    'buyer' || g || '@example.com' as reference
from generate_series(1, 10000) as g;
select cmp_ok(
    pg_catalog.pg_relation_size('public.pii_large') / current_setting('block_size')::bigint,
    '>',
    500::bigint,
    'pii_large has more than 500 pages'
);
select pg_catalog.pg_stat_get_xact_blocks_fetched('public.pii_large'::regclass) as before_lint \gset
select is(
    array(
        select * from pg_temp.found() as o
        where o ~ '^public\.pii_large\.'
    ),
    array['public.pii_large.reference'],
    'pii_large.reference: email addresses found in the sample'
);
select ok(
    pg_catalog.pg_stat_get_xact_blocks_fetched('public.pii_large'::regclass) - :before_lint between 1 and 64,
    'the lint read pii_large, at most 64 of its pages'
);

-- 29-30: a partitioned tenant table is judged once, as its parent; pgtenancy's own tables never.
create table public.pii_events (
    tenant_id uuid not null,
    id integer not null,
    sender text,
    constraint pii_events_pkey primary key (tenant_id, id)
) partition by hash (tenant_id);
create table public.pii_events_0 partition of public.pii_events for values with (modulus 2, remainder 0);
create table public.pii_events_1 partition of public.pii_events for values with (modulus 2, remainder 1);
select pg_temp.secure('public.pii_events');
select pg_temp.secure('public.pii_events_0');
select pg_temp.secure('public.pii_events_1');
insert into public.pii_events
select
    gen_random_uuid() as tenant_id,
    g as id,
    'sender' || g || '@example.com' as sender
from generate_series(1, 20) as g;
select is(
    array(
        select * from pg_temp.found() as o
        where o ~ '^public\.pii_events'
    ),
    array['public.pii_events.sender'],
    'a partitioned table: its column reported once, on the parent'
);
select is_empty(
    $$select f.object from tenancy.lint_0022_personal_data_not_classified as f where f.object ~ '^tenancy\.'$$,
    'pgtenancy''s own tenant tables (schema tenancy) are not judged'
);

select * from finish();
rollback;
