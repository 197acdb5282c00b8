"""``pgtenancy doctor``: run the numbered lints installed in schema ``tenancy`` over a database.

Each lint is a view ``tenancy.lint_NNNN_<name>`` (source ``sql/lints/NNNN_<name>.sql``, explained
in ``docs/lints/NNNN_<name>.md``) returning ``code``, ``name``, ``level`` (ERROR, WARN or INFO),
``object``, ``detail`` and ``remediation``, one row per problem found. Running them changes
nothing; they read the catalog, lint 0012 counts rows and lint 0022 samples at most 100 rows
per tenant table (both as the caller).

With a spec file, three more lints are checked here rather than in SQL (they need the spec):
:func:`spec_findings` (0019): every table the spec lists must be a tenant table (a policy calls
the tenant context) whose policies compare the tenant column the spec names;
:func:`drift_findings` (0020): the live policies of each listed tenant table (and of its
partitions and inheritance children) are the ones ``pgtenancy generate`` renders for it now;
:func:`unlisted_findings` (0021): every tenant table outside schema ``tenancy`` is listed (or is a
partition or child of a listed or another tenant table). Lint 0022 (columns that look personal but
are not classified) is a view, but with a spec :func:`personal_findings` runs its function with
the spec's classification instead, so the spec decides for the tables it lists.

Lint 0020 renders the generated policies onto a temporary table holding only the tenant column,
in a transaction that is always rolled back, and compares them with the live ones as PostgreSQL
stores them: nothing of the user's changes, and the only lock taken on their tables is the ACCESS
SHARE lock of reading a policy's expression (``pg_get_expr``), which the lints without a spec
take too; it waits only for an ACCESS EXCLUSIVE lock (``ALTER TABLE``, ``DROP``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from .generator.render import Renderer
    from .generator.snapshot import TableInfo
    from .generator.spec import Spec

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


@dataclass(frozen=True)
class SpecFile:
    """A spec given to ``doctor --spec``: its display path, its tables, and the spec itself
    (``generator.spec.Spec``) from which lint 0020 renders the policies."""

    display: str
    tables: tuple[SpecTable, ...]
    spec: Spec


def load_spec_file(path: Path) -> SpecFile:
    """The spec at ``path`` (``generator.spec.SpecError`` when it is invalid)."""
    from .generator import load_spec  # the generator only when a spec is given

    spec = load_spec(path)
    tables = tuple(SpecTable(t.key, t.schema, t.name, t.tenant_column) for t in spec.tables)
    return SpecFile(spec.display, tables, spec)


def load_spec_tables(path: Path) -> tuple[str, list[SpecTable]]:
    """The spec's display path and tables (``generator.spec.SpecError`` when it is invalid)."""
    loaded = load_spec_file(path)
    return loaded.display, list(loaded.tables)


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


#: Lint 0020 (``docs/lints/0020_policy_drift.md``).
DRIFT_CODE, DRIFT_NAME = "0020", "policy_drift"

_COMMANDS = {"r": "select", "a": "insert", "w": "update", "d": "delete", "*": "all"}

# The policies of one relation as PostgreSQL stores them. Run with search_path = pg_catalog,
# so names in the expressions print the same way for the live table and the temporary one.
_POLICIES = """
select p.polname::text,
       pg_catalog.quote_ident(p.polname),
       p.polcmd::text,
       p.polpermissive,
       array(
           select case when r.oid operator (pg_catalog.=) 0 then 'public'
                       else r.oid::pg_catalog.regrole::pg_catalog.text end
           from pg_catalog.unnest(p.polroles) as r (oid)
           order by 1
       ),
       pg_catalog.pg_get_expr(p.polqual, p.polrelid),
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
from pg_catalog.pg_policy as p
where p.polrelid operator (pg_catalog.=) %s
order by p.polname
"""

