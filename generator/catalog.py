"""Read the catalog snapshot of a spec's tables from PostgreSQL (read-only).

This is the only module of the generator that talks to the database. :func:`read_snapshot`
reads the member roles (labels of the enum ``tenancy.member_role``, in their order) and, for
every relation the spec names, its kind and, for tables, its columns, indexes and key
constraints, the serial sequences whose ``USAGE`` the application role needs to insert rows, and
every partition and inheritance child (recursively), which get the same row level security as
the table. When pgtenancy is installed it also runs the key-layout check the policy file runs
when applied (``tenancy.assert_tenant_keys``, in a savepoint: it raises or changes nothing), so
layout problems are reported before the file is.
"""

from __future__ import annotations

import psycopg

from .snapshot import (
    TENANT_TYPES,
    Column,
    Constraint,
    Descendant,
    ForeignKey,
    Index,
    Relation,
    Sequence,
    Snapshot,
    TableInfo,
    qualified,
)
from .spec import Spec, TableEntry

__all__ = [
    "Descendant",
    "Sequence",
    "TableInfo",
    "qualified",
    "read_catalog",
    "read_snapshot",
]

_TABLE_KINDS = {"r": "table", "p": "partitioned table"}
_KIND_NAMES = {
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
    "i": "index",
    "I": "partitioned index",
    "c": "composite type",
    "t": "TOAST table",
}

_MEMBER_ROLES = """
select e.enumlabel::text
from pg_catalog.pg_enum as e
where e.enumtypid = pg_catalog.to_regtype('tenancy.member_role')
order by e.enumsortorder
"""

_COLUMNS = """
select a.attname::text,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       a.attnotnull,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       case a.attidentity when 'a' then 'always' when 'd' then 'by default' end,
       a.attgenerated = 's',
       case when ty.typtype = 'd' then (
           with recursive base (oid, typtype, typbasetype) as (
               select t.oid, t.typtype, t.typbasetype from pg_catalog.pg_type as t
               where t.oid = ty.typbasetype
               union all
               select t.oid, t.typtype, t.typbasetype from pg_catalog.pg_type as t
               join base as b on t.oid = b.typbasetype and b.typtype = 'd'
           )
           select pg_catalog.format_type(b.oid, null) from base as b where b.typtype <> 'd'
       ) end
from pg_catalog.pg_attribute as a
join pg_catalog.pg_type as ty on ty.oid = a.atttypid
left join pg_catalog.pg_attrdef as d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
order by a.attnum
"""

_INDEXES = """
select c.relname::text, pg_catalog.pg_get_indexdef(i.indexrelid)
from pg_catalog.pg_index as i
join pg_catalog.pg_class as c on c.oid = i.indexrelid
where i.indrelid = %s
order by c.relname
"""

_CONSTRAINTS = """
select c.conname::text,
       case c.contype
           when 'p' then 'primary key' when 'u' then 'unique'
           when 'x' then 'exclusion' else 'foreign key'
       end,
       pg_catalog.pg_get_constraintdef(c.oid)
from pg_catalog.pg_constraint as c
where c.conrelid = %s and c.contype in ('p', 'u', 'x', 'f')
order by c.conname
"""

# The primary key's columns in key order.
_PRIMARY_KEY = """
select a.attname::text
from pg_catalog.pg_constraint as c
cross join lateral pg_catalog.unnest(c.conkey) with ordinality as k (attnum, position)
join pg_catalog.pg_attribute as a on a.attrelid = c.conrelid and a.attnum = k.attnum
where c.conrelid = %s and c.contype = 'p'
order by k.position
"""

