-- tenancy.citus_distribution_plan: the ordered steps that distribute this database on Citus (sql/citus/distribute.sql runs them).

-- One row per step, in the order sql/citus/distribute.sql executes the statements:
--   login        object owners that cannot log in get LOGIN (Citus connects to the workers as the
--                owner of a table to create its shards);
--   reference    pgtenancy's platform tables (schema tenancy, not tenant tables): every worker
--                holds a copy (create_reference_table);
--   distribute   every tenant table (tenancy.lint_tenant_tables, roots of partition trees), and
--                every platform table whose foreign key leads with a tenant table's tenant
--                column, by that column (create_distributed_table), co-located with the first
--                table of the same column type;
--   coordinator  stays a plain table of the coordinator, with the reason (a partitioned platform
--                table, which cannot be a reference table; a policy with a sub-select);
--   problem      refuses the plan: a tenant table whose policies Citus would refuse (a sub-select:
--                apply the Citus flavour first), an inheritance child;
--   role         the application roles (tenancy_app, _service, _admin, _auditor, and every role
--                that can log in and is a member of one) get citus.propagate_set_commands =
--                'local', so the SET LOCAL of the context reaches the workers;
--   context      tenancy.configure_context_mac(true): contexts are signed from then on.
-- Parents before children: within reference and within distribute, a table comes after every
-- table its foreign keys refer to (its level is the longest chain of foreign keys to the tables of
-- the plan; a foreign key to a table not yet distributed would turn it into a Citus local table).
create or replace function tenancy.citus_distribution_plan()
returns table (
    step integer,
    action text,
    relation regclass,
    distribution_column name,
    colocate_with regclass,
    statement text,
    reason text
)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    with recursive tenant_tables as materialized (
        select tt.relid, tt.tenant_column
        from tenancy.lint_tenant_tables as tt
        inner join pg_class as c on c.oid = tt.relid
        where not c.relispartition and tt.tenant_column is not null
    ),

    -- Tenant tables that are inheritance children of another (Citus distributes no inheritance).
    children as (
        select tt.relid from tenant_tables as tt
        where exists (select from pg_inherits as i where i.inhrelid = tt.relid)
    ),

    roots as (
        select tt.relid, tt.tenant_column from tenant_tables as tt
        where tt.relid not in (select ch.relid from children as ch)
    ),

    platform as (
        select c.oid as relid, c.relkind
        from pg_class as c
        where
            c.relnamespace = 'tenancy'::regnamespace
            and c.relkind in ('r', 'p')
            and not c.relispartition
            and not exists (select from pg_inherits as i where i.inhrelid = c.oid)
            and c.oid not in (select tt.relid from tenant_tables as tt)
    ),

    -- Platform tables whose foreign key to a tenant table includes its tenant column: distributed by
    -- the referencing column, so that the key stays within a shard.
    followers as (
        select distinct on (p.relid)
            p.relid,
            a.attname as tenant_column
        from platform as p
        inner join pg_constraint as k on k.conrelid = p.relid and k.contype = 'f'
        inner join roots as r on r.relid = k.confrelid
        inner join pg_attribute as pa on pa.attrelid = r.relid and pa.attname = r.tenant_column
        inner join lateral unnest(k.confkey, k.conkey) as u (referenced, referencing)
            on u.referenced = pa.attnum
        inner join pg_attribute as a on a.attrelid = p.relid and a.attnum = u.referencing
        where p.relkind = 'r'
        order by p.relid, k.conname
    ),

    sub_select_policies as (
        select distinct p.polrelid as relid
        from pg_policy as p
        where
            pg_catalog.concat_ws(
                ' ', pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
            ) ~* '\(\s*select\M'
    ),

    tables as (
        select r.relid, 'distribute' as action, r.tenant_column, null::text as reason
        from roots as r
        where r.relid not in (select s.relid from sub_select_policies as s)
        union all
        select r.relid, 'problem', r.tenant_column,
            'a policy has a sub-select, which Citus refuses on distributed tables: apply the '
            'table''s policies of the Citus flavour (pgtenancy generate --flavour citus) first'
        from roots as r
        where r.relid in (select s.relid from sub_select_policies as s)
        union all
        select ch.relid, 'problem', null,
            'an inheritance child of a tenant table: Citus distributes no table inheritance '
            '(make it a partition, or a table of its own)'
        from children as ch
        union all
        select f.relid, 'distribute', f.tenant_column, 'its foreign key to a tenant table leads with the tenant column'
        from followers as f
        union all
        select p.relid, 'reference', null, null
        from platform as p
        where
            p.relkind = 'r'
            and p.relid not in (select f.relid from followers as f)
            and p.relid not in (select s.relid from sub_select_policies as s)
        union all
        select p.relid, 'coordinator', null,
            case
                when p.relkind = 'p' then 'partitioned: a reference table cannot be partitioned; pgtenancy''s functions write it on the coordinator'
                else 'a policy has a sub-select, which Citus refuses on reference tables'
            end
        from platform as p
        where
            p.relid not in (select f.relid from followers as f)
            and (p.relkind = 'p' or p.relid in (select s.relid from sub_select_policies as s))
    ),

    edges as (
        select distinct k.conrelid as child, k.confrelid as parent
        from pg_constraint as k
        where
            k.contype = 'f'
            and k.conrelid <> k.confrelid
            and k.conrelid in (select t.relid from tables as t)
            and k.confrelid in (select t.relid from tables as t)
    ),

    chains (relid, level, path) as (
        select t.relid, 0, array[t.relid] from tables as t
        union all
        select e.child, ch.level + 1, ch.path || e.child
        from chains as ch
        inner join edges as e on e.parent = ch.relid
        where e.child <> all(ch.path) and ch.level < 64
    ),

    ordered as (
        select
            t.relid,
            t.action,
            t.tenant_column,
            t.reason,
            a.atttypid as column_type,
            (select max(ch.level) from chains as ch where ch.relid = t.relid) as level,
            case t.action when 'reference' then 1 when 'distribute' then 2 when 'coordinator' then 3 else 0 end
            as phase,
            pg_catalog.format('%I.%I', n.nspname, c.relname) as table_name
        from tables as t
        inner join pg_class as c on c.oid = t.relid
        inner join pg_namespace as n on n.oid = c.relnamespace
        left join pg_attribute as a on a.attrelid = t.relid and a.attname = t.tenant_column
    ),

    numbered as (
        select
            o.*,
            pg_catalog.row_number() over (order by o.phase, o.level, o.table_name) as position,
            pg_catalog.first_value(o.relid) over (
                partition by o.action, o.column_type order by o.level, o.table_name
            ) as group_first
        from ordered as o
    ),

    owners as (
        select distinct r.oid as roleid, r.rolname
        from numbered as nb
        inner join pg_class as c on c.oid = nb.relid
        inner join pg_roles as r on r.oid = c.relowner
        where nb.action in ('reference', 'distribute') and not r.rolcanlogin
    ),

    app_roles as (
        select r.rolname
        from pg_roles as r
        where
            r.rolname in ('tenancy_app', 'tenancy_service', 'tenancy_admin', 'tenancy_auditor')
            or (
                r.rolcanlogin
                and not r.rolsuper
                and exists (
                    select from pg_roles as g
                    where
                        g.rolname in ('tenancy_app', 'tenancy_service', 'tenancy_admin', 'tenancy_auditor')
                        and pg_catalog.pg_has_role(r.oid, g.oid, 'member')
                )
            )
    ),

    steps as (
        select
            0 as phase, 0::bigint as position, 'login' as action, null::regclass as relation,
            null::name as distribution_column, null::regclass as colocate_with,
            pg_catalog.format('alter role %I login;', o.rolname) as statement,
            pg_catalog.format(
                'owns tables of the plan: Citus connects to the workers as a table''s owner to create its shards '
                '(no password is set: allow it in pg_hba.conf for the coordinator''s address only)'
            ) as reason,
            o.rolname::text as sort_name
        from owners as o
        union all
        select
            1, nb.position, nb.action, nb.relid::regclass, nb.tenant_column,
            case when nb.action = 'distribute' and nb.group_first <> nb.relid then nb.group_first::regclass end,
            case nb.action
                when 'reference' then pg_catalog.format('select create_reference_table(%L);', nb.table_name)
                when 'distribute' then pg_catalog.format(
                    'select create_distributed_table(%L, %L, colocate_with => %L);',
                    nb.table_name, nb.tenant_column,
                    case when nb.group_first = nb.relid then 'none' else nb.group_first::regclass::text end
                )
            end,
            nb.reason,
            nb.table_name
        from numbered as nb
        union all
        select
            2, 0, 'role', null, null, null,
            pg_catalog.format('alter role %I set citus.propagate_set_commands = ''local'';', ar.rolname),
            'the context''s SET LOCAL reaches the workers (Citus forwards SET LOCAL only with this setting)',
            ar.rolname
        from app_roles as ar
        union all
        select
            3, 0, 'context', null, null, null,
            'select tenancy.configure_context_mac(true);',
            'contexts are signed into tenancy.context_mac from now on (the Citus flavour''s policies check it)',
            ''
    )

    select
        pg_catalog.row_number() over (
            order by s.phase, case s.action when 'problem' then 0 else 1 end, s.position, s.sort_name
        )::integer,
        s.action, s.relation, s.distribution_column, s.colocate_with, s.statement, s.reason
    from steps as s
    order by 1
$$;

comment on function tenancy.citus_distribution_plan() is
'The ordered steps distributing this database on Citus (sql/citus/distribute.sql): owners '
'allowed to log in, platform tables as reference tables, tenant tables distributed by their '
'tenant column in co-location groups by column type, parents before children, tables kept on '
'the coordinator and problems with their reasons, citus.propagate_set_commands for the '
'application roles, the signed context switched on. Runs anywhere: it reads the catalog only.';

revoke all on function tenancy.citus_distribution_plan() from public;
grant execute on function tenancy.citus_distribution_plan() to tenancy_admin;
