"""``pgtenancy adopt``: write the migration that turns existing tables into tenant tables.

It reads the catalog of a live database (in a read-only transaction: it never runs DDL) and the
spec, and writes one reviewable SQL file for ``psql -f`` that, online and re-runnably:

1. creates the tenants of ``--tenant-map`` (``tenancy.create_tenant`` with their keys);
2. adds each missing tenant column, with a trigger filling it on new rows from the parent row,
   and a procedure that backfills it in batches, committing after each one;
3. calls the procedures (parents first);
4. makes each tenant column NOT NULL through a ``CHECK … NOT VALID``, ``VALIDATE`` and
   ``SET NOT NULL``, so no step holds a strong lock for a whole-table scan;
5. builds, ``CONCURRENTLY``, a tenant-led copy of every primary key, unique constraint and index
   that does not lead with the tenant column;
6. swaps the keys (``ADD CONSTRAINT … USING INDEX``), re-creating the foreign keys that depended
   on the old ones with the tenant column, ``NOT VALID``; drops the replaced indexes;
7. re-creates the other foreign keys between listed tables with the tenant column leading;
8. validates every re-created foreign key.

Every step checks the catalog (or uses ``IF NOT EXISTS``), so the file can be run again after an
interruption, or after it finished, harmlessly. :class:`AdoptError` (exit status 2 from the
command line) names every problem found, and nothing is written then.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.adapt import Loader

from .generator.spec import Spec, SpecError, TableEntry, load_spec

#: Tenant column types: a uuid holds the tenant id, the others the tenant's application key.
KEY_TYPES = ("bigint", "integer", "text")
TENANT_TYPES = ("uuid", *KEY_TYPES)
#: Rows per committed batch of the backfill procedures.
DEFAULT_BATCH = 10_000
#: The schema holding the backfill procedures and fill triggers the file creates.
WORK_SCHEMA = "tenancy_adopt"
#: Suffix of the tenant-led copies of keys and indexes.
SUFFIX = "_tenant"
#: Text types a --tenant-map column may have to be read as the tenant's name.
_NAME_TYPES = {"text", "character varying", "character", "name"}


class AdoptError(Exception):
    """The migration cannot be written as asked; the message names each problem (exit 2)."""


# -- quoting --------------------------------------------------------------------------------


class Quoter:
    """PostgreSQL's ``quote_ident``/``quote_literal``, with the server's keyword list."""

    def __init__(self, keywords: Iterable[str]) -> None:
        self.keywords = frozenset(keywords)

    def ident(self, name: str) -> str:
        if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) and name not in self.keywords:
            return name
        return '"' + name.replace('"', '""') + '"'

    def qualified(self, schema: str, name: str) -> str:
        return f"{self.ident(schema)}.{self.ident(name)}"

    @staticmethod
    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def cols(self, names: Sequence[str], prefix: str = "") -> str:
        return ", ".join(prefix + self.ident(n) for n in names)


def _name(base: str, suffix: str) -> str:
    """``base + suffix`` within PostgreSQL's 63-byte limit (shortened with a hash if needed)."""
    full = base + suffix
    if len(full.encode()) <= 63:
        return full
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    head = base.encode()[: 63 - len(suffix.encode()) - 9].decode(errors="ignore")
    return f"{head}_{digest}{suffix}"


# -- the catalog ----------------------------------------------------------------------------


@dataclass
class Column:
    name: str
    attnum: int
    type: str
    not_null: bool


@dataclass
class Constraint:
    oid: int
    name: str
    #: p, u, x or f
    kind: str
    columns: list[str]
    index_oid: int
    deferrable: bool
    deferred: bool
    #: foreign keys: the referenced table (schema.name as the spec writes it) and columns
    ref_table: str | None = None
    ref_columns: list[str] = field(default_factory=list)
    on_update: str = "a"
    on_delete: str = "a"
    match: str = "s"
    delete_set_columns: list[str] = field(default_factory=list)
    #: the table the constraint is on (schema.name)
    table: str = ""


@dataclass
class Index:
    oid: int
    name: str
    unique: bool
    valid: bool
    method: str
    definition: str
    #: attnums of the key columns (0 for an expression)
    keys: list[int]
    include: list[str]
    nulls_not_distinct: bool
    #: name of the primary key, unique or exclusion constraint it backs, if any
    constraint: str | None


@dataclass
class Table:
    key: str
    schema: str
    name: str
    oid: int
    kind: str
    children: int
    columns: dict[str, Column]
    constraints: list[Constraint]
    indexes: list[Index]
    #: foreign keys of other tables (anywhere) referencing this one
    referenced_by: list[Constraint]

    def column_by_attnum(self, attnum: int) -> str | None:
        for c in self.columns.values():
            if c.attnum == attnum:
                return c.name
        return None

    @property
    def primary_key(self) -> Constraint | None:
        return next((c for c in self.constraints if c.kind == "p"), None)


_TABLE = """
select c.oid, c.relkind::text,
       (select pg_catalog.count(*) from pg_catalog.pg_inherits as i where i.inhparent = c.oid)
from pg_catalog.pg_class as c
join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
where n.nspname = %s and c.relname = %s
"""

_COLUMNS = """
select a.attname::text, a.attnum, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull
from pg_catalog.pg_attribute as a
where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
order by a.attnum
"""

# Columns of a constraint, in key order, by name; the referenced table's for confkey.
_CONSTRAINTS = """
select c.oid, c.conname::text, c.contype::text,
       array(select a.attname::text from pg_catalog.unnest(c.conkey) with ordinality as k (n, i)
             join pg_catalog.pg_attribute as a on a.attrelid = c.conrelid and a.attnum = k.n
             order by k.i),
       c.conindid, c.condeferrable, c.condeferred,
       rn.nspname::text, r.relname::text,
       array(select a.attname::text from pg_catalog.unnest(c.confkey) with ordinality as k (n, i)
             join pg_catalog.pg_attribute as a on a.attrelid = c.confrelid and a.attnum = k.n
             order by k.i),
       c.confupdtype::text, c.confdeltype::text, c.confmatchtype::text,
       array(select a.attname::text
             from pg_catalog.unnest(c.confdelsetcols) with ordinality as k (n, i)
             join pg_catalog.pg_attribute as a on a.attrelid = c.conrelid and a.attnum = k.n
             order by k.i),
       tn.nspname::text, t.relname::text
from pg_catalog.pg_constraint as c
join pg_catalog.pg_class as t on t.oid = c.conrelid
join pg_catalog.pg_namespace as tn on tn.oid = t.relnamespace
left join pg_catalog.pg_class as r on r.oid = c.confrelid
left join pg_catalog.pg_namespace as rn on rn.oid = r.relnamespace
where c.contype in ('p', 'u', 'x', 'f') and {where}
order by c.conname
"""