# The type (and collation, when not the type's own) of a table's tenant column, spelled so a
# column of a temporary table can be declared with it (search_path = pg_catalog: qualified).
_TENANT_COLUMN_TYPE = """
select pg_catalog.format_type(a.atttypid, a.atttypmod),
       case when a.attcollation operator (pg_catalog.<>) t.typcollation
                 and a.attcollation operator (pg_catalog.<>) 0
            then pg_catalog.format('collate %%I.%%I', cn.nspname, co.collname) end
from pg_catalog.pg_attribute as a
join pg_catalog.pg_type as t on t.oid operator (pg_catalog.=) a.atttypid
left join pg_catalog.pg_collation as co on co.oid operator (pg_catalog.=) a.attcollation
left join pg_catalog.pg_namespace as cn on cn.oid operator (pg_catalog.=) co.collnamespace
where a.attrelid operator (pg_catalog.=) %s
  and a.attname operator (pg_catalog.=) %s
  and not a.attisdropped
"""

_RELATION = """
select c.oid::pg_catalog.oid, c.oid::pg_catalog.text
from (select pg_catalog.to_regclass(%s) as oid) as c
where c.oid is not null
"""

_CAN_CREATE_TEMP = """
select pg_catalog.has_database_privilege(pg_catalog.current_database(), 'temporary'),
       current_user::pg_catalog.text, pg_catalog.current_database()::pg_catalog.text
"""


@dataclass(frozen=True)
class _Policy:
    name: str
    shown: str
    command: str
    permissive: bool
    roles: tuple[str, ...]
    using: str | None
    check: str | None

    def describe(self) -> str:
        kind = "permissive" if self.permissive else "restrictive"
        command = _COMMANDS.get(self.command, self.command)
        text = f"{kind}, for {command}, to {', '.join(self.roles)}"
        text += f", using {self.using}" if self.using is not None else ""
        return text + (f", with check {self.check}" if self.check is not None else "")


def _policies(conn: psycopg.Connection[tuple[object, ...]], relid: object) -> dict[str, _Policy]:
    rows = conn.execute(_POLICIES, (relid,)).fetchall()
    return {
        str(name): _Policy(
            str(name),
            str(shown),
            str(command),
            bool(permissive),
            tuple(str(r) for r in roles),  # type: ignore[attr-defined]
            None if using is None else str(using),
            None if check is None else str(check),
        )
        for name, shown, command, permissive, roles, using, check in rows
    }


def _differences(live: _Policy, generated: _Policy) -> list[str]:
    """What differs between a live policy and the generated one of the same name."""
    out: list[str] = []
    if live.command != generated.command:
        out.append(
            f"command: for {_COMMANDS.get(live.command, live.command)} instead of for "
            f"{_COMMANDS.get(generated.command, generated.command)}"
        )
    if live.permissive != generated.permissive:
        kinds = ("restrictive", "permissive")
        out.append(f"{kinds[live.permissive]} instead of {kinds[generated.permissive]}")
    if live.roles != generated.roles:
        out.append(f"roles: to {', '.join(live.roles)} instead of to {', '.join(generated.roles)}")
    for what, have, want in (
        ("USING", live.using, generated.using),
        ("WITH CHECK", live.check, generated.check),
    ):
        if have != want:
            out.append(f"{what}: {have or '(none)'} instead of {want or '(none)'}")
    return out


