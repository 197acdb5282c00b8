"""Read and validate a ``tenancy.toml`` spec.

A spec names the tenant tables and, per table, which member roles may read and write it::

    [tables."app.projects"]
    read = ["owner", "admin", "member", "viewer"]
    write = ["owner", "admin"]
    owner_access = false

:func:`parse_spec` checks the file's structure; the member roles are the labels of the
enum ``tenancy.member_role`` in the database, so role names are checked, and the defaults filled
in, by :func:`bind_roles` once the catalog snapshot is read. Read defaults to every role, write
to every role but the least privileged (``viewer``). ``tenant_column`` names the column holding
each row's tenant (default ``tenant_id``). The catalog checks (the table exists, the tenant column
exists, is ``NOT NULL`` and of a type that can hold a tenant: ``uuid`` for the tenant id,
``bigint``, ``integer`` or ``text`` for the tenant key; a table with ``partitions = "runtime"`` is
partitioned) live in :mod:`pgtenancy.generator.snapshot`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TOP_LEVEL_KEYS: tuple[str, ...] = ("tables",)
TABLE_KEYS: tuple[str, ...] = ("owner_access", "read", "tenant_column", "write") + (
    "sample",
    "fixtures",
)
#: Read by ``pgtenancy adopt`` only (how a missing tenant column is filled).
TABLE_KEYS += ("tenant_from",)
#: The audit trail: ``audit = false`` turns a table's audit triggers off (on by default), and
#: ``audit_exclude`` names columns whose values never enter the trail.
TABLE_KEYS += ("audit", "audit_exclude")
#: How the partitions of a partitioned table come to be: ``partitions = "declared"`` (the
#: default: the policy file secures each one the catalog holds) or ``"runtime"`` (created at run
#: time by whoever owns the table's partitioning: the file secures the partitioned table alone).
TABLE_KEYS += ("partitions",)
#: Personal data (GDPR): ``subject`` says whose rows these are (a column of this table naming
#: the data subject, or ``{ column = "...", references = "schema.table" }`` following a foreign
#: key to another table with a subject), ``pii`` names the personal columns, ``erase`` what
#: erasure does (``"anonymize"`` or ``"delete"``) and ``anonymize`` each column's action
#: (``"null"``, ``"pseudonym"`` or ``{ fixed = "value" }``; default ``"null"`` for a nullable
#: column, ``"pseudonym"`` for a NOT NULL text column).
TABLE_KEYS += ("subject", "pii", "erase", "anonymize")
ERASE_MODES: tuple[str, ...] = ("anonymize", "delete")
#: The closed vocabulary of anonymizing actions (``{ fixed = "..." }`` is the third).
ANONYMIZE_ACTIONS: tuple[str, ...] = ("null", "pseudonym")
PARTITION_MODES: tuple[str, ...] = ("declared", "runtime")
#: The tenant column when the spec names none.
DEFAULT_TENANT_COLUMN = "tenant_id"


class SpecError(Exception):
    """The spec cannot be turned into SQL; the message names the file, table and value."""


@dataclass(frozen=True)
class TableEntry:
    """A table as the spec file writes it: ``read``/``write`` None when left to the default.

    Role names are not checked yet (the roles come from the catalog: :func:`bind_roles`)."""

    key: str
    schema: str
    name: str
    read: tuple[object, ...] | None
    write: tuple[object, ...] | None
    owner_access: bool
    #: Test data for the generated pgTAP test, checked as the spec is read (see _test_data).
    sample: tuple[tuple[str, str], ...] = ()
    fixtures: tuple[str, ...] = ()
    #: The column naming each row's tenant (``tenant_column``; its type decides what it holds).
    tenant_column: str = DEFAULT_TENANT_COLUMN
    #: ``tenant_from``, read by ``pgtenancy adopt`` only: (the table's foreign key columns, the
    #: referenced table) from which a missing tenant column is filled; None when not given.
    tenant_from: tuple[tuple[str, ...], str] | None = None
    #: Generate audit triggers (``audit``, default true).
    audit: bool = True
    #: Columns left out of the audit rows (``audit_exclude``), sorted.
    audit_exclude: tuple[str, ...] = ()
    #: ``partitions``: ``declared`` or ``runtime`` (see :data:`PARTITION_MODES`).
    partitions: str = "declared"
    #: Personal data (see :class:`PersonalData`); None when the table declares none.
    personal: PersonalData | None = None


@dataclass(frozen=True)
class PersonalData:
    """A table's personal data: whose rows they are and what erasure does to them.

    ``subject_column`` is this table's column naming the subject; ``references`` (schema, name)
    is set when that column follows a foreign key to another table with a subject (the catalog
    check finds the key). ``actions`` maps each personal column to ``null``, ``pseudonym`` or
    ``fixed:<value>``; columns without an explicit action get theirs from the catalog."""

    subject_column: str
    references: tuple[str, str] | None
    pii: tuple[str, ...]
    erase: str
    actions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TableSpec:
    """One tenant table with its roles checked against the member roles of the catalog.

    Role tuples are sorted, so output never depends on order."""

    key: str
    schema: str
    name: str
    read: tuple[str, ...]
    write: tuple[str, ...]
    owner_access: bool
    # -- test data for the generated pgTAP test (see _test_data) --
    #: Column name to SQL expression: the row the test's writers insert (sorted by column).
    sample: tuple[tuple[str, str], ...] = ()
    #: SQL statements run in a service context of each fixture tenant first (parent rows).
    fixtures: tuple[str, ...] = ()
    #: The column naming each row's tenant: a uuid holds the tenant id; bigint, integer or text
    #: hold the tenant key (the catalog check decides).
    tenant_column: str = DEFAULT_TENANT_COLUMN
    #: Generate audit triggers (``audit``, default true).
    audit: bool = True
    #: Columns left out of the audit rows (``audit_exclude``), sorted.
    audit_exclude: tuple[str, ...] = ()
    #: ``declared``: the policy file secures every partition and inheritance child the catalog
    #: holds; ``runtime``: the table is partitioned and its partitions, created at run time, are
    #: reached only through it (the file renders none of them; the catalog check says so).
    partitions: str = "declared"
    #: Personal data (see :class:`PersonalData`); None when the table declares none.
    personal: PersonalData | None = None

    @property
    def file_name(self) -> str:
        return f"{self.schema}.{self.name}.sql"


@dataclass(frozen=True)
class Spec:
    """A spec file checked for structure: ``display`` is the path written into generated
    headers. Tables are sorted by schema and name."""

    path: Path
    display: str
    tables: tuple[TableEntry, ...]


def display_path(path: Path) -> str:
    """The spec path as the user gave it, made relative to the working directory if possible."""
    if path.is_absolute():
        try:
            return path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return path.as_posix()
    return path.as_posix()


def _fail(display: str, table: str | None, problem: str) -> SpecError:
    where = f"{display}: table {table!r}: " if table is not None else f"{display}: "
    return SpecError(where + problem)


def _unknown_role(
    display: str, table: str, key: str, role: object, roles: Sequence[str]
) -> SpecError:
    return _fail(
        display,
        table,
        f"unknown role {role!r} in {key} (valid roles: {', '.join(sorted(roles))})",
    )


def _roles(display: str, table: str, key: str, value: object) -> tuple[object, ...] | None:
    """The role names as written (unchecked against the catalog); None when absent."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise _fail(
            display,
            table,
            f"{key} must be a list of role names, got {value!r} ({type(value).__name__})",
        )
    seen: list[object] = []
    for role in value:
        if role in seen:
            raise _fail(display, table, f"duplicate role {role!r} in {key}")
        seen.append(role)
    return tuple(seen)


