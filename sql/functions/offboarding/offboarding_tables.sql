-- tenancy.offboarding_tables: every tenant table, in the order offboarding empties them (children before parents), with how its rows name a tenant.

-- The tenant tables are tenancy.lint_tenant_tables' (every table whose policies call the tenant
-- context: pgtenancy's own and the application's), roots only: a partition or inheritance child
-- is emptied through its root. A table's level is the longest chain of foreign keys from other
-- tenant tables that leads to it (0: no tenant table refers to it), so emptying in level order
-- deletes every referencing row before the row it refers to; a foreign key of a table to itself
-- is no edge (and a cycle of tables is cut where it closes). A table that refers to itself without
-- ON DELETE CASCADE or SET NULL/DEFAULT (whole) is emptied in one statement, which checks those
-- references once, at its end.
-- The tenant column holds the tenant id (uuid) or the tenant key (bigint, integer, text; or a
-- domain over them); predicate compares it with $1 (text) cast to that type, so the column's
-- index is used. A column of another type (a hand-written policy) is compared as text with the
-- key, as tenancy.lint_orphan_rows does.
create or replace function tenancy.offboarding_tables()
returns table (
    relid oid,
    table_name text,
    tenant_column name,
    value_kind text,
    predicate text,
    level integer,
    whole boolean
)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    with recursive tenant_tables as materialized (
        select tt.relid, tt.tenant_column, tt.tenant_column_type::oid as type_oid
        from tenancy.lint_tenant_tables as tt
    ),

    roots as materialized (
        select tt.relid, tt.tenant_column, tt.type_oid
        from tenant_tables as tt
        inner join pg_class as c on c.oid = tt.relid
        where
            tt.tenant_column is not null
            and not c.relispartition
            and not exists (
                select from pg_inherits as i
                inner join tenant_tables as parent on parent.relid = i.inhparent
                where i.inhrelid = tt.relid
            )
    ),

    edges as (
        select distinct k.conrelid as child, k.confrelid as parent
        from pg_constraint as k
        where
            k.contype = 'f'
            and k.conrelid <> k.confrelid
            and k.conrelid in (select r.relid from roots as r)
            and k.confrelid in (select r.relid from roots as r)
    ),

    chains (relid, level, path) as (
        select r.relid, 0, array[r.relid] from roots as r
        union all
        select e.parent, ch.level + 1, ch.path || e.parent
        from chains as ch
        inner join edges as e on e.child = ch.relid
        where e.parent <> all(ch.path) and ch.level < 64
    ),

    -- The base type of the tenant column: through domains, to the type they are over.
    bases (relid, type_oid, base_oid) as (
        select r.relid, r.type_oid, r.type_oid from roots as r
        union all
        select b.relid, b.type_oid, t.typbasetype
        from bases as b
        inner join pg_type as t on t.oid = b.base_oid
        where t.typtype = 'd'
    )

    select
        r.relid,
        format('%I.%I', n.nspname, c.relname) as table_name,
        r.tenant_column,
        case
            when b.base_oid = 'uuid'::regtype then 'id'
            when b.base_oid = 'bigint'::regtype then 'int8'
            when b.base_oid = 'integer'::regtype then 'int4'
            else 'key'
        end as value_kind,
        case
            when b.base_oid = 'uuid'::regtype then format('t.%I = $1::pg_catalog.uuid', r.tenant_column)
            when b.base_oid = 'bigint'::regtype then format('t.%I = $1::pg_catalog.int8', r.tenant_column)
            when b.base_oid = 'integer'::regtype then format('t.%I = $1::pg_catalog.int4', r.tenant_column)
            when b.base_oid in ('text'::regtype, 'character varying'::regtype)
                then format('t.%I = $1::pg_catalog.text', r.tenant_column)
            else format('t.%I::pg_catalog.text = $1::pg_catalog.text', r.tenant_column)
        end as predicate,
        (select max(ch.level) from chains as ch where ch.relid = r.relid) as level,
        exists (
            select from pg_constraint as k
            where
                k.contype = 'f'
                and k.conrelid = r.relid
                and k.confrelid = r.relid
                and k.confdeltype in ('a', 'r')
        ) as whole
    from roots as r
    inner join pg_class as c on c.oid = r.relid
    inner join pg_namespace as n on n.oid = c.relnamespace
    inner join bases as b
        on
            b.relid = r.relid
            and not exists (select from pg_type as t where t.oid = b.base_oid and t.typtype = 'd')
    order by level, table_name
$$;

comment on function tenancy.offboarding_tables() is
'pgtenancy internal: the tenant tables (roots of partition and inheritance trees) in the order '
'tenancy.offboard_tenant empties them: by level, the longest chain of foreign keys from other '
'tenant tables leading to the table (referencing tables first), then by name; with the tenant '
'column, what it holds (id: the tenant id; int8, int4, key: the tenant key), the predicate on '
'alias t comparing it with $1 (text), and whole: the table refers to itself without ON DELETE '
'CASCADE or SET NULL, so it is emptied in one statement.';

revoke all on function tenancy.offboarding_tables() from public;