_INDEXES = """
select i.indexrelid, ic.relname::text, i.indisunique, i.indisvalid, am.amname::text,
       pg_catalog.pg_get_indexdef(i.indexrelid),
       (i.indkey::pg_catalog.int2[])[0:i.indnkeyatts - 1],
       array(select a.attname::text
             from pg_catalog.unnest((i.indkey::pg_catalog.int2[])[i.indnkeyatts:])
                  with ordinality as k (n, o)
             join pg_catalog.pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.n
             order by k.o),
       i.indnullsnotdistinct,
       (select c.conname::text from pg_catalog.pg_constraint as c
        where c.conindid = i.indexrelid and c.conrelid = i.indrelid
          and c.contype in ('p', 'u', 'x'))
from pg_catalog.pg_index as i
join pg_catalog.pg_class as ic on ic.oid = i.indexrelid
join pg_catalog.pg_am as am on am.oid = ic.relam
where i.indrelid = %s
order by ic.relname
"""


def _constraint(row: Sequence[Any]) -> Constraint:
    return Constraint(
        oid=row[0],
        name=row[1],
        kind=row[2],
        columns=list(row[3]),
        index_oid=row[4],
        deferrable=row[5],
        deferred=row[6],
        ref_table=f"{row[7]}.{row[8]}" if row[8] is not None else None,
        ref_columns=list(row[9] or []),
        on_update=row[10],
        on_delete=row[11],
        match=row[12],
        delete_set_columns=list(row[13] or []),
        table=f"{row[14]}.{row[15]}",
    )


def read_table(conn: psycopg.Connection[Any], entry: TableEntry) -> Table | None:
    row = conn.execute(_TABLE, (entry.schema, entry.name)).fetchone()
    if row is None:
        return None
    oid, kind, children = row
    columns = {
        r[0]: Column(r[0], r[1], r[2], r[3]) for r in conn.execute(_COLUMNS, (oid,)).fetchall()
    }
    constraints = [
        _constraint(r)
        for r in conn.execute(_CONSTRAINTS.format(where="c.conrelid = %s"), (oid,)).fetchall()
    ]
    referenced_by = [
        _constraint(r)
        for r in conn.execute(
            _CONSTRAINTS.format(where="c.contype = 'f' and c.confrelid = %s"), (oid,)
        ).fetchall()
    ]
    indexes = [
        Index(
            oid=r[0],
            name=r[1],
            unique=r[2],
            valid=r[3],
            method=r[4],
            definition=r[5],
            keys=list(r[6]),
            include=list(r[7]),
            nulls_not_distinct=r[8],
            constraint=r[9],
        )
        for r in conn.execute(_INDEXES, (oid,)).fetchall()
    ]
    return Table(
        key=entry.key,
        schema=entry.schema,
        name=entry.name,
        oid=oid,
        kind=kind,
        children=children,
        columns=columns,
        constraints=constraints,
        indexes=indexes,
        referenced_by=referenced_by,
    )


# -- the plan -------------------------------------------------------------------------------


@dataclass
class Source:
    """Where a missing tenant column comes from: ``parent`` through ``columns`` = ``refs``."""

    parent: str
    columns: list[str]
    refs: list[str]
    how: str


@dataclass
class NewForeignKey:
    """A foreign key between listed tables, re-created with the tenant column leading."""

    old: Constraint
    table: str
    name: str
    columns: list[str]
    ref_table: str
    ref_columns: list[str]


@dataclass
class KeyRebuild:
    """A primary key, unique constraint or index rebuilt to lead with the tenant column."""

    table: str
    old: str
    new: str
    #: p, u (constraints) or i (an index)
    kind: str
    create: str
    columns: list[str]
    dependents: list[NewForeignKey]
    deferrable: bool = False
    deferred: bool = False
    #: the old index's definition (``pg_get_indexdef``), for the reviewer and a rollback
    before: str = ""


@dataclass
class TablePlan:
    entry: TableEntry
    table: Table
    column: str
    type: str = ""
    add_column: bool = False
    source: Source | None = None
    set_not_null: bool = False
    rebuilds: list[KeyRebuild] = field(default_factory=list)
    reviews: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MapRow:
    key: str
    slug: str
    name: str
    id: str | None


@dataclass
class Plan:
    spec: Spec
    tables: list[TablePlan]
    order: list[str]
    foreign_keys: list[NewForeignKey]
    tenants: list[MapRow] | None
    existing_keys: int
    batch: int
    warnings: list[str]


def _problem(spec: Spec, table: str | None, text: str) -> str:
    return f"{spec.display}: table {table!r}: {text}" if table else f"{spec.display}: {text}"


def _source(
    spec: Spec, plan: TablePlan, tables: dict[str, TablePlan], problems: list[str]
) -> Source | None:
    """The parent a missing (or partly NULL) tenant column is filled from, or None."""
    t, entry = plan.table, plan.entry
    fks = [c for c in t.constraints if c.kind == "f"]
    if entry.tenant_from is not None:
        cols, parent = list(entry.tenant_from[0]), entry.tenant_from[1]
        missing = [c for c in cols if c not in t.columns]
        if missing:
            problems.append(
                _problem(spec, t.key, f"tenant_from column {missing[0]!r} is not a column of it")
            )
            return None
        if parent not in tables:
            problems.append(
                _problem(
                    spec,
                    t.key,
                    f"tenant_from references {parent!r}, which is not a table of the spec: the "
                    "tenant column is copied from a listed table",
                )
            )
            return None
        fk = next((c for c in fks if c.ref_table == parent and c.columns == cols), None)
        if fk is not None:
            return Source(parent, cols, fk.ref_columns, f"foreign key {fk.name}")
        pk = tables[parent].table.primary_key
        if pk is None or len(pk.columns) != len(cols):
            problems.append(
                _problem(
                    spec,
                    t.key,
                    f"tenant_from: no foreign key on ({', '.join(cols)}) references {parent}, "
                    f"and its primary key has not {len(cols)} column(s) to match them",
                )
            )
            return None
        return Source(parent, cols, list(pk.columns), f"tenant_from, {parent} primary key")
    # A foreign key that already carries the tenant column cannot fill it: only its other
    # columns find the parent row.
    candidates = [
        c
        for c in fks
        if c.ref_table in tables and c.ref_table != t.key and c.columns != [plan.column]
    ]
    if len(candidates) == 1:
        fk = candidates[0]
        pairs = [
            (a, b) for a, b in zip(fk.columns, fk.ref_columns, strict=True) if a != plan.column
        ]
        return Source(
            fk.ref_table or "",
            [a for a, _ in pairs],
            [b for _, b in pairs],
            f"foreign key {fk.name}",
        )
    if plan.add_column:
        if candidates:
            names = ", ".join(f"{c.name} -> {c.ref_table}" for c in candidates)
            how = f"it has several foreign keys to listed tables ({names}): choose one with"
        else:
            how = "it has no foreign key to a listed table: add"
        problems.append(
            _problem(
                spec,
                t.key,
                f"has no column {plan.column!r} and adopt cannot tell where to fill it from; "
                f'{how} tenant_from = {{ column = "…", references = "schema.table" }}',
            )
        )
    return None


