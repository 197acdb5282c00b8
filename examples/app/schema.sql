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