def drift_findings(conn: psycopg.Connection[tuple[object, ...]], spec: SpecFile) -> list[Finding]:
    """Lint 0020: the policies of each listed tenant table (and of its partitions and
    inheritance children) that differ from what ``pgtenancy generate`` renders for it now.

    Tables lint 0019 reports (missing, not tenant tables, secured on another column) are left
    to it. The generated policies are created on a temporary table with the tenant column
    alone, in a transaction that is always rolled back; the user's tables are only read (ACCESS
    SHARE). A caller without TEMPORARY on the database gets one INFO finding saying the check
    was skipped.
    """
    from .generator.catalog import read_snapshot
    from .generator.render import Renderer, qident
    from .generator.snapshot import table_infos
    from .generator.spec import SpecError, bind_roles

    display = spec.display
    secured = []
    for table in spec.tables:
        row = conn.execute(_SPEC_TABLE, {"schema": table.schema, "name": table.name}).fetchone()
        if row and row[0] is not None and row[1] and row[2] == table.tenant_column:
            secured.append(table.key)
    if not secured:
        return []
    renderer = Renderer()
    found: list[Finding] = []
    with conn.transaction(force_rollback=True):
        can_temp, user, database = conn.execute(_CAN_CREATE_TEMP).fetchone() or (False, "", "")
        if not can_temp:
            return [
                Finding(
                    DRIFT_CODE,
                    DRIFT_NAME,
                    "INFO",
                    display,
                    f"not checked: comparing the live policies of the tables of {display} with "
                    f"the generated ones needs a temporary table, and role {user} may not create "
                    f"temporary tables in database {database}",
                    f"run pgtenancy doctor as the database owner or a superuser, or grant "
                    f"temporary on database {qident(str(database))} to {qident(str(user))}",
                )
            ]
        snapshot = read_snapshot(conn, spec.spec)  # sets search_path = pg_catalog (local)
        problems: list[str] = []
        bound = {t.key: t for t in bind_roles(spec.spec, snapshot.member_roles, problems)}
        for number, key in enumerate(secured):
            entry = next(t for t in spec.tables if t.key == key)
            refused = [p for p in problems if p.startswith(f"{display}: table {key!r}: ")]
            infos = []
            if not refused:
                try:
                    infos = table_infos(display, (bound[key],), snapshot)
                except SpecError as exc:
                    refused = str(exc).splitlines()
            if refused:
                found.append(
                    Finding(
                        DRIFT_CODE,
                        DRIFT_NAME,
                        "WARN",
                        key,
                        f"the policies of {key} cannot be compared with the generated ones: "
                        f"pgtenancy generate refuses it: " + "; ".join(refused),
                        f"fix {display} or the table as the message says, then pgtenancy "
                        "generate and apply its file",
                    )
                )
                continue
            found += _table_drift(conn, renderer, display, entry, infos[0], number)
    # A child listed itself is also compared as its parent's descendant: report a finding once.
    return list(dict.fromkeys(found))


#: What the Citus flavour's policies call (and the postgres flavour's never do).
_CITUS_CALLS = ("tenancy.context_tenant_id_mac(", "tenancy.context_tenant_key_mac(")


def _table_drift(
    conn: psycopg.Connection[tuple[object, ...]],
    renderer: Renderer,
    display: str,
    entry: SpecTable,
    info: TableInfo,
    number: int,
) -> list[Finding]:
    """Lint 0020 for one table: its generated policies rendered on a temporary table (in a
    savepoint), compared with the live ones of the table and of each of its descendants."""
    from .generator.render import ALL_POLICY_NAMES, Renderer, qident
    from .generator.snapshot import qualified

    root = qualified(entry.schema, entry.name)
    relid, shown = conn.execute(_RELATION, (root,)).fetchone() or (None, root)
    column = conn.execute(_TENANT_COLUMN_TYPE, (relid, entry.tenant_column)).fetchone()
    if relid is None or column is None:  # gone since lint 0019 looked
        return []
    type_sql, collate = column
    temp = qident(f"pgtenancy_doctor_{number}")
    # A table secured with the Citus flavour (pgtenancy generate --flavour citus) is compared with
    # that flavour: its policies call the signed context's functions (docs/citus.md).
    if any(
        call in f"{p.using or ''} {p.check or ''}"
        for p in _policies(conn, relid).values()
        for call in _CITUS_CALLS
    ):
        renderer = Renderer(flavour="citus")
    regenerate = (
        f"pgtenancy generate --spec {display} --out <policies> --database-url <url> && "
        f"pgtenancy apply <policies>/{entry.schema}.{entry.name}.sql"
    )
    try:
        with conn.transaction():
            conn.execute(
                f"create temporary table {temp} "
                f"({qident(entry.tenant_column)} {type_sql} {collate or ''})"
            )
            conn.execute(renderer.policy_statements(info, display, f"pg_temp.{temp}"))
            relation = conn.execute(_RELATION, (f"pg_temp.{temp}",)).fetchone()
            assert relation is not None
            generated = _policies(conn, relation[0])
    except psycopg.Error as exc:
        return [
            Finding(
                DRIFT_CODE,
                DRIFT_NAME,
                "INFO",
                str(shown),
                f"not checked: the generated policies of {shown} could not be rendered on a "
                f"temporary table: {(exc.diag.message_primary or str(exc)).strip()}",
                "run pgtenancy doctor as the database owner or a superuser",
            )
        ]
    found: list[Finding] = []
    targets = [(relid, str(shown))]
    for descendant in info.descendants:
        row = conn.execute(_RELATION, (qualified(descendant.schema, descendant.name),)).fetchone()
        if row is not None:
            targets.append((row[0], str(row[1])))
    for target, name in targets:
        live = _policies(conn, target)
        via = "" if target == relid else f" (a partition or inheritance child of {shown})"
        for policy in sorted(set(generated) | set(live)):
            have, want = live.get(policy), generated.get(policy)
            obj = f"{(have or want).shown} on {name}"  # type: ignore[union-attr]
            if have is None and want is not None:
                detail = (
                    f"{name}{via} has no policy {want.shown}, which pgtenancy generate renders "
                    f"from {display} ({want.describe()})"
                )
                fix = regenerate
            elif want is None and have is not None:
                detail = (
                    f"policy {have.shown} on {name}{via} ({have.describe()}) is not one "
                    f"pgtenancy generate renders from {display}"
                )
                # apply drops only the policies the generator can create.
                fix = (
                    regenerate
                    if policy in ALL_POLICY_NAMES
                    else f"drop policy {have.shown} on {name}; (apply drops only the policies "
                    "pgtenancy generates)"
                )
            else:
                assert have is not None and want is not None
                differs = _differences(have, want)
                if not differs:
                    continue
                detail = (
                    f"policy {have.shown} on {name}{via} differs from the one pgtenancy generate "
                    f"renders from {display}: " + "; ".join(differs)
                )
                fix = regenerate
            found.append(Finding(DRIFT_CODE, DRIFT_NAME, "WARN", obj, detail, fix))
    return found