def _resolve_types(spec: Spec, plans: dict[str, TablePlan], problems: list[str]) -> list[str]:
    """Fill in the type of every added column (its parent's) and return the backfill order."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(key: str, path: list[str]) -> str:
        plan = plans[key]
        if state.get(key) == "done":
            return plan.type
        if state.get(key) == "visiting":
            problems.append(
                _problem(spec, key, "tenant columns filled in a cycle: " + " -> ".join(path))
            )
            return ""
        state[key] = "visiting"
        if plan.source is not None:
            parent_type = visit(plan.source.parent, [*path, plan.source.parent])
            if plan.add_column:
                plan.type = parent_type
            elif parent_type and plan.type != parent_type:
                problems.append(
                    _problem(
                        spec,
                        key,
                        f"its {plan.column} is {plan.type} but {plan.source.parent} "
                        f"holds {parent_type}: the tenant columns must have the same type",
                    )
                )
            order.append(key)
        state[key] = "done"
        return plan.type

    for key in plans:
        visit(key, [key])
    return order


def _index_copy(q: Quoter, t: Table, idx: Index, column: str, new: str) -> str | None:
    """``CREATE INDEX CONCURRENTLY IF NOT EXISTS new … (column, <the old key>)``, or None."""
    unique = "UNIQUE " if idx.unique else ""
    prefix = (
        f"CREATE {unique}INDEX {q.ident(idx.name)} ON {q.qualified(t.schema, t.name)} "
        f"USING {idx.method} ("
    )
    if not idx.definition.startswith(prefix):
        return None
    rest = idx.definition[len(prefix) :]
    return (
        f"create {unique.lower()}index concurrently if not exists {q.ident(new)}\n"
        f"    on {q.qualified(t.schema, t.name)} using {idx.method} ({q.ident(column)}, {rest}"
    )


def _constraint_copy(
    q: Quoter, t: Table, con: Constraint, idx: Index, column: str, new: str
) -> tuple[str, list[str]]:
    cols = [column, *[c for c in con.columns if c != column]]
    include = f" include ({q.cols(idx.include)})" if idx.include else ""
    nnd = " nulls not distinct" if idx.nulls_not_distinct else ""
    return (
        f"create unique index concurrently if not exists {q.ident(new)}\n"
        f"    on {q.qualified(t.schema, t.name)} ({q.cols(cols)}){include}{nnd}",
        cols,
    )


def build_plan(
    conn: psycopg.Connection[Any],
    spec: Spec,
    q: Quoter,
    tenant_map: str | None = None,
    batch: int = DEFAULT_BATCH,
) -> Plan:
    problems: list[str] = []
    warnings: list[str] = []
    plans: dict[str, TablePlan] = {}
    for entry in spec.tables:
        t = read_table(conn, entry)
        if t is None:
            problems.append(_problem(spec, entry.key, "does not exist in the database"))
            continue
        if t.kind != "r":
            what = {"p": "a partitioned table", "v": "a view", "m": "a materialized view"}
            problems.append(
                _problem(
                    spec,
                    entry.key,
                    f"is {what.get(t.kind, f'of relkind {t.kind!r}')}: adopt handles ordinary "
                    "tables (partitioned tables: adopt by hand, see docs/adopting.md)",
                )
            )
            continue
        if t.children:
            problems.append(
                _problem(
                    spec,
                    entry.key,
                    f"has {t.children} inheritance child table(s): adopt handles tables without "
                    "children (see docs/adopting.md)",
                )
            )
            continue
        plan = TablePlan(entry, t, entry.tenant_column)
        col = t.columns.get(entry.tenant_column)
        if col is None:
            plan.add_column = True
        elif col.type not in TENANT_TYPES:
            problems.append(
                _problem(
                    spec,
                    entry.key,
                    f"tenant column {col.name!r} is {col.type}: adopt supports uuid (the tenant "
                    f"id) and {', '.join(KEY_TYPES)} (the tenant key)",
                )
            )
            continue
        else:
            plan.type = col.type
            plan.set_not_null = not col.not_null
        if t.primary_key is None:
            problems.append(
                _problem(
                    spec,
                    entry.key,
                    "has no primary key: a tenant table needs one leading with its tenant "
                    "column, and the backfill walks it; add one first (alter table … add "
                    "primary key …)",
                )
            )
            continue
        plans[entry.key] = plan
    for plan in plans.values():
        if plan.add_column or plan.set_not_null:
            plan.source = _source(spec, plan, plans, problems)
        if plan.add_column:
            plan.set_not_null = True
    order = _resolve_types(spec, plans, problems)
    if problems:
        raise AdoptError("\n".join(problems))

    foreign_keys = _plan_keys(spec, q, plans, problems, warnings)
    if problems:
        raise AdoptError("\n".join(problems))
    tenants, existing = (None, 0)
    if tenant_map is not None:
        tenants, existing = read_tenant_map(conn, tenant_map)
    return Plan(spec, list(plans.values()), order, foreign_keys, tenants, existing, batch, warnings)


def _new_fk(fk: Constraint, plans: dict[str, TablePlan]) -> NewForeignKey | str:
    """The tenant-led version of a foreign key between listed tables, or why there is none."""
    child, parent = plans[fk.table], plans[fk.ref_table or ""]
    tc, tp = child.column, parent.column
    pairs = list(zip(fk.columns, fk.ref_columns, strict=True))
    if tc in fk.columns:
        i = fk.columns.index(tc)
        if fk.ref_columns[i] != tp:
            return (
                f"foreign key {fk.name} pairs {tc} with {fk.ref_table}.{fk.ref_columns[i]}, "
                f"not with its tenant column {tp}"
            )
        pairs = [pairs[i], *pairs[:i], *pairs[i + 1 :]]
    elif tp in fk.ref_columns:
        return (
            f"foreign key {fk.name} references {fk.ref_table}.{tp}, its tenant column, through "
            f"({', '.join(fk.columns)}) rather than {tc}: reference it through {tc}, or drop it"
        )
    else:
        pairs = [(tc, tp), *pairs]
    if child.type != parent.type:
        return (
            f"foreign key {fk.name}: tenant column {tc} is {child.type} but "
            f"{fk.ref_table}.{tp} is {parent.type}"
        )
    return NewForeignKey(
        fk, fk.table, fk.name, [a for a, _ in pairs], fk.ref_table or "", [b for _, b in pairs]
    )


def _plan_keys(
    spec: Spec,
    q: Quoter,
    plans: dict[str, TablePlan],
    problems: list[str],
    warnings: list[str],
) -> list[NewForeignKey]:
    """The keys and indexes to rebuild, and the foreign keys to re-create."""
    handled: set[int] = set()
    # unique column sets each table will have (for the foreign keys' references)
    uniques: dict[str, list[list[str]]] = {k: [] for k in plans}
    for key, plan in plans.items():
        t, tc = plan.table, plan.column
        by_oid = {i.oid: i for i in t.indexes}
        for con in t.constraints:
            if con.kind not in "pux":
                continue
            if con.columns and con.columns[0] == tc:
                if con.kind != "x":
                    uniques[key].append(con.columns)
                continue
            if con.kind == "x":
                plan.reviews.append(
                    f"exclusion constraint {con.name} does not lead with {tc}: rebuild it by "
                    f"hand with {tc} first (btree_gist), see docs/key-layout.md"
                )
                continue
            idx = by_oid[con.index_oid]
            new = _name(con.name, SUFFIX)
            create, cols = _constraint_copy(q, t, con, idx, tc, new)
            uniques[key].append(cols)
            plan.rebuilds.append(
                KeyRebuild(
                    key,
                    con.name,
                    new,
                    con.kind,
                    create,
                    cols,
                    [],
                    con.deferrable,
                    con.deferred,
                    idx.definition,
                )
            )
        for idx in t.indexes:
            if idx.constraint is not None:
                continue
            lead = t.column_by_attnum(idx.keys[0]) if idx.keys and idx.keys[0] else None
            if lead == tc and not plan.add_column:
                if idx.unique:
                    uniques[key].append([t.column_by_attnum(k) or "" for k in idx.keys])
                continue
            new = _name(idx.name, SUFFIX)
            copy = _index_copy(q, t, idx, tc, new) if idx.method == "btree" else None
            if copy is None:
                plan.reviews.append(
                    f"index {idx.name} ({idx.method}) does not lead with {tc}: rebuild it by "
                    f"hand with {tc} first, see docs/key-layout.md"
                )
                continue
            if idx.unique and all(idx.keys):
                uniques[key].append([tc, *[t.column_by_attnum(k) or "" for k in idx.keys]])
            plan.rebuilds.append(
                KeyRebuild(key, idx.name, new, "i", copy, [], [], before=idx.definition)
            )
        for warning in plan.reviews:
            warnings.append(f"{t.key}: {warning}")

    # foreign keys depending on a rebuilt key or index
    for key, plan in plans.items():
        for rebuild in plan.rebuilds:
            old_oid = next(
                (
                    i.oid
                    for i in plan.table.indexes
                    if i.name == rebuild.old or i.constraint == rebuild.old
                ),
                None,
            )
            for fk in plan.table.referenced_by:
                if fk.index_oid != old_oid:
                    continue
                if fk.table not in plans:
                    problems.append(
                        _problem(
                            spec,
                            key,
                            f"foreign key {fk.name} of {fk.table} references "
                            f"({', '.join(fk.ref_columns)}), whose key {rebuild.old} becomes "
                            f"({', '.join([plan.column, *fk.ref_columns])}): list {fk.table} "
                            "in the spec (it holds tenant data) or drop that foreign key",
                        )
                    )
                    continue
                made = _new_fk(fk, plans)
                if isinstance(made, str):
                    problems.append(_problem(spec, fk.table, made))
                    continue
                rebuild.dependents.append(made)
                handled.add(fk.oid)
    # other foreign keys between listed tables that do not lead with the tenant columns
    rest: list[NewForeignKey] = []
    for plan in plans.values():
        for fk in plan.table.constraints:
            if fk.kind != "f" or fk.ref_table not in plans or fk.oid in handled:
                continue
            parent = plans[fk.ref_table]
            if (
                fk.columns[0] == plan.column
                and fk.ref_columns[0] == parent.column
                and plan.type == parent.type
            ):
                continue
            made = _new_fk(fk, plans)
            if isinstance(made, str):
                problems.append(_problem(spec, plan.table.key, made))
                continue
            rest.append(made)
    for nfk in [*rest, *(d for p in plans.values() for r in p.rebuilds for d in r.dependents)]:
        if not any(sorted(u) == sorted(nfk.ref_columns) for u in uniques[nfk.ref_table]):
            problems.append(
                _problem(
                    spec,
                    nfk.table,
                    f"foreign key {nfk.name} would reference {nfk.ref_table} "
                    f"({', '.join(nfk.ref_columns)}), which has no such unique key after "
                    "adoption: add one (a unique constraint on those columns) first",
                )
            )
    return rest


# -- the tenant map -------------------------------------------------------------------------


class _TextLoader(Loader):
    """Every value of the map query as PostgreSQL prints it."""

    def load(self, data: Any) -> str:
        return bytes(data).decode("utf-8")


def slug_part(text: str) -> str:
    """Lower-case ``a-z0-9`` runs of ``text`` joined by single hyphens."""
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))


def _slug(key: str, name: str | None) -> str:
    """A tenant slug for a key: the key itself when it is a valid slug (and not only digits);
    else the name's and the key's ``a-z0-9`` runs joined by hyphens (``Acme Corp``, 42:
    ``acme-corp-42``), or ``tenant-`` and the key's (42: ``tenant-42``)."""
    if re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", key) and not key.isdigit():
        return key
    k = slug_part(key)[:40].strip("-") or "k" + hashlib.sha256(key.encode()).hexdigest()[:10]
    n = slug_part(name)[: 62 - len(k)].strip("-") if name else ""
    return f"{n or 'tenant'}-{k}"


