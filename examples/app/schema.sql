-- Example application schema: projects and their documents, both tenant tables.

create schema if not exists app;
comment on schema app is 'Example application using pgtenancy.';
grant usage on schema app to tenancy_app;

create table if not exists app.projects (
    tenant_id uuid not null,
    id bigint generated always as identity,
    name text not null,
    created_at timestamptz not null default now(),
    constraint projects_pkey primary key (tenant_id, id),
    constraint projects_tenant_id_name_key unique (tenant_id, name)
);
comment on table app.projects is 'Example tenant table: a tenant''s projects.';

create table if not exists app.documents (
    tenant_id uuid not null,
    id bigint generated always as identity,
    project_id bigint not null,
    title text not null,
    body text not null default '',
    created_at timestamptz not null default now(),
    constraint documents_pkey primary key (tenant_id, id),
    constraint documents_project_fkey foreign key (tenant_id, project_id)
    references app.projects (tenant_id, id) on delete cascade
);
create index if not exists documents_tenant_id_project_id_idx
on app.documents (tenant_id, project_id);
comment on table app.documents is
'Example tenant table: documents, each in a project of the same tenant (the foreign key '
'includes tenant_id).';

create table if not exists app.customers (
    tenant_id uuid not null,
    id bigint generated always as identity,
    email text not null,
    full_name text,
    phone text,
    created_at timestamptz not null default now(),
    constraint customers_pkey primary key (tenant_id, id),
    constraint customers_tenant_id_email_key unique (tenant_id, email)
);
comment on table app.customers is
'Example tenant table: a tenant''s customers, the data subjects of its personal data.';

create table if not exists app.orders (
    tenant_id uuid not null,
    id bigint generated always as identity,
    customer_id bigint not null,
    shipping_address text,
    total numeric(12, 2) not null default 0,
    created_at timestamptz not null default now(),
    constraint orders_pkey primary key (tenant_id, id),
    constraint orders_customer_fkey foreign key (tenant_id, customer_id)
    references app.customers (tenant_id, id) on delete cascade
);
create index if not exists orders_tenant_id_customer_id_idx
on app.orders (tenant_id, customer_id);
comment on table app.orders is
'Example tenant table: orders, each of a customer of the same tenant; their shipping address is '
'personal data of that customer.';