def bind_roles(
    spec: Spec, roles: Sequence[str], problems: list[str] | None = None
) -> tuple[TableSpec, ...]:
    """Check the spec's role names against the member roles of the catalog (most privileged
    first) and fill in the defaults: read every role, write every role but the last.

    A table with unknown roles, or a write role it cannot read, raises :class:`SpecError`; when
    ``problems`` is given, each problem is appended to it instead (one line each) and the table
    is left out, so that every table's problems are found in one run."""
    if not roles:
        raise _fail(
            spec.display,
            None,
            "the database has no member roles (enum type tenancy.member_role is missing or "
            "empty): run pgtenancy migrate on it first",
        )
    bound: list[TableSpec] = []
    for entry in spec.tables:
        found: list[SpecError] = []
        checked: dict[str, list[str]] = {}
        for key, given, default in (
            ("read", entry.read, roles),
            ("write", entry.write, roles[:-1] or roles),
        ):
            checked[key] = []
            for role in given if given is not None else default:
                if not isinstance(role, str) or role not in roles:
                    found.append(_unknown_role(spec.display, entry.key, key, role, roles))
                else:
                    checked[key].append(role)
        read, write = checked["read"], checked["write"]
        unreadable = [r for r in sorted(write) if r not in read]
        if unreadable and not found:
            found.append(
                _fail(
                    spec.display,
                    entry.key,
                    f"write role {unreadable[0]!r} is not in read: UPDATE and DELETE only reach "
                    "rows the role can SELECT, so every write role must also be a read role",
                )
            )
        if found:
            if problems is None:
                raise found[0]
            problems.extend(str(f) for f in found)
            continue
        bound.append(
            TableSpec(
                entry.key,
                entry.schema,
                entry.name,
                tuple(sorted(read)),
                tuple(sorted(write)),
                entry.owner_access,
                entry.sample,
                entry.fixtures,
                entry.tenant_column,
                entry.audit,
                entry.audit_exclude,
                entry.partitions,
                entry.personal,
            )
        )
    return tuple(bound)