# Foreign keys with their columns and the referenced columns, each in key order.
_FOREIGN_KEYS = """
select c.conname::text,
       array(select a.attname::text
             from pg_catalog.unnest(c.conkey) with ordinality as k (attnum, position)
             join pg_catalog.pg_attribute as a on a.attrelid = c.conrelid and a.attnum = k.attnum
             order by k.position),
       rn.nspname::text, r.relname::text,
       array(select a.attname::text
             from pg_catalog.unnest(c.confkey) with ordinality as k (attnum, position)
             join pg_catalog.pg_attribute as a on a.attrelid = c.confrelid and a.attnum = k.attnum
             order by k.position)
from pg_catalog.pg_constraint as c
join pg_catalog.pg_class as r on r.oid = c.confrelid
join pg_catalog.pg_namespace as rn on rn.oid = r.relnamespace
where c.conrelid = %s and c.contype = 'f'
order by c.conname
"""

_FIND_TABLE = """
select c.oid, c.relkind::text
from pg_catalog.pg_class as c
join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
where n.nspname = %s and c.relname = %s
"""

# Serial columns own their sequence with an 'a' (auto) dependency; identity columns use 'i'
# and need no privilege on the sequence.
_SERIAL_SEQUENCES = """
select sn.nspname, s.relname
from pg_catalog.pg_depend as d
join pg_catalog.pg_class as s on s.oid = d.objid and s.relkind = 'S'
join pg_catalog.pg_namespace as sn on sn.oid = s.relnamespace
where d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
  and d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
  and d.refobjid = %s
  and d.refobjsubid > 0
  and d.deptype = 'a'
order by sn.nspname, s.relname
"""


# Partitions and inheritance children at any depth (pg_inherits also links partitioned indexes,
# but starting from a table only tables are reached). Foreign tables cannot have row level
# security and are left out.
_DESCENDANTS = """
with recursive tree (relid, parent) as (
    select i.inhrelid, i.inhparent from pg_catalog.pg_inherits as i where i.inhparent = %s
    union
    select i.inhrelid, i.inhparent
    from pg_catalog.pg_inherits as i
    join tree as t on i.inhparent = t.relid
)
select distinct on (n.nspname, c.relname)
    n.nspname, c.relname, c.relispartition, pn.nspname, p.relname
from tree as t
join pg_catalog.pg_class as c on c.oid = t.relid
join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
join pg_catalog.pg_class as p on p.oid = t.parent
join pg_catalog.pg_namespace as pn on pn.oid = p.relnamespace
where c.relkind in ('r', 'p')
order by n.nspname, c.relname, pn.nspname, p.relname
"""

# The key-layout check of this release takes the tenant column; the one of earlier releases
# checks tenant_id only.
_HAS_KEY_CHECK = """
select coalesce(pg_catalog.has_function_privilege(p.oid, 'execute'), false)
from (values (1, 'tenancy.assert_tenant_keys(regclass, text[], name)'),
             (2, 'tenancy.assert_tenant_keys(regclass, text[])')) as s (n, signature)
cross join lateral (select pg_catalog.to_regprocedure(s.signature) as oid) as p
order by s.n
"""