#: Lint 0021 (``docs/lints/0021_tenant_table_not_in_spec.md``).
UNLISTED_CODE, UNLISTED_NAME = "0021", "tenant_table_not_in_spec"

# Tenant tables the spec does not list, but pgtenancy's own (schema tenancy, governed by
# pgtenancy's spec) and temporary ones, and partitions and inheritance children (at any depth)
# of a listed table or of another tenant table (listing that one covers them).
_UNLISTED = """
with recursive listed (relid) as (
    select pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', l.s, l.n))
    from rows from (
        pg_catalog.unnest(%(schemas)s::pg_catalog.text[]),
        pg_catalog.unnest(%(names)s::pg_catalog.text[])
    ) as l (s, n)
),
below (relid) as (
    select i.inhrelid
    from pg_catalog.pg_inherits as i
    where i.inhparent in (
        select l.relid from listed as l where l.relid is not null
        union
        select tt.relid from tenancy.lint_tenant_tables as tt
    )
    union
    select i.inhrelid
    from pg_catalog.pg_inherits as i
    inner join below as b on i.inhparent operator (pg_catalog.=) b.relid
)
select tt.relid::pg_catalog.regclass::pg_catalog.text, n.nspname::text, c.relname::text,
       tt.tenant_column::text
from tenancy.lint_tenant_tables as tt
inner join pg_catalog.pg_class as c on c.oid operator (pg_catalog.=) tt.relid
inner join pg_catalog.pg_namespace as n on n.oid operator (pg_catalog.=) c.relnamespace
where not c.relnamespace operator (pg_catalog.=) pg_catalog.to_regnamespace('tenancy')
  and not c.relpersistence operator (pg_catalog.=) 't'
  and not exists (select from listed as l where l.relid operator (pg_catalog.=) tt.relid)
  and not exists (select from below as b where b.relid operator (pg_catalog.=) tt.relid)
order by 1
"""


