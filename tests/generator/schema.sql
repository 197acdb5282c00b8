-- Tables the golden cases' catalog snapshots are read from (tests/generator/cases/*/catalog.json).
-- tests/py/test_generator.py applies this file to a migrated test database inside a transaction,
-- reads every case's snapshot and rolls back. Cases about app.* and tenancy.* read the test
-- database's own tables.

create schema gen;
grant usage on schema gen to tenancy_app;

-- A tenant table with an identity key and a serial column (its sequence needs USAGE).
create table gen.good (
    tenant_id uuid not null,
    id bigint generated always as identity,
    label text,
    line serial,
    constraint good_pkey primary key (tenant_id, id)
);

create table gen.other (
    tenant_id uuid not null,
    id bigint generated always as identity,
    constraint other_pkey primary key (tenant_id, id)
);

-- Refused: no tenant_id; tenant_id not a uuid; tenant_id nullable; a view.
create table gen.no_tenant (id bigint primary key);
create table gen.nullable_tenant (
    tenant_id uuid,
    id bigint not null,
    constraint nullable_tenant_pkey primary key (id)
);
create table gen.text_tenant (
    tenant_id text not null,
    id bigint,
    constraint text_tenant_pkey primary key (tenant_id, id)
);
create view gen.good_view as select * from gen.good;

-- Key layouts tenancy.assert_tenant_keys refuses (TN007): a primary key and a unique constraint
-- not led by tenant_id; a plain index, a unique expression index and an exclusion constraint
-- without it.
create table gen.bad (
    tenant_id uuid not null,
    id bigint not null,
    code text not null,
    constraint bad_pkey primary key (id, tenant_id),
    constraint bad_code_key unique (code)
);
create table gen.notes (
    tenant_id uuid not null,
    id bigint generated always as identity,
    title text not null,
    email text not null,
    during tstzrange not null default tstzrange(now(), null),
    constraint notes_pkey primary key (tenant_id, id),
    constraint notes_during_excl exclude using gist (during with &&)
);
create index notes_title_idx on gen.notes (title);
create unique index notes_email_key on gen.notes (lower(email));

-- Range partitions, one of them partitioned by hash of tenant_id; an inheritance child.
create table gen.docs (
    tenant_id uuid not null,
    id bigint not null,
    day date not null,
    title text not null,
    constraint docs_pkey primary key (tenant_id, id, day)
) partition by range (day);
create table gen.docs_2026 partition of gen.docs
for values from ('2026-01-01') to ('2027-01-01') partition by hash (tenant_id);
create table gen.docs_2026_h0 partition of gen.docs_2026
for values with (modulus 2, remainder 0);
create table gen.docs_2026_h1 partition of gen.docs_2026
for values with (modulus 2, remainder 1);
create table gen.docs_2027 partition of gen.docs
for values from ('2027-01-01') to ('2028-01-01');
create table gen.events (
    tenant_id uuid not null,
    id bigint not null,
    what text not null,
    constraint events_pkey primary key (tenant_id, id)
);
create table gen.events_archive (
    archived_at timestamptz not null default now(),
    constraint events_archive_pkey primary key (tenant_id, id)
) inherits (gen.events);

-- Partitions created at run time (partitions = "runtime"), monthly by occurred_at with a default
-- partition; the policy files secure the partitioned tables alone. One keyed by company_id bigint.
create table gen.usage (
    tenant_id uuid not null,
    id bigint not null,
    occurred_at timestamptz not null,
    value numeric not null,
    constraint usage_pkey primary key (tenant_id, id, occurred_at)
) partition by range (occurred_at);
create table gen.usage_default partition of gen.usage default;
create table gen.usage_2026_01 partition of gen.usage
for values from ('2026-01-01 00:00+00') to ('2026-02-01 00:00+00');
create table gen.usage_keyed (
    company_id bigint not null,
    id bigint not null,
    occurred_at timestamptz not null,
    constraint usage_keyed_pkey primary key (company_id, id, occurred_at)
) partition by range (occurred_at);
create table gen.usage_keyed_default partition of gen.usage_keyed default;

-- Identifiers that must be quoted everywhere: a space, double and single quotes, non-ASCII.
-- noqa: disable=RF05
create schema "Gen ""Odd""";
grant usage on schema "Gen ""Odd""" to tenancy_app;
create table "Gen ""Odd"""."We""ird" (
    tenant_id uuid not null,
    "N°" serial,
    "Na'me" text,
    constraint "We""ird pkey" primary key (tenant_id, "N°")
);

-- Tenant columns other than a uuid tenant_id (tenant_column in the spec): the tenant key in a
-- bigint column (with a foreign key and an index it does not lead), an integer and a text one; a
-- uuid under another name; a domain over a domain over bigint. Refused: numeric, a domain over
-- numeric, a nullable key column.
create domain gen.company_ref as bigint check (value > 0);
create domain gen.company_key as gen.company_ref;
create domain gen.amount as numeric;
create table gen.campaigns (
    company_id bigint not null,
    id bigint generated always as identity,
    name text not null,
    constraint campaigns_pkey primary key (company_id, id)
);
create table gen.ads (
    company_id bigint not null,
    id bigint generated always as identity,
    campaign_id bigint not null,
    title text not null,
    constraint ads_pkey primary key (company_id, id),
    constraint ads_campaign_fkey foreign key (campaign_id, company_id)
    references gen.campaigns (id, company_id)
);
create index ads_title_idx on gen.ads (title);
create table gen.shops (
    shop_id integer not null,
    id bigint generated always as identity,
    constraint shops_pkey primary key (shop_id, id)
);
create table gen.org_notes (
    org_id uuid not null,
    id bigint generated always as identity,
    constraint org_notes_pkey primary key (org_id, id)
);
create table gen.domain_keyed (
    company_id gen.company_key not null,
    id bigint generated always as identity,
    constraint domain_keyed_pkey primary key (company_id, id)
);
create table gen.numeric_keyed (
    company_id numeric not null,
    id bigint,
    constraint numeric_keyed_pkey primary key (company_id, id)
);
create table gen.amount_keyed (
    company_id gen.amount not null,
    id bigint,
    constraint amount_keyed_pkey primary key (company_id, id)
);
create table gen.nullable_key (
    company_id bigint,
    id bigint,
    constraint nullable_key_pkey primary key (id)
);

-- Personal data: people are the subjects; their orders follow a foreign key, and order lines
-- follow orders (two references deep); gen.loose names a subject through no foreign key.
create table gen.people (
    tenant_id uuid not null,
    id bigint generated always as identity,
    email text not null,
    full_name text,
    born date not null,
    constraint people_pkey primary key (tenant_id, id)
);
create table gen.people_orders (
    tenant_id uuid not null,
    id bigint generated always as identity,
    person_id bigint not null,
    address character varying(200) not null,
    constraint people_orders_pkey primary key (tenant_id, id),
    constraint people_orders_person_fkey foreign key (tenant_id, person_id)
    references gen.people (tenant_id, id)
);
create table gen.order_lines (
    tenant_id uuid not null,
    order_id bigint not null,
    line integer not null,
    note text,
    constraint order_lines_pkey primary key (tenant_id, order_id, line),
    constraint order_lines_order_fkey foreign key (tenant_id, order_id)
    references gen.people_orders (tenant_id, id)
);
create table gen.loose (
    tenant_id uuid not null,
    id bigint,
    person_id bigint,
    constraint loose_pkey primary key (tenant_id, id)
);