def read_tenant_map(conn: psycopg.Connection[Any], query: str) -> tuple[list[MapRow], int]:
    """Run the ``--tenant-map`` query (read-only) and check its rows; see docs/adopting.md."""
    text = query.strip().rstrip(";").strip()
    if not text:
        raise AdoptError("--tenant-map: the query is empty")
    shown = text if len(text) <= 200 else text[:200] + "…"
    if conn.execute(
        "select pg_catalog.to_regprocedure('tenancy.tenant_id_for_key(text)')"
    ).fetchone() == (None,):
        raise AdoptError(
            "--tenant-map: the database has no tenancy.tenant_id_for_key: run pgtenancy migrate "
            "on it first"
        )
    cur = conn.cursor()
    try:
        with conn.transaction():
            cur.execute(f"select * from ({text}) as tenant_map limit 0")  # noqa: S608
            desc = cur.description or []
            oids = [d.type_code for d in desc]
            for oid in set(oids):
                cur.adapters.register_loader(oid, _TextLoader)
            types = [
                r[0]
                for r in (
                    conn.execute(
                        "select pg_catalog.format_type(t.o, null) "
                        "from pg_catalog.unnest(%s::pg_catalog.oid[]) with ordinality as t (o, i) "
                        "order by t.i",
                        (oids,),
                    ).fetchall()
                )
            ]
            cur.execute(f"select * from ({text}) as tenant_map")  # noqa: S608
            rows = cur.fetchall()
    except psycopg.Error as exc:
        raise AdoptError(
            f"--tenant-map query failed: {str(exc).strip()}; the query: {shown}"
        ) from None
    if not 1 <= len(types) <= 3:
        raise AdoptError(
            f"--tenant-map returns {len(types)} columns: it must return the key, then optionally "
            "a name (text) and a tenant id (uuid)"
        )
    name_at = id_at = None
    for i, typ in enumerate(types[1:], start=1):
        if typ == "uuid" and id_at is None:
            id_at = i
        elif typ.split("(")[0] in _NAME_TYPES and name_at is None:
            name_at = i
        else:
            raise AdoptError(
                f"--tenant-map column {i + 1} ({desc[i].name}) is {typ}: after the key, one "
                "text column (the name) and one uuid column (the tenant id) are allowed"
            )
    seen_keys: set[str] = set()
    seen_ids: set[str] = set()
    out: list[tuple[str, str | None, str | None]] = []
    for row in rows:
        key = row[0]
        if key is None:
            raise AdoptError("--tenant-map returns a NULL key: every row needs one")
        if key in seen_keys:
            raise AdoptError(f"--tenant-map returns the key {key!r} more than once")
        seen_keys.add(key)
        if not 1 <= len(key) <= 255 or re.search(r"[\x00-\x1f\x7f]", key):
            raise AdoptError(
                f"--tenant-map key {key!r} is not a valid tenant key (1 to 255 characters, no "
                "control characters)"
            )
        name = row[name_at] if name_at is not None else None
        if name is not None and not 1 <= len(name.strip()) <= 200:
            raise AdoptError(
                f"--tenant-map name {name!r} of key {key!r} is not a valid tenant name (1 to "
                "200 characters once trimmed)"
            )
        tid = row[id_at] if id_at is not None else None
        if tid is not None:
            if tid in seen_ids:
                raise AdoptError(f"--tenant-map returns the tenant id {tid} more than once")
            seen_ids.add(tid)
        out.append((key, name, tid))
    existing = conn.execute(
        "select t.key::text, t.id::text, t.slug::text from tenancy.tenants as t"
    ).fetchall()
    by_key = {r[0]: r[1] for r in existing if r[0] is not None}
    taken_ids = {r[1]: r[0] for r in existing}
    slugs = {r[2] for r in existing}
    result: list[MapRow] = []
    present = 0
    for key, name, tid in out:
        if key in by_key:
            present += 1
            if tid is not None and by_key[key] != tid:
                raise AdoptError(
                    f"--tenant-map gives key {key!r} the tenant id {tid}, but tenant "
                    f"{by_key[key]} already has that key"
                )
            continue
        if tid is not None and tid in taken_ids:
            raise AdoptError(
                f"--tenant-map gives key {key!r} the tenant id {tid}, which tenant key "
                f"{taken_ids[tid]!r} already has"
            )
        slug = _slug(key, name)
        if slug in slugs:
            slug = f"{slug[:56].rstrip('-')}-{hashlib.sha256(key.encode()).hexdigest()[:6]}"
        slugs.add(slug)
        result.append(MapRow(key, slug, (name or key).strip(), tid))
    return result, present


