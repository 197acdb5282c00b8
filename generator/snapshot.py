"""The catalog snapshot: everything rendering needs from the database, as plain data.

:func:`pgtenancy.generator.catalog.read_snapshot` is the only code that reads it from
PostgreSQL; everything after it (validation, rendering) works on this data alone, so the
generator's golden tests run without a database (``tests/generator/cases/*/catalog.json``).

A snapshot holds the member roles (labels of the enum ``tenancy.member_role``, most privileged
first) and, for every table the spec names that exists, its kind, columns, indexes and
constraints (what the key-layout rule is about), the sequences of its serial columns, its
partitions and inheritance children, and the verdict of ``tenancy.assert_tenant_keys`` on it
(the key-layout rule lives once, in SQL; the snapshot records what it said). Lists are in a
fixed order and the JSON form has sorted keys, so a snapshot read twice is the same text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .spec import SpecError, TableSpec

#: Version of the JSON form; bumped when a field changes meaning.
FORMAT = 1


@dataclass(frozen=True)
class Column:
    """A column, in ``attnum`` order: ``type`` as ``format_type`` spells it."""

    name: str
    type: str
    not_null: bool
    #: ``pg_get_expr`` of the default, or None.
    default: str | None = None
    #: ``always`` or ``by default`` for identity columns, else None.
    identity: str | None = None
    #: A stored generated column.
    generated: bool = False
    #: For a column whose type is a domain, the type the domain stands for (through domains over
    #: domains), as ``format_type`` spells it; None for every other column.
    base_type: str | None = None


@dataclass(frozen=True)
class Index:
    """An index of the table (constraint-backed ones included), as ``pg_get_indexdef``."""

    name: str
    definition: str


@dataclass(frozen=True)
class Constraint:
    """A primary key, unique, exclusion or foreign key constraint (``pg_get_constraintdef``)."""

    name: str
    #: ``primary key``, ``unique``, ``exclusion`` or ``foreign key``.
    kind: str
    definition: str


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key of the table: its columns and the columns they reference, in key order."""

    name: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_name: str
    ref_columns: tuple[str, ...]


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
class Relation:
    """A relation the spec names. Only tables carry columns and the rest."""

    schema: str
    name: str
    #: ``table``, ``partitioned table``, ``view``, ``materialized view``, ``foreign table``, …
    kind: str
    columns: tuple[Column, ...] = ()
    #: Sorted by name.
    indexes: tuple[Index, ...] = ()
    #: Sorted by name.
    constraints: tuple[Constraint, ...] = ()
    #: Sequences owned by serial columns (not identity columns), sorted by schema and name.
    serial_sequences: tuple[Sequence, ...] = ()
    #: Every partition and inheritance child, recursively, sorted by schema and name.
    descendants: tuple[Descendant, ...] = ()
    #: The TN007 message the policy file would fail with when applied now, if any.
    layout_problem: str | None = None
    #: The primary key's columns, in key order (empty without one).
    primary_key: tuple[str, ...] = ()
    #: Foreign keys, sorted by name (read for the tables with personal data).
    foreign_keys: tuple[ForeignKey, ...] = ()

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class Snapshot:
    """The member roles and the spec's relations, sorted by schema and name."""

    member_roles: tuple[str, ...]
    relations: tuple[Relation, ...] = ()

    def relation(self, schema: str, name: str) -> Relation | None:
        return next((r for r in self.relations if (r.schema, r.name) == (schema, name)), None)

    def to_json(self) -> str:
        """The JSON form: sorted keys, two-space indent, one trailing newline."""
        data = {
            "format": FORMAT,
            "member_roles": list(self.member_roles),
            "relations": [_relation_dict(r) for r in self.relations],
        }
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        """Parse the JSON form; ``ValueError`` names what is wrong."""
        data = json.loads(text)
        _expect(data, dict, "the snapshot")
        if data.get("format") != FORMAT:
            raise ValueError(f"snapshot format {data.get('format')!r} is not {FORMAT}")
        roles = tuple(_strings(data.get("member_roles"), "member_roles"))
        relations = tuple(
            _relation(r) for r in _expect(data.get("relations", []), list, "relations")
        )
        return cls(member_roles=roles, relations=relations)


@dataclass(frozen=True)
class TableInfo:
    """A table of the spec with what the templates need to know about it beyond the spec."""

    spec: TableSpec
    #: Sequences owned by serial columns (not identity columns), sorted by schema and name.
    serial_sequences: tuple[Sequence, ...]
    #: Every partition and inheritance child, recursively, sorted by schema and name.
    descendants: tuple[Descendant, ...] = ()
    #: The TN007 message the policy file would fail with when applied now, if any.
    layout_problem: str | None = None
    #: The member roles of the catalog, most privileged first.
    roles: tuple[str, ...] = ()
    #: What the tenant column is: ``uuid`` (it holds the tenant id), or ``bigint``, ``integer``
    #: or ``text`` (it holds the tenant key).
    tenant_type: str = "uuid"
    #: The primary key's columns but the tenant column, in key order: what identifies a row of
    #: the tenant in the audit trail (empty without a primary key).
    audit_key: tuple[str, ...] = ()


