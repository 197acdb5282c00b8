"""``pgtenancy doctor``: run the numbered lints installed in schema ``tenancy`` over a database.

Each lint is a view ``tenancy.lint_NNNN_<name>`` (source ``sql/lints/NNNN_<name>.sql``, explained
in ``docs/lints/NNNN_<name>.md``) returning ``code``, ``name``, ``level`` (ERROR, WARN or INFO),
``object``, ``detail`` and ``remediation``, one row per problem found. The lints read the
catalog only; running them changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

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


def run_lints(database_url: str) -> list[Finding]:
    """Every problem every installed lint finds, most severe first, then by code and object."""
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
