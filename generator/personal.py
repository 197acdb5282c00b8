"""Personal data (GDPR): the SQL of each table's export and erasure functions.

A table whose spec entry has ``subject`` gets two functions in its own schema, rendered into its
policy file: ``tenancy_export_<table>(p_subjects text[])`` returns the current tenant's rows of
those subjects (and their audit keys) as JSON, and ``tenancy_erase_<table>(p_subjects text[])``
anonymizes or deletes them. Both run as the caller (row level security applies; the tenant is
also named explicitly) and resolve nothing through ``search_path``. A table with
``subject = { column, references }`` reaches its subjects through the foreign key from that
column to the referenced table, recursively. Everything here is checked against the catalog
snapshot; problems are returned as lines, like the other catalog checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from .snapshot import Column, Relation, Snapshot, TableInfo, qualified

#: Column types a pseudonym (text) can be written into.
PSEUDONYM_TYPES = ("text", "character varying", "citext")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class PersonalInfo:
    """What the templates need to render one table's export and erasure functions."""

    #: ``"schema"."tenancy_export_table"`` and the erasure function, quoted.
    export_function: str
    erase_function: str
    #: The condition selecting the rows of ``p_subjects`` (alias ``t``), tenant included.
    condition: str
    #: ``pg_catalog.jsonb_build_object(...)::pg_catalog.text`` of alias ``t``: the audit key.
    key_expression: str
    #: ``t."a", t."b"``: the primary key, to order rows by.
    order_by: str
    erase: str
    #: (quoted column, SQL expression) for ``anonymize``.
    assignments: tuple[tuple[str, str], ...]
    #: The subject column, the referenced table (quoted) or None, the pii columns, the depth
    #: of the references chain (0 for a table naming its subjects itself).
    subject_column: str
    references: str | None
    pii: tuple[str, ...]
    depth: int
    #: The subject column holds the subject id itself (depth 0, or a foreign key onto the
    #: subject column of a table at depth 0): the audit trail's rows of deleted rows name it.
    direct: bool = False