def qualified(schema: str, name: str) -> str:
    """``"schema"."name"``, every part quoted (as the templates write it)."""
    return '"' + schema.replace('"', '""') + '"."' + name.replace('"', '""') + '"'


# -- validation ---------------------------------------------------------------------------------

_TABLE_KINDS = ("table", "partitioned table")


def _problem(display: str, table: TableSpec, text: str) -> SpecError:
    return SpecError(f"{display}: table {table.key!r}: {text}")


def table_infos(display: str, tables: tuple[TableSpec, ...], snapshot: Snapshot) -> list[TableInfo]:
    """Check every table of the spec against the snapshot.

    Every problem of every table is found in one pass (the table is missing, not a table, has no
    column named by ``tenant_column``, or one of a type that cannot hold a tenant, or one that is
    not ``NOT NULL``, or ``partitions = "runtime"`` on a table that is not partitioned);
    :class:`SpecError` then names them all, one line each, tables sorted by schema and name."""
    infos: list[TableInfo] = []
    problems: list[str] = []
    for table in tables:
        problem = _table_problem(table, snapshot)
        if problem is not None:
            problems.append(str(_problem(display, table, problem)))
            continue
        relation = snapshot.relation(table.schema, table.name)
        assert relation is not None
        column = relation.column(table.tenant_column)
        assert column is not None
        infos.append(
            TableInfo(
                spec=table,
                serial_sequences=relation.serial_sequences,
                # Partitions created at run time are reached only through the table: the policy
                # file, its test and doctor's comparison know none of them.
                descendants=relation.descendants if table.partitions == "declared" else (),
                layout_problem=relation.layout_problem,
                roles=snapshot.member_roles,
                tenant_type=column.base_type or column.type,
                audit_key=tuple(c for c in relation.primary_key if c != table.tenant_column),
            )
        )
    if problems:
        raise SpecError("\n".join(problems))
    return infos


#: The types a tenant column may have: uuid holds the tenant id, the others the tenant key.
TENANT_TYPES = ("uuid", "bigint", "integer", "text")
#: The type suggested in the fix for a tenant column of another type.
_FIX_TYPES = {
    "smallint": "integer",
    "numeric": "bigint",
    "character varying": "text",
    "character": "text",
    "name": "text",
    "citext": "text",
}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_problem(table: TableSpec, snapshot: Snapshot) -> str | None:
    """What keeps one table from being a tenant table, or None."""
    relation = snapshot.relation(table.schema, table.name)
    if relation is None:
        return (
            f"no table {table.name!r} in schema {table.schema!r} in the database "
            "(names are case-sensitive; create the table before generating its policies)"
        )
    if relation.kind not in _TABLE_KINDS:
        return f"{table.key!r} is a {relation.kind}, not a table"
    if table.partitions == "runtime" and relation.kind != "partitioned table":
        return (
            f'partitions = "runtime" but {table.key!r} is a {relation.kind}, not a partitioned '
            "table: only a partitioned table has partitions created at run time; fix: remove "
            'partitions (or set it to "declared"), or partition the table'
        )
    name = table.tenant_column
    qtable, qcolumn = qualified(table.schema, table.name), _quote(name)
    column = relation.column(name)
    if column is None:
        return (
            f"table {table.key!r} has no column {name!r} (its tenant column: tenant_column, "
            f"default tenant_id); fix: name the table's tenant column with tenant_column, or "
            f"add one: alter table {qtable} add column {qcolumn} uuid not null (the tenant id; "
            f"bigint, integer or text for the tenant key)"
        )
    kind = column.base_type or column.type
    if kind not in TENANT_TYPES:
        what = (
            column.type
            if column.base_type is None
            else (f"{column.type}, a domain over {column.base_type}")
        )
        base = kind.split("(")[0]
        fix = _FIX_TYPES.get(base)
        target = (
            f"alter table {qtable} alter column {qcolumn} type {fix}"
            if fix is not None
            else f"alter table {qtable} alter column {qcolumn} type uuid (or bigint, integer, text)"
        )
        return (
            f"tenant column {name!r} of {table.key!r} has type {what}: a tenant column is uuid "
            f"(it holds the tenant id) or bigint, integer or text (it holds the tenant key); "
            f"fix: {target}, or name another column with tenant_column"
        )
    for excluded in table.audit_exclude:
        if relation.column(excluded) is None:
            return (
                f"audit_exclude names {excluded!r}, which is not a column of {table.key!r} "
                "(names are case-sensitive)"
            )
        if excluded == name or excluded in relation.primary_key:
            return (
                f"audit_exclude names {excluded!r}, a column of {table.key!r}'s tenant column or "
                "primary key: the audit trail needs it to say which row changed"
            )
    if not column.not_null:
        return (
            f"tenant column {name!r} of {table.key!r} is nullable: a row with a NULL {name} "
            f"belongs to no tenant and no policy shows it; fix: update the rows where {name} is "
            f"null, then alter table {qtable} alter column {qcolumn} set not null"
        )
    return None