def _layout_problem(
    conn: psycopg.Connection[tuple[object, ...]],
    entry: TableEntry,
    covered: list[str],
    with_column: bool,
) -> str | None:
    """The TN007 message of ``tenancy.assert_tenant_keys``, or None when the layout is fine."""
    try:
        with conn.transaction():
            if with_column:
                conn.execute(
                    "select tenancy.assert_tenant_keys(%s::regclass, %s::text[], %s::name)",
                    (qualified(entry.schema, entry.name), covered, entry.tenant_column),
                )
            else:
                conn.execute(
                    "select tenancy.assert_tenant_keys(%s::regclass, %s::text[])",
                    (qualified(entry.schema, entry.name), covered),
                )
    except psycopg.Error as exc:
        if exc.sqlstate != "TN007":
            raise
        # The message, detail and hint; not the context, which names a line of the function.
        diag = exc.diag
        parts = [(diag.message_primary or str(exc)).strip()]
        parts += [f"DETAIL:  {diag.message_detail}"] if diag.message_detail else []
        parts += [f"HINT:  {diag.message_hint}"] if diag.message_hint else []
        return "\n".join(parts)
    return None


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _relation(
    conn: psycopg.Connection[tuple[object, ...]], entry: TableEntry, key_check: int
) -> Relation | None:
    row = conn.execute(_FIND_TABLE, (entry.schema, entry.name)).fetchone()
    if row is None:
        return None
    oid, kind = row
    if kind not in _TABLE_KINDS:
        what = _KIND_NAMES.get(str(kind), f"relation of kind {kind}")
        return Relation(entry.schema, entry.name, what)
    columns = tuple(
        Column(str(n), str(t), bool(nn), _opt(d), _opt(i), bool(g), _opt(b))
        for n, t, nn, d, i, g, b in conn.execute(_COLUMNS, (oid,))
    )
    indexes = tuple(Index(str(n), str(d)) for n, d in conn.execute(_INDEXES, (oid,)))
    constraints = tuple(
        Constraint(str(n), str(k), str(d)) for n, k, d in conn.execute(_CONSTRAINTS, (oid,))
    )
    sequences = tuple(Sequence(str(s), str(n)) for s, n in conn.execute(_SERIAL_SEQUENCES, (oid,)))
    primary_key = tuple(str(n) for (n,) in conn.execute(_PRIMARY_KEY, (oid,)))
    # Read only where the spec declares personal data, so other snapshots stay as they were.
    foreign_keys = (
        tuple(
            ForeignKey(str(n), tuple(map(str, cols)), str(rs), str(rn), tuple(map(str, rcols)))  # type: ignore[call-overload]
            for n, cols, rs, rn, rcols in conn.execute(_FOREIGN_KEYS, (oid,))
        )
        if entry.personal is not None
        else ()
    )
    descendants = tuple(
        Descendant(str(s), str(n), bool(part), str(ps), str(pn))
        for s, n, part, ps, pn in conn.execute(_DESCENDANTS, (oid,))
    )
    problem = None
    column = next((c for c in columns if c.name == entry.tenant_column), None)
    checkable = column is not None and (column.base_type or column.type) in TENANT_TYPES
    # The check of earlier releases knows tenant_id only.
    if checkable and (key_check == 1 or (key_check == 2 and entry.tenant_column == "tenant_id")):
        covered = [qualified(d.schema, d.name) for d in descendants]
        problem = _layout_problem(conn, entry, covered, key_check == 1)
    return Relation(
        schema=entry.schema,
        name=entry.name,
        kind=_TABLE_KINDS[str(kind)],
        columns=columns,
        indexes=indexes,
        constraints=constraints,
        serial_sequences=sequences,
        descendants=descendants,
        layout_problem=problem,
        primary_key=primary_key,
        foreign_keys=foreign_keys,
    )


def read_snapshot(conn: psycopg.Connection[tuple[object, ...]], spec: Spec) -> Snapshot:
    """The snapshot of the spec's tables in the catalog reachable through ``conn``.

    Relations the spec names that do not exist are left out (validation reports them). Names
    in definitions are schema-qualified whatever the session's search_path: it is set to
    ``pg_catalog`` for the rest of the transaction.
    """
    conn.execute("select pg_catalog.set_config('search_path', 'pg_catalog', true)")
    roles = tuple(str(r) for (r,) in conn.execute(_MEMBER_ROLES))
    # 1: the check taking the tenant column; 2: the one of earlier releases; 0: none usable.
    usable = [bool(r[0]) for r in conn.execute(_HAS_KEY_CHECK)]
    key_check = next((n for n, ok in enumerate(usable, start=1) if ok), 0)
    relations = [r for e in spec.tables if (r := _relation(conn, e, key_check)) is not None]
    relations.sort(key=lambda r: (r.schema, r.name))
    return Snapshot(member_roles=roles, relations=tuple(relations))


def read_catalog(database_url: str, spec: Spec) -> Snapshot:
    """Open a read-only transaction on ``database_url`` and read the snapshot of the spec."""
    with psycopg.connect(database_url) as conn:
        conn.read_only = True
        with conn.transaction():
            return read_snapshot(conn, spec)