def _split_name(display: str, key: str) -> tuple[str, str]:
    parts = key.split(".")
    if len(parts) != 2 or not all(parts):
        raise _fail(
            display,
            key,
            f"table name {key!r} is not in schema.table form "
            '(exactly one dot, e.g. "app.projects"; names are taken literally, case included)',
        )
    for part in parts:
        if "/" in part:
            raise _fail(
                display,
                key,
                f"table name {key!r} contains '/', which cannot be part of a generated file name",
            )
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in part):
            raise _fail(display, key, f"table name {key!r} contains a control character")
    return parts[0], parts[1]


def _tenant_column(display: str, table: str, value: object) -> str:
    """``tenant_column = "company_id"``: a column name as PostgreSQL stores it (taken literally)."""
    if not isinstance(value, str) or not value:
        raise _fail(
            display, table, f"tenant_column must be a column name in a string, got {value!r}"
        )
    if len(value.encode("utf-8")) > 63:
        raise _fail(
            display,
            table,
            f"tenant_column {value!r} is longer than PostgreSQL's 63-byte identifier limit",
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise _fail(display, table, f"tenant_column {value!r} contains a control character")
    return value


def _tenant_from(display: str, table: str, value: object) -> tuple[tuple[str, ...], str] | None:
    """``tenant_from = { column = "campaign_id", references = "public.campaigns" }`` (``column``
    may be a list, for a composite foreign key); checked against the catalog by ``adopt``."""
    if value is None:
        return None
    shape = 'tenant_from = { column = "campaign_id", references = "public.campaigns" }'
    if not isinstance(value, dict) or set(value) != {"column", "references"}:
        raise _fail(display, table, f"tenant_from must be {shape}, got {value!r}")
    column, references = value["column"], value["references"]
    columns = [column] if isinstance(column, str) else column
    if (
        not isinstance(columns, list)
        or not columns
        or not all(isinstance(c, str) and c for c in columns)
    ):
        raise _fail(
            display, table, f"tenant_from column must be a column name or a list, got {column!r}"
        )
    if not isinstance(references, str):
        raise _fail(
            display, table, f"tenant_from references must be a table name, got {references!r}"
        )
    _split_name(display, references)
    return tuple(columns), references


def _audit(display: str, table: str, body: dict[str, object]) -> tuple[bool, tuple[str, ...]]:
    """``audit = true|false`` and ``audit_exclude = ["column", ...]`` (checked against the
    catalog later: the columns exist, and are neither the tenant column nor in the primary key)."""
    audit = body.get("audit", True)
    if not isinstance(audit, bool):
        raise _fail(display, table, f"audit must be true or false, got {audit!r}")
    exclude = body.get("audit_exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(c, str) and c for c in exclude):
        raise _fail(
            display, table, f"audit_exclude must be a list of column names, got {exclude!r}"
        )
    if len(set(exclude)) != len(exclude):
        raise _fail(display, table, f"audit_exclude names a column twice: {exclude!r}")
    if exclude and not audit:
        raise _fail(display, table, "audit_exclude is set but audit = false: remove one")
    return audit, tuple(sorted(exclude))


def _partitions(display: str, table: str, value: object) -> str:
    """``partitions = "declared"|"runtime"`` (the table being partitioned is a catalog check)."""
    if not isinstance(value, str) or value not in PARTITION_MODES:
        raise _fail(
            display,
            table,
            f"partitions must be one of {', '.join(repr(m) for m in PARTITION_MODES)}, "
            f"got {value!r}",
        )
    return value


def _personal(display: str, table: str, body: dict[str, object]) -> PersonalData | None:
    """``subject``, ``pii``, ``erase`` and ``anonymize`` (the columns are catalog checks)."""
    given = [k for k in ("subject", "pii", "erase", "anonymize") if k in body]
    if not given:
        return None
    if "subject" not in body:
        raise _fail(
            display,
            table,
            f"{given[0]} is set but subject is not: personal data needs a subject "
            '(subject = "id", or subject = { column = "customer_id", references = '
            '"app.customers" })',
        )
    subject = body["subject"]
    references: tuple[str, str] | None = None
    if isinstance(subject, dict):
        if set(subject) != {"column", "references"}:
            raise _fail(
                display,
                table,
                'subject must be a column name or { column = "...", references = '
                f'"schema.table" }}, got {subject!r}',
            )
        column, target = subject["column"], subject["references"]
        if not isinstance(target, str):
            raise _fail(display, table, f"subject references must be a table name, got {target!r}")
        references = _split_name(display, target)
        if f"{references[0]}.{references[1]}" == table:
            raise _fail(display, table, "subject references the table itself")
    else:
        column = subject
    if not isinstance(column, str) or not column:
        raise _fail(display, table, f"subject column must be a column name, got {column!r}")
    pii = body.get("pii", [])
    if not isinstance(pii, list) or not all(isinstance(c, str) and c for c in pii):
        raise _fail(display, table, f"pii must be a list of column names, got {pii!r}")
    if len(set(pii)) != len(pii):
        raise _fail(display, table, f"pii names a column twice: {pii!r}")
    erase = body.get("erase", "anonymize")
    if not isinstance(erase, str) or erase not in ERASE_MODES:
        raise _fail(
            display,
            table,
            f"erase must be one of {', '.join(repr(m) for m in ERASE_MODES)}, got {erase!r}",
        )
    if column in pii and erase == "anonymize":
        raise _fail(
            display,
            table,
            f"the subject column {column!r} is in pii: anonymizing it would lose whose rows "
            'these are (use erase = "delete", or keep a non-personal subject id)',
        )
    raw_actions = body.get("anonymize", {})
    if not isinstance(raw_actions, dict):
        raise _fail(
            display,
            table,
            "anonymize must be a table of column = action "
            f'("null", "pseudonym" or {{ fixed = "value" }}), got {raw_actions!r}',
        )
    if raw_actions and erase != "anonymize":
        raise _fail(display, table, f'anonymize is set but erase = "{erase}": remove one')
    actions: list[tuple[str, str]] = []
    for name, action in raw_actions.items():
        if name not in pii:
            raise _fail(display, table, f"anonymize names {name!r}, which is not in pii")
        if (
            isinstance(action, dict)
            and set(action) == {"fixed"}
            and isinstance(action["fixed"], str)
        ):
            if "\x00" in action["fixed"]:
                raise _fail(display, table, f"anonymize {name!r}: fixed value contains NUL")
            actions.append((name, "fixed:" + action["fixed"]))
        elif isinstance(action, str) and action in ANONYMIZE_ACTIONS:
            actions.append((name, action))
        else:
            raise _fail(
                display,
                table,
                f'anonymize {name!r} must be "null", "pseudonym" or '
                f'{{ fixed = "value" }}, got {action!r}',
            )
    return PersonalData(column, references, tuple(sorted(pii)), erase, tuple(sorted(actions)))


# -- test data: sample and fixtures, used only by the generated pgTAP test ----------------------


def _test_data(
    display: str, table: str, body: dict[str, object], tenant_column: str = DEFAULT_TENANT_COLUMN
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """``sample = { column = "SQL expression" }`` and ``fixtures = ["SQL statement", ...]``."""
    sample = body.get("sample", {})
    if not isinstance(sample, dict):
        raise _fail(
            display, table, f"sample must be a table of column = SQL expression, got {sample!r}"
        )
    for column, expression in sample.items():
        if column == tenant_column:
            raise _fail(display, table, f"sample sets {tenant_column}: the generated test sets it")
        if not isinstance(expression, str) or not expression.strip():
            raise _fail(
                display,
                table,
                f"sample value of column {column!r} must be an SQL expression in a string, "
                f"got {expression!r}",
            )
    fixtures = body.get("fixtures", [])
    if not isinstance(fixtures, list) or not all(
        isinstance(f, str) and f.strip() for f in fixtures
    ):
        raise _fail(display, table, f"fixtures must be a list of SQL statements, got {fixtures!r}")
    return tuple(sorted(sample.items())), tuple(fixtures)


def parse_spec(text: str, path: Path, display: str | None = None) -> Spec:
    """Check the structure of spec text; ``path`` is only used for messages and headers."""
    shown = display if display is not None else display_path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(shown, None, f"invalid TOML: {exc}") from exc
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise _fail(
                shown,
                None,
                f"unknown top-level key {key!r} (allowed: {', '.join(TOP_LEVEL_KEYS)})",
            )
    raw_tables = data.get("tables", {})
    if not isinstance(raw_tables, dict):
        raise _fail(shown, None, f"tables must be a table of tables, got {raw_tables!r}")
    tables: list[TableEntry] = []
    for key, body in raw_tables.items():
        schema, name = _split_name(shown, key)
        if not isinstance(body, dict):
            raise _fail(shown, key, f"expected a table of settings, got {body!r}")
        for item in body:
            if item not in TABLE_KEYS:
                raise _fail(
                    shown,
                    key,
                    f"unknown key {item!r} (allowed: {', '.join(TABLE_KEYS)})",
                )
        read = _roles(shown, key, "read", body.get("read"))
        if read == ():
            raise _fail(shown, key, "read = [] names no role: a tenant table needs readers")
        write = _roles(shown, key, "write", body.get("write"))
        owner_access = body.get("owner_access", False)
        if not isinstance(owner_access, bool):
            raise _fail(shown, key, f"owner_access must be true or false, got {owner_access!r}")
        tenant_column = _tenant_column(shown, key, body.get("tenant_column", DEFAULT_TENANT_COLUMN))
        sample, fixtures = _test_data(shown, key, body, tenant_column)
        tables.append(
            TableEntry(
                key,
                schema,
                name,
                read,
                write,
                owner_access,
                sample,
                fixtures,
                tenant_column,
                _tenant_from(shown, key, body.get("tenant_from")),
                *_audit(shown, key, body),
                _partitions(shown, key, body.get("partitions", "declared")),
                _personal(shown, key, body),
            )
        )
    tables.sort(key=lambda t: (t.schema, t.name))
    return Spec(path=path, display=shown, tables=tuple(tables))


def load_spec(path: Path) -> Spec:
    """Read the spec file at ``path`` and check its structure."""
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(shown, None, f"cannot read the spec: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise _fail(shown, None, f"invalid TOML: not UTF-8 ({exc})") from exc
    return parse_spec(text, path, shown)
