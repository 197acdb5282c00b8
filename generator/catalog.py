"""Check the spec's tables against the database catalog (read-only).

The generator never writes to the database: it opens a read-only transaction, confirms each
table exists with a ``uuid`` ``tenant_id`` column, and collects the serial sequences whose
``USAGE`` the application role needs to insert rows and every partition and inheritance child
(recursively), which get the same row level security as the table. When pgtenancy is installed
it also runs the key-layout check the policy file runs when applied, so layout problems are
reported before the file is.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from .spec import Spec, SpecError, TableSpec

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


@dataclass(frozen=True)
class Sequence:
    schema: str
    name: str


@dataclass(frozen=True)
class Descendant:
    """A partition or inheritance child of a tenant table (at any depth)."""

    schema: str
    name: str
    #: A partition (row triggers of the parent are cloned onto it), else an inheritance child.
    is_partition: bool
    parent_schema: str
    parent_name: str


@dataclass(frozen=True)
class TableInfo:
    """What the templates need to know about a table beyond the spec."""

    spec: TableSpec
    #: Sequences owned by serial columns (not identity columns), sorted by schema and name.
    serial_sequences: tuple[Sequence, ...]
    #: Every partition and inheritance child, recursively, sorted by schema and name.
    descendants: tuple[Descendant, ...] = ()
    #: The TN007 message the policy file would fail with when applied now, if any.
    layout_problem: str | None = None


_FIND_TABLE = """
select c.oid, c.relkind::text
from pg_catalog.pg_class as c
join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
where n.nspname = %s and c.relname = %s
"""

_TENANT_COLUMN = """
select a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype,
       pg_catalog.format_type(a.atttypid, a.atttypmod)
from pg_catalog.pg_attribute as a
where a.attrelid = %s and a.attname = 'tenant_id' and a.attnum > 0 and not a.attisdropped
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

_HAS_KEY_CHECK = """
select coalesce(
    pg_catalog.has_function_privilege(
        pg_catalog.to_regprocedure('tenancy.assert_tenant_keys(regclass, text[])'), 'execute'
    ),
    false
)
"""


def qualified(schema: str, name: str) -> str:
    """``"schema"."name"``, every part quoted (as the templates write it)."""
    return '"' + schema.replace('"', '""') + '"."' + name.replace('"', '""') + '"'


def _layout_problem(
    conn: psycopg.Connection[tuple[object, ...]], table: TableSpec, covered: list[str]
) -> str | None:
    """The TN007 message of ``tenancy.assert_tenant_keys``, or None when the layout is fine."""
    try:
        with conn.transaction():
            conn.execute(
                "select tenancy.assert_tenant_keys(%s::regclass, %s::text[])",
                (qualified(table.schema, table.name), covered),
            )
    except psycopg.Error as exc:
        if exc.sqlstate != "TN007":
            raise
        return str(exc).strip()
    return None


def _problem(spec: Spec, table: TableSpec, text: str) -> SpecError:
    return SpecError(f"{spec.display}: table {table.key!r}: {text}")


def inspect(conn: psycopg.Connection[tuple[object, ...]], spec: Spec) -> list[TableInfo]:
    """Validate every table of ``spec`` against the catalog reachable through ``conn``."""
    infos: list[TableInfo] = []
    found = conn.execute(_HAS_KEY_CHECK).fetchone()
    check_layout = bool(found and found[0])
    for table in spec.tables:
        row = conn.execute(_FIND_TABLE, (table.schema, table.name)).fetchone()
        if row is None:
            raise _problem(
                spec,
                table,
                f"no table {table.name!r} in schema {table.schema!r} in the database "
                "(names are case-sensitive; create the table before generating its policies)",
            )
        oid, kind = row
        if kind not in _TABLE_KINDS:
            raise _problem(
                spec,
                table,
                f"{table.key!r} is a {_KIND_NAMES.get(str(kind), f'relation of kind {kind}')}, "
                "not a table",
            )
        column = conn.execute(_TENANT_COLUMN, (oid,)).fetchone()
        if column is None:
            raise _problem(
                spec,
                table,
                f"table {table.key!r} has no tenant_id column "
                "(every tenant table needs tenant_id uuid not null)",
            )
        is_uuid, type_name = column
        if not is_uuid:
            raise _problem(
                spec,
                table,
                f"column tenant_id of {table.key!r} has type {type_name}, not uuid",
            )
        sequences = tuple(
            Sequence(str(s), str(n)) for s, n in conn.execute(_SERIAL_SEQUENCES, (oid,))
        )
        descendants = tuple(
            Descendant(str(s), str(n), bool(part), str(ps), str(pn))
            for s, n, part, ps, pn in conn.execute(_DESCENDANTS, (oid,))
        )
        problem = None
        if check_layout:
            covered = [qualified(d.schema, d.name) for d in descendants]
            problem = _layout_problem(conn, table, covered)
        infos.append(
            TableInfo(
                spec=table,
                serial_sequences=sequences,
                descendants=descendants,
                layout_problem=problem,
            )
        )
    return infos


def read_catalog(database_url: str, spec: Spec) -> list[TableInfo]:
    """Open a read-only transaction on ``database_url`` and inspect the spec's tables."""
    with psycopg.connect(database_url) as conn:
        conn.read_only = True
        with conn.transaction():
            return inspect(conn, spec)
