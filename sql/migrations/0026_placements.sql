-- pgtenancy placements: where each tenant's rows live, the write fence, and the record of tenant moves.
-- A placement is a PostgreSQL database that holds tenants' rows; every database running pgtenancy
-- lists the placements it knows, and its own (here). tenancy.tenants gains the tenant's placement,
-- an epoch bumped each time the placement changes (routers cache by it) and the write fence: while
-- it is set, contexts of the tenant read but every write is refused (TN021).

create table tenancy.placements (
    name text not null,
    alias text not null,
    region tenancy.region_tag,
    state text not null default 'active',
    here boolean not null default false,
    created_at timestamptz not null default pg_catalog.now(),
    updated_at timestamptz not null default pg_catalog.now(),
    constraint placements_pkey primary key (name),
    constraint placements_name_check check (name operator (pg_catalog.~) '^[a-z][a-z0-9-]{0,61}[a-z0-9]$'),
    constraint placements_alias_check check (alias operator (pg_catalog.~) '^[A-Za-z0-9_.-]{1,100}$'),
    constraint placements_state_check check (
        state operator (pg_catalog.=) any(array['active', 'draining', 'retired'])
    ),
    constraint placements_region_fkey foreign key (region) references tenancy.regions (region)
);
create unique index placements_here_key on tenancy.placements (here) where here;
comment on table tenancy.placements is
'pgtenancy: the databases that hold tenants'' rows (placements), by name: the connection alias a '
'router maps to a connection string, the data-residency region (NULL: not declared) and the '
'state (active; draining: takes no new tenants; retired). Exactly one row is this database '
'(here). Platform table: set with tenancy.configure_placement().';
comment on column tenancy.placements.alias is
'The name a router (pgtenancy.router) maps to a connection string; no secret is stored here.';
comment on column tenancy.placements.region is
'The placement''s data-residency region: when set, only tenants without a region or with this '
'one are placed here (enforced by set_tenant_region, set_tenant_placement and moves).';
comment on column tenancy.placements.here is
'True for the placement that is this database.';

insert into tenancy.placements (name, alias, here) values ('home', 'home', true);

revoke all on tenancy.placements from public;
grant select on tenancy.placements to tenancy_service, tenancy_admin, tenancy_auditor;

alter table tenancy.tenants
add column placement text not null default 'home',
add column placement_epoch bigint not null default 0,
add column fenced_at timestamptz,
add column fence_reason text,
add constraint tenants_placement_fkey foreign key (placement) references tenancy.placements (name),
add constraint tenants_fence_check check ((fenced_at is null) operator (pg_catalog.=) (fence_reason is null));
comment on column tenancy.tenants.placement is
'The placement (tenancy.placements) that holds the tenant''s rows; routers send its requests there.';
comment on column tenancy.tenants.placement_epoch is
'Bumped each time the tenant''s placement changes: a router''s cached entry with a smaller epoch is stale.';
comment on column tenancy.tenants.fenced_at is
'Set while the tenant''s writes are fenced on this database (a move): its contexts read, every '
'write is refused with TN021. NULL: not fenced.';
comment on column tenancy.tenants.fence_reason is
'Why the tenant is fenced, e.g. ''move 3f2a… to dedicated-1''.';
create index tenants_placement_idx on tenancy.tenants (placement);

-- currval() equals currval() of tenancy.context_key when the transaction's context may write,
-- and differs when its tenant's writes are fenced: written by establish_context with the context
-- key (only tenancy_owner may setval), compared by the write trigger tenancy.tg_require_context.
-- Bound to the key rather than a flag, so that a pair of values from two different contexts
-- (an establish_context cancelled between its setvals) is refused, never taken for unfenced.
create sequence tenancy.context_fence
as bigint minvalue -9223372036854775808 maxvalue 9223372036854775807 no cycle;
alter sequence tenancy.context_fence set unlogged; -- noqa: PRS
comment on sequence tenancy.context_fence is
'pgtenancy internal: currval() equals currval(tenancy.context_key) when the context set last in '
'this session may write; anything else (its tenant''s writes are fenced: tenancy.fence_tenant) '
'refuses every write in it (TN021).';
revoke all on tenancy.context_fence from public;
grant select on tenancy.context_fence to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;

create table tenancy.tenant_moves (
    id uuid not null default pg_catalog.gen_random_uuid(),
    tenant_id uuid not null,
    source text not null,
    destination text not null,
    state text not null default 'copying',
    requested_by name not null default session_user,
    started_at timestamptz not null default pg_catalog.clock_timestamp(),
    updated_at timestamptz not null default pg_catalog.clock_timestamp(),
    fenced_at timestamptz,
    flipped_at timestamptz,
    keep_until timestamptz,
    finished_at timestamptz,
    report jsonb not null default '{}',
    constraint tenant_moves_pkey primary key (id),
    constraint tenant_moves_tenant_id_fkey foreign key (tenant_id) references tenancy.tenants (id),
    constraint tenant_moves_state_check check (
        state operator (pg_catalog.=) any(array['copying', 'fenced', 'flipped', 'cleaning', 'done', 'aborted'])
    ),
    constraint tenant_moves_report_check check (
        pg_catalog.jsonb_typeof(report) operator (pg_catalog.=) 'object'  -- noqa: LT01
    )
);
create unique index tenant_moves_open_key on tenancy.tenant_moves (tenant_id)
where state operator (pg_catalog.<>) all(array['done', 'aborted']);
comment on table tenancy.tenant_moves is
'pgtenancy: one row per move of a tenant from this placement to another (pgtenancy tenant '
'move): its state (copying, fenced, flipped, cleaning, done, aborted), when it was fenced and '
'flipped, until when the source rows are kept, and the report (counts, checksums, times). '
'Platform table: written by tenancy.record_move.';

revoke all on tenancy.tenant_moves from public;
grant select on tenancy.tenant_moves to tenancy_admin, tenancy_auditor;

-- A published table of the move: the orchestrator writes a marker after the fence and waits for
-- it on the destination; logical replication applies in commit order, so every write committed
-- before the fence has arrived when the marker has.
create table tenancy.move_markers (
    move_id uuid not null,
    tenant_id uuid not null,
    marker integer not null,
    written_at timestamptz not null default pg_catalog.clock_timestamp(),
    constraint move_markers_pkey primary key (tenant_id, move_id, marker)
);
comment on table tenancy.move_markers is
'pgtenancy internal: markers written on the source of a tenant move after its fence; their '
'arrival on the destination proves every earlier write has been replicated.';
revoke all on tenancy.move_markers from public;
