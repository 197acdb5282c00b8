"""Read and validate a ``tenancy.toml`` spec.

A spec names the tenant tables and, per table, which member roles may read and write it::

    [tables."app.projects"]
    read = ["owner", "admin", "member", "viewer"]
    write = ["owner", "admin"]
    owner_access = false

Everything that can be checked without a database is checked here; the catalog checks
(the table exists, ``tenant_id`` is a uuid column) live in :mod:`pgtenancy.generator.catalog`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

#: Member roles in decreasing order of privilege.
ROLES: tuple[str, ...] = ("owner", "admin", "member", "viewer")
DEFAULT_READ: tuple[str, ...] = ("owner", "admin", "member", "viewer")
DEFAULT_WRITE: tuple[str, ...] = ("owner", "admin", "member")

TOP_LEVEL_KEYS: tuple[str, ...] = ("tables",)
TABLE_KEYS: tuple[str, ...] = ("owner_access", "read", "write") + ("sample", "fixtures")


class SpecError(Exception):
    """The spec cannot be turned into SQL; the message names the file, table and value."""


@dataclass(frozen=True)
class TableSpec:
    """One tenant table of the spec. Role tuples are sorted, so output never depends on order."""

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

    @property
    def file_name(self) -> str:
        return f"{self.schema}.{self.name}.sql"


@dataclass(frozen=True)
class Spec:
    """A validated spec: ``display`` is the path written into generated headers."""

    path: Path
    display: str
    tables: tuple[TableSpec, ...]


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


def _roles(display: str, table: str, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _fail(
            display,
            table,
            f"{key} must be a list of role names, got {value!r} ({type(value).__name__})",
        )
    seen: set[str] = set()
    for role in value:
        if not isinstance(role, str) or role not in ROLES:
            raise _fail(
                display,
                table,
                f"unknown role {role!r} in {key} (valid roles: {', '.join(sorted(ROLES))})",
            )
        if role in seen:
            raise _fail(display, table, f"duplicate role {role!r} in {key}")
        seen.add(role)
    return tuple(sorted(seen))


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


# -- test data: sample and fixtures, used only by the generated pgTAP test ----------------------


def _test_data(
    display: str, table: str, body: dict[str, object]
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """``sample = { column = "SQL expression" }`` and ``fixtures = ["SQL statement", ...]``."""
    sample = body.get("sample", {})
    if not isinstance(sample, dict):
        raise _fail(
            display, table, f"sample must be a table of column = SQL expression, got {sample!r}"
        )
    for column, expression in sample.items():
        if column == "tenant_id":
            raise _fail(display, table, "sample sets tenant_id: the generated test sets it")
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
    """Validate spec text; ``path`` is only used for messages and headers."""
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
    tables: list[TableSpec] = []
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
        read = _roles(shown, key, "read", body.get("read", list(DEFAULT_READ)))
        if not read:
            raise _fail(shown, key, "read = [] names no role: a tenant table needs readers")
        write = _roles(shown, key, "write", body.get("write", list(DEFAULT_WRITE)))
        unreadable = [r for r in write if r not in read]
        if unreadable:
            raise _fail(
                shown,
                key,
                f"write role {unreadable[0]!r} is not in read: UPDATE and DELETE only reach rows "
                "the role can SELECT, so every write role must also be a read role",
            )
        owner_access = body.get("owner_access", False)
        if not isinstance(owner_access, bool):
            raise _fail(shown, key, f"owner_access must be true or false, got {owner_access!r}")
        sample, fixtures = _test_data(shown, key, body)
        tables.append(TableSpec(key, schema, name, read, write, owner_access, sample, fixtures))
    tables.sort(key=lambda t: (t.schema, t.name))
    return Spec(path=path, display=shown, tables=tuple(tables))


def load_spec(path: Path) -> Spec:
    """Read and validate the spec file at ``path``."""
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(shown, None, f"cannot read the spec: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise _fail(shown, None, f"invalid TOML: not UTF-8 ({exc})") from exc
    return parse_spec(text, path, shown)
