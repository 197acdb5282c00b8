"""``pgtenancy doctor``: run the numbered lints installed in schema ``tenancy`` over a database.

Each lint is a view ``tenancy.lint_NNNN_<name>`` (source ``sql/lints/NNNN_<name>.sql``, explained
in ``docs/lints/NNNN_<name>.md``) returning ``code``, ``name``, ``level`` (ERROR, WARN or INFO),
``object``, ``detail`` and ``remediation``, one row per problem found. Running them changes
nothing; they read the catalog, and lint 0012 counts rows (as the caller).

With a spec file, :func:`spec_findings` adds lint 0019, checked here rather than in SQL: every
table the spec lists must be a tenant table (a policy calls the tenant context) whose policies
compare the tenant column the spec names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from psycopg import sql

#: Levels from the least to the most severe.
LEVELS = ("INFO", "WARN", "ERROR")

_LINT_VIEWS = """
select c.relname::text
from pg_catalog.pg_class as c
where c.relnamespace = pg_catalog.to_regnamespace('tenancy')
  and c.relkind = 'v'
  and c.relname ~ '^lint_[0-9]{4}_'
order by c.relname
"""


@dataclass(frozen=True)
class Finding:
    """One problem a lint found."""

    code: str
    name: str
    level: str
    object: str
    detail: str
    remediation: str


def lint_views(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """The names of the lint views installed in schema tenancy, in code order."""
    return [str(r[0]) for r in conn.execute(_LINT_VIEWS)]


#: Lint 0019 (``docs/lints/0019_spec_table_not_tenant_table.md``).
SPEC_CODE, SPEC_NAME = "0019", "spec_table_not_tenant_table"

_SPEC_TABLE = """
select c.oid::pg_catalog.regclass::text, tt.relid is not null, tt.tenant_column::text
from (
    select pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %(schema)s::text, %(name)s::text))
    as oid
) as c
left join tenancy.lint_tenant_tables as tt on tt.relid = c.oid
"""


@dataclass(frozen=True)
class SpecTable:
    """A table as a spec lists it: its key in the file, schema, name and tenant column."""

    key: str
    schema: str
    name: str
    tenant_column: str


def load_spec_tables(path: Path) -> tuple[str, list[SpecTable]]:
    """The spec's display path and tables (``generator.spec.SpecError`` when it is invalid)."""
    from .generator import load_spec  # the generator only when a spec is given

    spec = load_spec(path)
    return spec.display, [SpecTable(t.key, t.schema, t.name, t.tenant_column) for t in spec.tables]


def spec_findings(
    conn: psycopg.Connection[tuple[object, ...]], display: str, tables: Sequence[SpecTable]
) -> list[Finding]:
    """Lint 0019: the spec's tables that are missing, not tenant tables, or whose policies
    compare another column than the spec's tenant column."""
    found: list[Finding] = []
    regenerate = (
        f"pgtenancy generate --spec {display} --out <policies> --database-url <url>, then "
        "pgtenancy apply the table's policy file"
    )
    for table in tables:
        row = conn.execute(_SPEC_TABLE, {"schema": table.schema, "name": table.name}).fetchone()
        shown, secured, column = row if row else (None, False, None)
        if shown is None:
            found.append(
                Finding(
                    SPEC_CODE,
                    SPEC_NAME,
                    "ERROR",
                    table.key,
                    f"table {table.key} is listed in {display} but does not exist",
                    f'create it, or remove [tables."{table.key}"] from {display}',
                )
            )
        elif not secured:
            found.append(
                Finding(
                    SPEC_CODE,
                    SPEC_NAME,
                    "ERROR",
                    str(shown),
                    f"table {shown} is listed in {display} as a tenant table, but no policy on "
                    "it calls the tenant context: row level security does not keep tenants apart "
                    "there",
                    regenerate,
                )
            )
        elif column != table.tenant_column:
            found.append(
                Finding(
                    SPEC_CODE,
                    SPEC_NAME,
                    "ERROR",
                    str(shown),
                    f"{display} names {table.tenant_column} as the tenant column of {shown}, "
                    f"but its policies compare {column} with the tenant context",
                    regenerate,
                )
            )
    return found


def run_lints(
    database_url: str, spec: tuple[str, Sequence[SpecTable]] | None = None
) -> list[Finding]:
    """Every problem every installed lint finds (and, given a spec's display path and tables,
    lint 0019), most severe first, then by code and object."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("set search_path = pg_catalog")
        views = lint_views(conn)
        if not views:
            raise LookupError(
                "no lints in schema tenancy: is pgtenancy installed here (pgtenancy migrate)?"
            )
        found: list[Finding] = []
        for view in views:
            query = sql.SQL(
                "select code, name, level, object, detail, remediation from tenancy.{}"
            ).format(sql.Identifier(view))
            found += [Finding(*(str(v) for v in row)) for row in conn.execute(query)]
        if spec is not None:
            found += spec_findings(conn, *spec)
    return sorted(found, key=lambda f: (-LEVELS.index(f.level), f.code, f.object))


def at_or_above(findings: list[Finding], level: str) -> list[Finding]:
    """The findings of ``level`` or more severe."""
    floor = LEVELS.index(level)
    return [f for f in findings if LEVELS.index(f.level) >= floor]


def as_json(findings: list[Finding]) -> str:
    return json.dumps([asdict(f) for f in findings], indent=2)


def as_text(findings: list[Finding]) -> str:
    if not findings:
        return "doctor: no problem found"
    lines = []
    for f in findings:
        lines.append(f"{f.level:5} {f.code} {f.name}  {f.object}")
        lines.append(f"      {f.detail}")
        lines.append(f"      fix: {f.remediation}  (docs/lints/{f.code}_{f.name}.md)")
    counts = {level: sum(f.level == level for f in findings) for level in reversed(LEVELS)}
    summary = ", ".join(f"{n} {level}" for level, n in counts.items() if n)
    lines.append(f"doctor: {len(findings)} problems ({summary})")
    return "\n".join(lines)