# -- rendering ------------------------------------------------------------------------------


def _regclass(q: Quoter, table: str, schema: str | None = None, name: str | None = None) -> str:
    if schema is None or name is None:
        schema, name = table.split(".", 1)
    return f"{q.literal(q.qualified(schema, name))}::pg_catalog.regclass"


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def section(self, title: str) -> None:
        self.add("", "-- " + "=" * 96, f"-- {title}", "-- " + "=" * 96)

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"


def _do(body: Sequence[str], handler: Sequence[str] = ()) -> list[str]:
    """A DO block: one transaction, so its statements take effect together or not at all."""
    caught = ["exception", *("    " + h for h in handler)] if handler else []
    return ["do $adopt$", "begin", *("    " + b for b in body), *caught, "end", "$adopt$;"]


def _fk_sql(q: Quoter, fk: NewForeignKey, plans: dict[str, TablePlan]) -> str:
    old = fk.old
    child = plans[fk.table].table
    parent = plans[fk.ref_table].table
    actions = {"r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}
    tail = ""
    if old.match == "f":
        tail += " match full"
    if old.on_update in actions:
        tail += f" on update {actions[old.on_update]}"
    if old.on_delete in actions:
        tail += f" on delete {actions[old.on_delete]}"
        if old.on_delete in "nd":
            cols = old.delete_set_columns or [c for c in old.columns if c != plans[fk.table].column]
            tail += f" ({q.cols(cols)})"
    if old.deferrable:
        tail += " deferrable" + (" initially deferred" if old.deferred else "")
    return (
        f"alter table {q.qualified(child.schema, child.name)} add constraint {q.ident(fk.name)}\n"
        f"        foreign key ({q.cols(fk.columns)})\n"
        f"        references {q.qualified(parent.schema, parent.name)} ({q.cols(fk.ref_columns)})"
        f"{tail} not valid;"
    )


def _leading_fk_exists(q: Quoter, fk: NewForeignKey, column: str) -> str:
    return (
        "exists (select from pg_catalog.pg_constraint as c join pg_catalog.pg_attribute as a "
        "on a.attrelid = c.conrelid and a.attnum = c.conkey[1] "
        f"where c.conrelid = {_regclass(q, fk.table)} and c.conname = {q.literal(fk.name)} "
        f"and a.attname = {q.literal(column)})"
    )


def render(plan: Plan, q: Quoter, out_name: str) -> str:
    plans = {p.table.key: p for p in plan.tables}
    o = _Out()
    o.add(
        f"-- generated by pgtenancy adopt from {plan.spec.display}: review it, then run it",
        "--",
        "-- Makes the tables of the spec valid tenant tables, online (docs/adopting.md):",
        "--     psql -v ON_ERROR_STOP=1 -f " + out_name + ' "$DATABASE_URL"',
        "-- as the owner of the tables (or a superuser); creating tenants needs tenancy_admin",
        "-- or tenancy_service too. NOT in one transaction (no psql -1, not pgtenancy apply):",
        "-- statements marked [no transaction] (CREATE INDEX CONCURRENTLY, CALL of a procedure",
        "-- that commits after each batch) refuse to run inside one, and every other statement",
        "-- is its own short transaction, so no lock is held longer than its step needs.",
        "--",
        "-- The file can be run again at any time: each step checks the catalog (or uses IF NOT",
        "-- EXISTS) and skips what is done. After an interruption (a lock timeout, a killed",
        "-- session, a failed VALIDATE once the data is fixed), run it again to finish.",
        "--",
        "-- Order: 1 tenants; 2 tenant columns, fill triggers, backfill procedures; 3 backfills;",
        "-- 4 NOT NULL; 5 tenant-led indexes built concurrently; 6 keys swapped, old indexes",
        "-- dropped; 7 foreign keys re-created with the tenant column; 8 foreign keys validated.",
        "-- Then: pgtenancy generate + pgtenancy apply, and the cutover (docs/adopting.md).",
        "--",
        "-- Locks: a step waits at most lock_timeout for its lock, then fails (run the file",
        "-- again); each step says which lock it takes and for how long.",
        "",
        "\\set ON_ERROR_STOP on",
        "set lock_timeout = '5s';",
        "set statement_timeout = 0;",
        "set search_path = pg_catalog;",
    )
    for p in plan.tables:
        if p.reviews:
            o.add("", f"-- REVIEW {p.table.key}: not handled by this file:")
            o.add(*(f"--   {r}" for r in p.reviews))

    o.section("1. tenants")
    if plan.tenants is None:
        o.add("-- no --tenant-map: create the tenants yourself (tenancy.create_tenant with p_key).")
    else:
        o.add(
            "-- One per key of --tenant-map, with no owner yet (members come later); keys that",
            "-- already name a tenant are skipped. Slug: the name's and the key's a-z0-9 runs",
            "-- joined by hyphens ('Acme Corp', 42 -> acme-corp-42; a key alone -> tenant-42),",
            "-- with a hash suffix when that slug is taken: edit them here if you wish.",
            f"-- {len(plan.tenants)} to create, {plan.existing_keys} already present."
            " One statement: all of them or none. Locks: rows of tenancy.tenants only.",
        )
        if plan.tenants:
            values = []
            for m in plan.tenants:
                tid = f"{q.literal(m.id)}::pg_catalog.uuid" if m.id else "null::pg_catalog.uuid"
                values.append(
                    f"    ({q.literal(m.key)}, {q.literal(m.slug)}, {q.literal(m.name)}, {tid})"
                )
            o.add(
                "select pg_catalog.count(created.id) as tenants_created",
                "from (",
                "    select tenancy.create_tenant(v.slug, v.name, p_owner_user_id => null,",
                "                                 p_id => v.id, p_key => v.key) as id",
                "    from (values",
                ",\n".join("    " + v for v in values),
                "    ) as v (key, slug, name, id)",
                "    where tenancy.tenant_id_for_key(v.key) is null",
                ") as created;",
            )

    o.section("2. tenant columns, fill triggers, backfill procedures")
    fills = [plans[k] for k in plan.order]
    if not fills:
        o.add("-- every tenant column exists and needs no backfill.")
    else:
        o.add(
            f"create schema if not exists {q.ident(WORK_SCHEMA)};",
            f"comment on schema {q.ident(WORK_SCHEMA)} is 'pgtenancy adopt: backfill procedures "
            "and fill triggers; drop it (cascade) once the cutover is done (docs/adopting.md).';",
        )
    for p in fills:
        _render_fill(o, q, p, plans, plan.batch)

    o.section("3. backfills [no transaction]")
    if not fills:
        o.add("-- nothing to backfill.")
    for p in fills:
        o.add(
            "",
            f"-- [no transaction] {p.table.key}: fills {p.column} in batches of {plan.batch} rows,",
            "-- committing after each; only the rows of the batch are locked, for one batch. Run",
            "-- again after an interruption: it starts at the first row still without a tenant.",
            f"call {q.ident(WORK_SCHEMA)}.{q.ident(_proc_name(p))}({plan.batch});",
        )

    o.section("4. NOT NULL: CHECK NOT VALID, VALIDATE, SET NOT NULL")
    nn = [p for p in plan.tables if p.set_not_null]
    if not nn:
        o.add("-- every tenant column is NOT NULL already.")
    for p in nn:
        _render_not_null(o, q, p)

    o.section("5. tenant-led indexes, built concurrently [no transaction]")
    rebuilds = [r for p in plan.tables for r in p.rebuilds]
    if not rebuilds:
        o.add("-- every key and index leads with its tenant column already.")
    for r in rebuilds:
        t = plans[r.table].table
        what = {"p": "primary key", "u": "unique constraint", "i": "index"}[r.kind]
        o.add(
            "",
            f"-- {r.table}: {what} {r.old} does not lead with {plans[r.table].column}: the copy",
            "-- that does. A leftover invalid copy (an interrupted build) is dropped first.",
            f"-- before: {r.before}",
            *_do(
                [
                    "if exists (select from pg_catalog.pg_index as i where i.indexrelid = "
                    f"pg_catalog.to_regclass({q.literal(q.qualified(t.schema, r.new))}) "
                    "and not i.indisvalid) then",
                    f"    drop index {q.qualified(t.schema, r.new)};",
                    "end if;",
                ]
            ),
            "-- [no transaction] SHARE UPDATE EXCLUSIVE: reads and writes go on during the build.",
            r.create + ";",
        )

    o.section("6. keys swapped to the tenant-led indexes; replaced indexes dropped")
    if not rebuilds:
        o.add("-- nothing to swap.")
    for r in rebuilds:
        _render_swap(o, q, r, plans)

    o.section("7. foreign keys between tenant tables, re-created with the tenant column")
    if not plan.foreign_keys:
        o.add("-- no other foreign key to re-create.")
    for fk in plan.foreign_keys:
        o.add(
            "",
            f"-- {fk.table}: foreign key {fk.name} -> {fk.ref_table} re-created as",
            f"-- ({', '.join(fk.columns)}) -> ({', '.join(fk.ref_columns)}): a row may only",
            "-- reference a row of its own tenant. NOT VALID: SHARE ROW EXCLUSIVE on both tables",
            "-- for a moment, no scan (section 8 validates).",
            *_do(
                [
                    f"if not {_leading_fk_exists(q, fk, plans[fk.table].column)} then",
                    f"    alter table {q.qualified(*fk.table.split('.', 1))} "
                    f"drop constraint if exists {q.ident(fk.name)};",
                    "    " + _fk_sql(q, fk, plans),
                    "end if;",
                ]
            ),
        )

    o.section("8. foreign keys validated")
    all_fks = [*(d for r in rebuilds for d in r.dependents), *plan.foreign_keys]
    if not all_fks:
        o.add("-- nothing to validate.")
    for fk in all_fks:
        o.add(
            "",
            f"-- {fk.table}: checks every row against {fk.ref_table}; SHARE UPDATE EXCLUSIVE on",
            "-- the table (reads and writes go on), ROW SHARE on the referenced one.",
            *_do(
                [
                    "if exists (select from pg_catalog.pg_constraint as c where c.conrelid = "
                    f"{_regclass(q, fk.table)} and c.conname = {q.literal(fk.name)} "
                    "and not c.convalidated) then",
                    f"    alter table {q.qualified(*fk.table.split('.', 1))} "
                    f"validate constraint {q.ident(fk.name)};",
                    "end if;",
                ]
            ),
        )
    o.add(
        "",
        f"-- Done. Next: pgtenancy generate --spec {plan.spec.display} … and pgtenancy apply;",
    )
    if fills:
        o.add(
            f"-- after the cutover, drop schema {WORK_SCHEMA} cascade (the fill triggers are then"
            " unneeded)."
        )
    return o.text()


def _proc_name(p: TablePlan) -> str:
    return _name(f"backfill_{p.table.schema}_{p.table.name}", "")


def _fill_name(p: TablePlan) -> str:
    return _name(f"fill_{p.table.schema}_{p.table.name}", "")


def _render_fill(o: _Out, q: Quoter, p: TablePlan, plans: dict[str, TablePlan], batch: int) -> None:
    t, src = p.table, p.source
    assert src is not None
    parent = plans[src.parent]
    tq = q.qualified(t.schema, t.name)
    pq = q.qualified(parent.table.schema, parent.table.name)
    col = q.ident(p.column)
    pcol = q.ident(parent.column)
    join = " and ".join(
        f"p.{q.ident(r)} = {{row}}.{q.ident(c)}" for c, r in zip(src.columns, src.refs, strict=True)
    )
    o.add(
        "",
        f"-- {t.key}: {p.column} {p.type}, copied from {src.parent}.{parent.column}",
        f"-- through ({', '.join(src.columns)}) ({src.how}).",
    )
    if p.add_column:
        o.add(
            "-- Adds the column: no default, so no rewrite; ACCESS EXCLUSIVE for a moment.",
            f"alter table {tq} add column if not exists {col} {p.type};",
        )
    fill = q.ident(_fill_name(p))
    o.add(
        "-- New and updated rows get their tenant from the parent row until the application",
        "-- sets it (runs as the writing role: it reads the parent row as that role does).",
        f"create or replace function {q.ident(WORK_SCHEMA)}.{fill}()",
        "returns trigger",
        "language plpgsql",
        "set search_path = pg_catalog, pg_temp",
        "as $fill$",
        "begin",
        f"    select p.{pcol} into new.{col} from {pq} as p where {join.format(row='new')};",
        "    return new;",
        "end",
        "$fill$;",
        f"revoke all on function {q.ident(WORK_SCHEMA)}.{fill}() from public;",
        f"-- SHARE ROW EXCLUSIVE on {t.key} for a moment.",
        f"create or replace trigger {q.ident(_name('tenancy_adopt_fill_' + p.column, ''))}",
        f"before insert or update on {tq}",
        f"for each row when (new.{col} is null)",
        f"execute function {q.ident(WORK_SCHEMA)}.{fill}();",
    )
    pk = t.primary_key
    assert pk is not None
    keys = pk.columns
    lo = [f"v_lo_{i}" for i in range(len(keys))]
    hi = [f"v_hi_{i}" for i in range(len(keys))]
    ck = q.cols(keys, "c.")
    row_ck = f"({ck})"
    decl = [f"    {v} {tq}.{q.ident(k)}%type;" for v, k in zip(lo + hi, keys + keys, strict=True)]
    upd = (
        f"update {tq} as c set {col} = p.{pcol} from {pq} as p\n"
        f"            where {join.format(row='c')} and c.{col} is null\n"
        f"                and {row_ck} >= ({', '.join(lo)})"
    )
    name = q.ident(_proc_name(p))
    o.add(
        f"-- The backfill: batches of p_batch rows in primary key order ({', '.join(keys)}),",
        "-- each committed; row locks on one batch at a time, never a table lock beyond",
        "-- ROW EXCLUSIVE (which blocks no reads and no writes).",
        f"create or replace procedure {q.ident(WORK_SCHEMA)}.{name}("
        f"p_batch integer default {batch})",
        "language plpgsql",
        "as $backfill$",
        "declare",
        *decl,
        "    v_more boolean;",
        "    v_rows bigint;",
        "    v_total bigint := 0;",
        "begin",
        "    perform pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);",
        f"    select {ck} into {', '.join(lo)} from {tq} as c",
        f"    where c.{col} is null order by {ck} limit 1;",
        "    if not found then",
        f"        raise notice '%: {p.column} is set on every row', {q.literal(t.key)};",
        "        return;",
        "    end if;",
        "    loop",
        "        perform pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);",
        f"        select {ck} into {', '.join(hi)} from {tq} as c",
        f"        where {row_ck} >= ({', '.join(lo)}) order by {ck} offset p_batch - 1 limit 1;",
        "        v_more := found;",
        "        if v_more then",
        f"            {upd} and {row_ck} <= ({', '.join(hi)});",
        "        else",
        f"            {upd};",
        "        end if;",
        "        get diagnostics v_rows = row_count;",
        "        v_total := v_total + v_rows;",
        "        commit;",
        "        exit when not v_more;",
        f"        select {ck} into {', '.join(lo)} from {tq} as c",
        f"        where {row_ck} > ({', '.join(hi)}) order by {ck} limit 1;",
        "        exit when not found;",
        "    end loop;",
        f"    raise notice '%: {p.column} set on % row(s)', {q.literal(t.key)}, v_total;",
        "end",
        "$backfill$;",
    )


def _render_not_null(o: _Out, q: Quoter, p: TablePlan) -> None:
    t = p.table
    tq = q.qualified(t.schema, t.name)
    reg = _regclass(q, t.key, t.schema, t.name)
    check = _name(f"{t.name}_{p.column}_not_null", "")
    col = q.ident(p.column)
    attnotnull = (
        "exists (select from pg_catalog.pg_attribute as a where a.attrelid = "
        f"{reg} and a.attname = {q.literal(p.column)} and a.attnotnull)"
    )
    has_check = (
        "exists (select from pg_catalog.pg_constraint as c where c.conrelid = "
        f"{reg} and c.conname = {q.literal(check)}"
    )
    o.add(
        "",
        f"-- {t.key}: {p.column} NOT NULL. The CHECK is added NOT VALID (ACCESS EXCLUSIVE for a",
        "-- moment, no scan: new rows are checked from now on) ...",
        *_do(
            [
                f"if not {attnotnull} and not {has_check}) then",
                f"    alter table {tq} add constraint {q.ident(check)}",
                f"        check ({col} is not null) not valid;",
                "end if;",
            ]
        ),
        "-- ... validated (a scan under SHARE UPDATE EXCLUSIVE: reads and writes go on) ...",
        *_do(
            [
                f"if {has_check} and not c.convalidated) then",
                f"    alter table {tq} validate constraint {q.ident(check)};",
                "end if;",
            ],
            [
                "when check_violation then",
                "    raise exception using",
                "        errcode = 'check_violation',",
                f"        message = pg_catalog.format('%s row(s) of %s have no {p.column}',",
                f"            (select pg_catalog.count(*) from {tq} as c where c.{col} is null),",
                f"            {q.literal(t.key)}),",
                "        hint = 'Rows whose parent has no tenant, or rows written without one: "
                "fix them, then run this file again (its backfill fills what it can).';",
            ],
        ),
        "-- ... then SET NOT NULL uses the validated CHECK instead of a scan (ACCESS EXCLUSIVE for",
        "-- a moment) and the CHECK is dropped.",
        *_do(
            [
                f"if not {attnotnull} then",
                f"    alter table {tq} alter column {col} set not null;",
                "end if;",
                f"if {has_check}) then",
                f"    alter table {tq} drop constraint {q.ident(check)};",
                "end if;",
            ]
        ),
    )


def _render_swap(o: _Out, q: Quoter, r: KeyRebuild, plans: dict[str, TablePlan]) -> None:
    t = plans[r.table].table
    tq = q.qualified(t.schema, t.name)
    reg = _regclass(q, t.key, t.schema, t.name)
    drops = [
        f"alter table {q.qualified(*d.table.split('.', 1))} drop constraint if exists "
        f"{q.ident(d.name)};"
        for d in r.dependents
    ]
    adds = [_fk_sql(q, d, plans) for d in r.dependents]
    deps = ", ".join(f"{d.table}.{d.name}" for d in r.dependents)
    if r.kind in "pu":
        what = "primary key" if r.kind == "p" else "unique"
        defer = ""
        if r.deferrable:
            defer = " deferrable" + (" initially deferred" if r.deferred else "")
        o.add(
            "",
            f"-- {r.table}: {r.old} replaced by {r.new} ({', '.join(r.columns)}), in one short",
            "-- transaction: ACCESS EXCLUSIVE on the table briefly (the index exists: no scan)",
        )
        if r.dependents:
            o.add(
                f"-- and SHARE ROW EXCLUSIVE on the tables of the foreign keys using it ({deps}),",
                "-- re-created with the tenant column, NOT VALID (section 8 validates them).",
            )
        o.add(
            *_do(
                [
                    "if exists (select from pg_catalog.pg_constraint as c where c.conrelid = "
                    f"{reg} and c.conname = {q.literal(r.old)}) then",
                    *("    " + d for d in drops),
                    f"    alter table {tq} drop constraint {q.ident(r.old)},",
                    f"        add constraint {q.ident(r.new)} {what}",
                    f"        using index {q.ident(r.new)}{defer};",
                    *("    " + a for a in adds),
                    "end if;",
                ]
            )
        )
        return
    old = q.qualified(t.schema, r.old)
    if r.dependents:
        o.add(
            "",
            f"-- {r.table}: index {r.old} replaced by {r.new}; the foreign keys that used it",
            f"-- ({deps}) are re-created with the tenant column, NOT VALID, in the same short",
            "-- transaction (ACCESS EXCLUSIVE on the table briefly, SHARE ROW EXCLUSIVE on",
            "-- theirs).",
            *_do(
                [
                    f"if pg_catalog.to_regclass({q.literal(old)}) is not null then",
                    *("    " + d for d in drops),
                    f"    drop index {old};",
                    *("    " + a for a in adds),
                    "end if;",
                ]
            ),
        )
        return
    o.add(
        "",
        f"-- [no transaction] {r.table}: index {r.old}, replaced by {r.new}, dropped without",
        "-- blocking reads or writes.",
        f"drop index concurrently if exists {old};",
    )


# -- the command ----------------------------------------------------------------------------


def _keywords(conn: psycopg.Connection[Any]) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "select k.word from pg_catalog.pg_get_keywords() as k where k.catcode <> 'U'"
        ).fetchall()
    ]


def adopt(
    url: str,
    spec_path: Path,
    out: Path,
    tenant_map: str | None = None,
    batch: int = DEFAULT_BATCH,
) -> Plan:
    """Read the catalog, plan the migration and write it to ``out``; nothing is written when
    a problem is found (:class:`AdoptError`, :class:`SpecError`)."""
    if batch < 1:
        raise AdoptError(f"--batch-size {batch}: it must be at least 1")
    spec = load_spec(spec_path)
    if not spec.tables:
        raise AdoptError(f"{spec.display}: the spec lists no table")
    if not out.parent.is_dir():
        raise AdoptError(f"--out {out}: directory {out.parent} does not exist")
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("set transaction read only")
        conn.execute("set local search_path = pg_catalog")
        q = Quoter(_keywords(conn))
        plan = build_plan(conn, spec, q, tenant_map, batch)
    text = render(plan, q, out.as_posix())
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return plan


__all__ = ["AdoptError", "Plan", "SpecError", "adopt"]