def unlisted_findings(
    conn: psycopg.Connection[tuple[object, ...]], display: str, tables: Sequence[SpecTable]
) -> list[Finding]:
    """Lint 0021: the tenant tables the spec does not list (pgtenancy's own in schema tenancy,
    and partitions and children of listed or other tenant tables, left out)."""
    rows = conn.execute(
        _UNLISTED,
        {"schemas": [t.schema for t in tables], "names": [t.name for t in tables]},
    ).fetchall()
    found = []
    for shown, schema, name, column in rows:
        key = f"{schema}.{name}"
        option = "" if column in (None, "tenant_id") else f', tenant_column = "{column}"'
        reads = f"compare {column} with" if column is not None else "call"
        found.append(
            Finding(
                UNLISTED_CODE,
                UNLISTED_NAME,
                "WARN",
                str(shown),
                f"tenant table {shown} (its policies {reads} the tenant context) is not listed "
                f"in {display}: pgtenancy generate does not render its policies, and lint 0020 "
                "does not compare them with generated ones",
                f'list it in {display} ([tables."{key}"]{option}), then pgtenancy generate and '
                "apply its file; or, if it holds no tenant data, drop its policies that call the "
                "tenant context",
            )
        )
    return found


#: Lint 0022 (``docs/lints/0022_personal_data_not_classified.md``): a view without a spec; with
#: one, :func:`personal_findings` calls the view's function with the spec's classification.
PERSONAL_VIEW = "lint_0022_personal_data_not_classified"

_PERSONAL = """
select p.code, p.name, p.level, p.object, p.detail, p.remediation
from tenancy.lint_personal_data(%s::pg_catalog.jsonb) as p
"""


def personal_spec(spec: SpecFile) -> dict[str, object]:
    """The spec's classification of personal data as ``tenancy.lint_personal_data`` reads it:
    per listed table its pii, its subject column (None when it declares no personal data) and
    whether that column references another table's subjects."""
    tables: list[dict[str, object]] = []
    for entry in spec.spec.tables:
        personal = entry.personal
        tables.append(
            {
                "schema": entry.schema,
                "name": entry.name,
                "pii": list(personal.pii) if personal else [],
                "subject": personal.subject_column if personal else None,
                "references": bool(personal and personal.references),
            }
        )
    return {"display": spec.display, "tables": tables}


def personal_findings(
    conn: psycopg.Connection[tuple[object, ...]], spec: SpecFile
) -> list[Finding]:
    """Lint 0022 with a spec: columns of tenant tables that look personal (by name or a bounded
    sample of their values) but are not classified. For the tables the spec lists, the spec's
    ``pii`` and ``subject`` decide, not ``tenancy.personal_data``: the registry is written from
    the spec by the generated files, so the spec is the intended state (a column just added to
    ``pii`` is not reported before its file is applied; one removed from it is, as the next apply
    removes it from the registry). Other tenant tables are checked against the registry."""
    rows = conn.execute(_PERSONAL, (json.dumps(personal_spec(spec)),)).fetchall()
    return [Finding(*(str(v) for v in row)) for row in rows]


def run_lints(
    database_url: str, spec: SpecFile | tuple[str, Sequence[SpecTable]] | None = None
) -> list[Finding]:
    """Every problem every installed lint finds (and, given a spec, lints 0019, 0020 and 0021,
    and 0022 with the spec's classification; given only a spec's display path and tables, lint
    0019), most severe first, then by code and object."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("set search_path = pg_catalog")
        views = lint_views(conn)
        if not views:
            raise LookupError(
                "no lints in schema tenancy: is pgtenancy installed here (pgtenancy migrate)?"
            )
        found: list[Finding] = []
        with_spec = isinstance(spec, SpecFile) and PERSONAL_VIEW in views
        for view in views:
            if with_spec and view == PERSONAL_VIEW:
                continue  # personal_findings below, with the spec (sampling once)
            query = sql.SQL(
                "select code, name, level, object, detail, remediation from tenancy.{}"
            ).format(sql.Identifier(view))
            found += [Finding(*(str(v) for v in row)) for row in conn.execute(query)]
        if isinstance(spec, SpecFile):
            found += spec_findings(conn, spec.display, spec.tables)
            found += drift_findings(conn, spec)
            found += unlisted_findings(conn, spec.display, spec.tables)
            if with_spec:
                found += personal_findings(conn, spec)
        elif spec is not None:
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
