-- pgtenancy lint 0010 (ERROR): TRUNCATE, REFERENCES or TRIGGER on a tenant table (or one of its
-- partitions or inheritance children) granted to anyone but its owner. TRUNCATE ignores row
-- level security and empties every tenant; REFERENCES lets a foreign key probe other tenants'
-- keys; TRIGGER runs the grantee's code on every tenant's rows. Column grants of REFERENCES too.

create or replace view tenancy.lint_0010_tenant_table_risky_grants as
with recursive secured (relid) as (
    select tt.relid from tenancy.lint_tenant_tables as tt
    union
    select i.inhrelid
    from secured as s
    inner join pg_catalog.pg_inherits as i on i.inhparent operator (pg_catalog.=) s.relid
),

grants as (
    select
        c.oid,
        a.grantee,
        a.privilege_type,
        null::pg_catalog.name as column_name
    from secured as s
    inner join pg_catalog.pg_class as c on c.oid operator (pg_catalog.=) s.relid
    cross join lateral pg_catalog.aclexplode(c.relacl) as a
    where
        a.privilege_type operator (pg_catalog.=) any(array['TRUNCATE', 'REFERENCES', 'TRIGGER'])
        and not a.grantee operator (pg_catalog.=) c.relowner
    union all
    select
        c.oid,
        a.grantee,
        a.privilege_type,
        att.attname
    from secured as s
    inner join pg_catalog.pg_class as c on c.oid operator (pg_catalog.=) s.relid
    inner join pg_catalog.pg_attribute as att on att.attrelid operator (pg_catalog.=) c.oid
    cross join lateral pg_catalog.aclexplode(att.attacl) as a
    where
        att.attnum operator (pg_catalog.>) 0
        and not att.attisdropped
        and a.privilege_type operator (pg_catalog.=) 'REFERENCES'
        and not a.grantee operator (pg_catalog.=) c.relowner
),

shown as (
    select
        g.oid,
        g.privilege_type,
        case
            when g.grantee operator (pg_catalog.=) 0 then 'public'
            else g.grantee::pg_catalog.regrole::pg_catalog.text
        end as grantee,
        case
            when g.column_name is null then ''
            else pg_catalog.format(' (%I)', g.column_name)
        end as column_list
    from grants as g
)

select
    '0010'::pg_catalog.text as code,
    'tenant_table_risky_grants'::pg_catalog.text as name,
    'ERROR'::pg_catalog.text as level,
    g.oid::pg_catalog.regclass::pg_catalog.text as object,
    pg_catalog.format(
        '%s holds %s%s on tenant table %s: %s',
        g.grantee, g.privilege_type,
        g.column_list,
        g.oid::pg_catalog.regclass,
        case
            when g.privilege_type operator (pg_catalog.=) 'TRUNCATE'
                then 'TRUNCATE ignores row level security and empties every tenant'
            when g.privilege_type operator (pg_catalog.=) 'REFERENCES'
                then 'a foreign key to it tells which keys exist in other tenants'
            else 'a trigger it creates sees, and may change, every row any tenant writes'
        end
    ) as detail,
    pg_catalog.format(
        'revoke %s%s on table %s from %s;',
        g.privilege_type, g.column_list,
        g.oid::pg_catalog.regclass, g.grantee
    ) as remediation
from shown as g;

comment on view tenancy.lint_0010_tenant_table_risky_grants is
'pgtenancy doctor, lint 0010 (ERROR): TRUNCATE, REFERENCES or TRIGGER on tenant tables (and their '
'partitions and children) held by roles other than the owner. See '
'docs/lints/0010_tenant_table_risky_grants.md.';
revoke all on tenancy.lint_0010_tenant_table_risky_grants from public;
grant select on tenancy.lint_0010_tenant_table_risky_grants to tenancy_admin, tenancy_auditor;