# -- JSON ---------------------------------------------------------------------------------------


def _relation_dict(r: Relation) -> dict[str, Any]:
    return {
        "schema": r.schema,
        "name": r.name,
        "kind": r.kind,
        "columns": [
            {
                "name": c.name,
                "type": c.type,
                "not_null": c.not_null,
                "default": c.default,
                "identity": c.identity,
                "generated": c.generated,
                # Only domain columns carry it, so snapshots of other tables read as before.
                **({"base_type": c.base_type} if c.base_type is not None else {}),
            }
            for c in r.columns
        ],
        "indexes": [{"name": i.name, "definition": i.definition} for i in r.indexes],
        "constraints": [
            {"name": c.name, "kind": c.kind, "definition": c.definition} for c in r.constraints
        ],
        "serial_sequences": [{"schema": s.schema, "name": s.name} for s in r.serial_sequences],
        "descendants": [
            {
                "schema": d.schema,
                "name": d.name,
                "is_partition": d.is_partition,
                "parent_schema": d.parent_schema,
                "parent_name": d.parent_name,
            }
            for d in r.descendants
        ],
        "layout_problem": r.layout_problem,
        # Only tables with a primary key carry it, so snapshots of others read as before.
        **({"primary_key": list(r.primary_key)} if r.primary_key else {}),
        # Only tables with foreign keys carry them, so snapshots of others read as before.
        **(
            {
                "foreign_keys": [
                    {
                        "name": f.name,
                        "columns": list(f.columns),
                        "ref_schema": f.ref_schema,
                        "ref_name": f.ref_name,
                        "ref_columns": list(f.ref_columns),
                    }
                    for f in r.foreign_keys
                ]
            }
            if r.foreign_keys
            else {}
        ),
    }


def _expect(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise ValueError(f"{what} must be a {kind.__name__}, got {value!r}")
    return value


def _strings(value: Any, what: str) -> list[str]:
    items = _expect(value, list, what)
    for item in items:
        _expect(item, str, f"an item of {what}")
    return list(items)


def _str(data: Mapping[str, Any], key: str, what: str) -> str:
    return str(_expect(data.get(key), str, f"{what}.{key}"))


def _opt_str(data: Mapping[str, Any], key: str, what: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(_expect(value, str, f"{what}.{key}"))


def _bool(data: Mapping[str, Any], key: str, what: str) -> bool:
    return bool(_expect(data.get(key, False), bool, f"{what}.{key}"))


def _items(data: Mapping[str, Any], key: str, what: str) -> list[Mapping[str, Any]]:
    items = _expect(data.get(key, []), list, f"{what}.{key}")
    return [_expect(item, dict, f"an item of {what}.{key}") for item in items]


def _relation(raw: Any) -> Relation:
    data = _expect(raw, dict, "a relation")
    what = f"relation {data.get('schema')!r}.{data.get('name')!r}"
    return Relation(
        schema=_str(data, "schema", what),
        name=_str(data, "name", what),
        kind=_str(data, "kind", what),
        columns=tuple(
            Column(
                name=_str(c, "name", what),
                type=_str(c, "type", what),
                not_null=_bool(c, "not_null", what),
                default=_opt_str(c, "default", what),
                identity=_opt_str(c, "identity", what),
                generated=_bool(c, "generated", what),
                base_type=_opt_str(c, "base_type", what),
            )
            for c in _items(data, "columns", what)
        ),
        indexes=tuple(
            Index(_str(i, "name", what), _str(i, "definition", what))
            for i in _items(data, "indexes", what)
        ),
        constraints=tuple(
            Constraint(_str(c, "name", what), _str(c, "kind", what), _str(c, "definition", what))
            for c in _items(data, "constraints", what)
        ),
        serial_sequences=tuple(
            Sequence(_str(s, "schema", what), _str(s, "name", what))
            for s in _items(data, "serial_sequences", what)
        ),
        descendants=tuple(
            Descendant(
                _str(d, "schema", what),
                _str(d, "name", what),
                _bool(d, "is_partition", what),
                _str(d, "parent_schema", what),
                _str(d, "parent_name", what),
            )
            for d in _items(data, "descendants", what)
        ),
        layout_problem=_opt_str(data, "layout_problem", what),
        primary_key=tuple(_strings(data.get("primary_key", []), f"{what}.primary_key")),
        foreign_keys=tuple(
            ForeignKey(
                _str(f, "name", what),
                tuple(_strings(f.get("columns", []), f"{what}.foreign_keys.columns")),
                _str(f, "ref_schema", what),
                _str(f, "ref_name", what),
                tuple(_strings(f.get("ref_columns", []), f"{what}.foreign_keys.ref_columns")),
            )
            for f in _items(data, "foreign_keys", what)
        ),
    )