#: Subject column types compared in their own type (so an index on the column serves the
#: lookup): the pattern a subject id must match to be cast (short enough never to overflow:
#: a longer id names no row rather than raising), and the cast. The id must also be the
#: canonical spelling of the value (its cast back to text), so '011' never names 11.
_TYPED_SUBJECTS = {
    "bigint": (r"^-?[0-9]{1,18}$", "pg_catalog.int8"),
    "integer": (r"^-?[0-9]{1,9}$", "pg_catalog.int4"),
    "smallint": (r"^-?[0-9]{1,4}$", "pg_catalog.int2"),
    "uuid": (r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", "pg_catalog.uuid"),
}


def _subject_match(alias: str, column: Column) -> str:
    """``<alias>.<column>`` is one of ``p_subjects`` (text): compared in the column's type when
    it is a number or a uuid, so its index serves; as text otherwise (a text or varchar column's
    index serves that comparison as it is)."""
    ref = f"{alias}.{_q(column.name)}"
    kind = column.base_type or column.type
    if kind in _TYPED_SUBJECTS:
        pattern, cast = _TYPED_SUBJECTS[kind]
        return (
            f"{ref} operator (pg_catalog.=) any(array(select s.v::{cast} "
            f"from pg_catalog.unnest(p_subjects) as s (v) "
            f"where s.v operator (pg_catalog.~) {_lit(pattern)} "
            f"and s.v::{cast}::pg_catalog.text operator (pg_catalog.=) s.v))"
        )
    return f"{ref}::pg_catalog.text operator (pg_catalog.=) any(p_subjects)"


def _tenant_condition(alias: str, column: str, tenant_type: str) -> str:
    value = {
        "uuid": "tenancy.current_tenant_id()",
        "bigint": "tenancy.tenant_key_int8(tenancy.current_tenant_key())",
        "integer": "tenancy.tenant_key_int4(tenancy.current_tenant_key())",
        "text": "tenancy.current_tenant_key()",
    }[tenant_type]
    return f"{alias}.{_q(column)} operator (pg_catalog.=) {value}"


def _action(info: TableInfo, relation: Relation, column: Column, given: str | None) -> str:
    """The SQL expression a personal column is set to, or raise ValueError with the reason."""
    table = info.spec
    kind = column.base_type or column.type
    action = given or ("null" if not column.not_null else "pseudonym")
    if action == "null":
        if column.not_null:
            raise ValueError(
                f'anonymize {column.name!r}: "null" on a NOT NULL column; use "pseudonym" '
                'or { fixed = "value" }'
            )
        return "null"
    if action == "pseudonym":
        if kind not in PSEUDONYM_TYPES and not kind.startswith("character varying"):
            raise ValueError(
                f"anonymize {column.name!r}: no default action for a NOT NULL column of type "
                f'{column.type}; give one: anonymize = {{ {column.name} = {{ fixed = "..." }} }}'
            )
        assert table.personal is not None
        label = f"{table.schema}.{table.name}.{column.name}"
        return (
            "('erased-' operator (pg_catalog.||) pg_catalog.left(pg_catalog.encode("
            "pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.concat_ws(':', "
            f"t.{_q(table.tenant_column)}::pg_catalog.text, {_lit(label)}, "
            f"t.{_q(table.personal.subject_column)}::pg_catalog.text), 'UTF8')), 'hex'), 16))"
            f"::{column.type}"
        )
    assert action.startswith("fixed:")
    return f"{_lit(action[len('fixed:') :])}::{column.type}"


def personal_infos(
    infos: list[TableInfo], snapshot: Snapshot, display: str
) -> tuple[dict[str, PersonalInfo], list[str]]:
    """Per table key with personal data, its :class:`PersonalInfo`; and the problems found."""
    by_key = {i.spec.key: i for i in infos}
    problems: list[str] = []
    result: dict[str, PersonalInfo] = {}
    conditions: dict[str, tuple[str, int, bool] | None] = {}

    def fail(key: str, text: str) -> None:
        problems.append(f"{display}: table {key!r}: {text}")

    def condition(key: str, alias: str, seen: tuple[str, ...]) -> tuple[str, int, bool] | None:
        """The condition for the subjects' rows of ``key`` under ``alias``, the depth, and
        whether the subject column holds the subject id itself."""
        info = by_key[key]
        personal = info.spec.personal
        assert personal is not None
        relation = snapshot.relation(info.spec.schema, info.spec.name)
        assert relation is not None
        column = relation.column(personal.subject_column)
        if column is None:
            fail(key, f"subject column {personal.subject_column!r} does not exist")
            return None
        match = _subject_match(alias, column)
        if personal.references is None:
            return match, 0, True
        ref_key = ".".join(personal.references)
        if ref_key in seen:
            fail(key, f"subject references form a cycle: {' -> '.join((*seen, ref_key))}")
            return None
        target = by_key.get(ref_key)
        if target is None or target.spec.personal is None:
            fail(
                key,
                f"subject references {ref_key!r}, which is not a table of this spec with a subject",
            )
            return None
        fk = next(
            (
                f
                for f in relation.foreign_keys
                if (f.ref_schema, f.ref_name) == personal.references
                and personal.subject_column in f.columns
            ),
            None,
        )
        if fk is None:
            fail(
                key,
                f"subject column {personal.subject_column!r} is in no foreign key to {ref_key}: "
                "add one (with the tenant column) so the subject can be followed",
            )
            return None
        target_personal = target.spec.personal
        inner = condition(ref_key, alias + "r", (*seen, ref_key))
        if inner is None:
            return None
        ref_column = fk.ref_columns[fk.columns.index(personal.subject_column)]
        if target_personal.references is None and ref_column == target_personal.subject_column:
            # The key holds the subject itself: no join needed.
            return match, inner[1] + 1, True
        join = " and ".join(
            f"{alias}r.{_q(rc)} operator (pg_catalog.=) {alias}.{_q(c)}"
            for c, rc in zip(fk.columns, fk.ref_columns, strict=True)
        )
        return (
            f"exists (select from {qualified(target.spec.schema, target.spec.name)} as {alias}r "
            f"where {join} and {inner[0]})",
            inner[1] + 1,
            False,
        )

    for info in infos:
        table = info.spec
        personal = table.personal
        if personal is None:
            continue
        relation = snapshot.relation(table.schema, table.name)
        assert relation is not None
        if relation.column(personal.subject_column) is None:
            fail(table.key, f"subject column {personal.subject_column!r} does not exist")
            continue
        if not relation.primary_key:
            fail(table.key, "a table with personal data needs a primary key (the audit key)")
            continue
        assignments: list[tuple[str, str]] = []
        actions = dict(personal.actions)
        bad = False
        for name in personal.pii:
            column = relation.column(name)
            if column is None:
                fail(table.key, f"pii column {name!r} does not exist")
                bad = True
                continue
            if name == table.tenant_column:
                fail(table.key, f"pii names the tenant column {name!r}")
                bad = True
                continue
            if personal.erase == "anonymize":
                if name in relation.primary_key:
                    fail(
                        table.key,
                        f"pii column {name!r} is in the primary key: anonymizing it would "
                        'change the row\'s identity (use erase = "delete")',
                    )
                    bad = True
                    continue
                try:
                    assignments.append(
                        (_q(name), _action(info, relation, column, actions.get(name)))
                    )
                except ValueError as exc:
                    fail(table.key, str(exc))
                    bad = True
        if table.key not in conditions:
            conditions[table.key] = condition(table.key, "t", (table.key,))
        found = conditions[table.key]
        if bad or found is None:
            continue
        for name in (f"tenancy_export_{table.name}", f"tenancy_erase_{table.name}"):
            if len(name.encode("utf-8")) > 63:
                fail(
                    table.key,
                    f"function name {name!r} is longer than PostgreSQL's 63-byte limit: "
                    "shorten the table name",
                )
                bad = True
        if bad:
            continue
        keys = relation.primary_key
        audit_key = [c for c in keys if c != table.tenant_column]
        key_expression = (
            "pg_catalog.jsonb_build_object("
            + ", ".join(f"{_lit(c)}, t.{_q(c)}" for c in audit_key)
            + ")::pg_catalog.text"
        )
        result[table.key] = PersonalInfo(
            export_function=qualified(table.schema, f"tenancy_export_{table.name}"),
            erase_function=qualified(table.schema, f"tenancy_erase_{table.name}"),
            condition=_tenant_condition("t", table.tenant_column, info.tenant_type)
            + " and "
            + found[0],
            key_expression=key_expression,
            order_by=", ".join(f"t.{_q(c)}" for c in keys),
            erase=personal.erase,
            assignments=tuple(assignments),
            subject_column=personal.subject_column,
            references=(qualified(*personal.references) if personal.references else None),
            pii=personal.pii,
            depth=found[1],
            direct=found[2],
        )
    return result, problems
