"""``pgtenancy tenant export / import / restore``: one tenant's rows out of a database and back
in, and one table of a tenant rebuilt as it was at a past time.

- :func:`export_tenant` writes every row of one tenant (its tenant tables, its ``tenancy.tenants``
  row, its platform records and, as an archive, its audit trail and security events) to a
  directory: one COPY text file per table and ``manifest.json`` (counts, checksums, columns),
  read in one REPEATABLE READ READ ONLY transaction, so the files are one snapshot.
- :func:`import_tenant` checks such a directory (every checksum and count) and the destination
  (same last migration, same columns, no such tenant yet) before writing anything, then loads
  the data files in one transaction, parents before children.
- :func:`restore_table` rebuilds a tenant's rows of an audited table as they were at a time, from
  the audit trail (``tenancy.table_at`` in a service context of the tenant), into a side table in
  schema ``tenancy_restore``, and with ``in_place`` makes the live rows equal to it.

The format is documented in docs/tenant-export.md. Every refusal raises :class:`TenantError`
(the CLI exits 2) before anything is written; a failure while loading rolls the whole import
back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql

FORMAT = "pgtenancy.tenant_export"
VERSION = 1
MANIFEST = "manifest.json"
SUFFIX = ".copy"
RESTORE_SCHEMA = "tenancy_restore"
CHUNK = 1 << 20

# The session settings under which COPY text is written and read: values of dates, intervals,
# floats and bytea are spelled the same whatever the servers' defaults are.
SESSION_SETTINGS = {
    "client_encoding": "UTF8",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "3",
    "bytea_output": "hex",
    # Types outside pg_catalog are written schema-qualified (format_type) in the manifest.
    "search_path": "pg_catalog",
}

# The roles pgtenancy creates: a side table of tenancy_restore is granted to none of them.
PGTENANCY_ROLES = (
    "tenancy_app",
    "tenancy_service",
    "tenancy_admin",
    "tenancy_auditor",
    "tenancy_session_objects",
)

# The outbox: pgtenancy's triggers enqueue rows here as a side effect of inserting a tenant, its
# settings or its usage alerts. Import loads these tables last, after deleting what its own
# inserts enqueued, so nothing is delivered twice.
OUTBOX_TABLES = ("tenancy.analytics_events", "tenancy.connector_events", "tenancy.deliveries")


class TenantError(Exception):
    """The command cannot be carried out: nothing was written (the CLI exits 2)."""


@dataclass(frozen=True)
class PlatformTable:
    """A pgtenancy table outside the tenant tables that holds rows of one tenant."""

    name: str
    role: str  # "data" (imported) or "archive" (exported only)
    tenant_column: str | None
    predicate: str  # SQL over the table's columns; {tenant} is the tenant id (a literal)
    why: str
    after: tuple[str, ...] = ()  # tables its predicate reads: loaded before it


# Every pgtenancy table with rows of a tenant that tenancy.lint_tenant_tables does not list (it
# lists the tables with tenant policies). Tables of no tenant (configuration: jwt_config,
# domain_config, auth_config, regions, feature_defaults, outbox_retention; the audit trail's
# frontier and retention log) and tenancy.verified_tokens (a cache of verified tokens, refilled
# on use) are not exported.
PLATFORM_TABLES = (
    PlatformTable(
        "tenancy.domain_claims",
        "data",
        "tenant_id",
        "tenant_id = {tenant}",
        "the tenant's hostnames in the global map tenancy.resolve_tenant reads",
    ),
    PlatformTable(
        "tenancy.api_key_secrets",
        "data",
        "tenant_id",
        "tenant_id = {tenant}",
        "the SHA-256 of the tenant's API keys (never the keys): the keys keep working",
    ),
    PlatformTable(
        "tenancy.invitation_tokens",
        "data",
        "tenant_id",
        "tenant_id = {tenant}",
        "the SHA-256 of the tenant's invitation tokens: pending invitations stay valid",
    ),
    PlatformTable(
        "tenancy.connector_secrets",
        "data",
        None,
        "endpoint_id in (select e.id from tenancy.connector_endpoints as e"
        " where e.tenant_id = {tenant})",
        "URLs and signing secrets of the tenant's webhook and Slack endpoints (secrets, in clear)",
        after=("tenancy.connector_endpoints",),
    ),
    PlatformTable(
        "tenancy.jwt_issuers",
        "data",
        "tenant_id",
        "tenant_id = {tenant}",
        "the tenant's own identity providers (renumbered on import: ids are platform-wide)",
    ),
    PlatformTable(
        "tenancy.jwt_keys",
        "data",
        None,
        "issuer_id in (select i.id from tenancy.jwt_issuers as i where i.tenant_id = {tenant})",
        "the public keys of the tenant's own identity providers",
        after=("tenancy.jwt_issuers",),
    ),
    PlatformTable(
        "tenancy.security_events",
        "archive",
        "tenant_id",
        "tenant_id = {tenant}",
        "the tenant's security events: numbered by the source's sequences (attempt), so they "
        "are the source's record, not the destination's",
    ),
    PlatformTable(
        "tenancy.audit_logs",
        "archive",
        "tenant_id",
        "tenant_id = {tenant}",
        "the tenant's audit trail",
    ),
    PlatformTable(
        "tenancy.audit_seals",
        "archive",
        "tenant_id",
        "tenant_id = {tenant}",
        "the hash chain over the tenant's audit trail (verifiable against the archive)",
    ),
    PlatformTable(
        "tenancy.audit_legal_holds",
        "archive",
        "tenant_id",
        "tenant_id = {tenant}",
        "the tenant's legal hold over its audit trail",
    ),
)
PLATFORM = {p.name: p for p in PLATFORM_TABLES}
TENANTS = "tenancy.tenants"
# Loaded through a staging table: their ids are numbers of the whole platform.
REMAPPED = ("tenancy.jwt_issuers", "tenancy.jwt_keys")
SECRET_TABLES = (
    "tenancy.connector_secrets",
    "tenancy.api_key_secrets",
    "tenancy.invitation_tokens",
)


# -- shared --------------------------------------------------------------------------------------

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    slug: str
    name: str
    status: str
    key: str | None


@dataclass
class TableSpec:
    """One table of an export: what is read, how, and what it came to."""

    name: str  # schema.table, unquoted (the file name and the manifest's name)
    role: str
    tenant_column: str | None
    columns: list[tuple[str, str]]  # (name, type) without generated columns
    order: list[str]
    predicate: sql.Composable
    file: str = ""
    rows: int = 0
    sha256: str = ""

    @property
    def ident(self) -> sql.Identifier:
        return ident(self.name)


def ident(name: str) -> sql.Identifier:
    schema, _, table = name.partition(".")
    return sql.Identifier(schema, table)


def _session(conn: Conn) -> None:
    for setting, value in SESSION_SETTINGS.items():
        conn.execute(
            sql.SQL("select pg_catalog.set_config({}, {}, false)").format(
                sql.Literal(setting), sql.Literal(value)
            )
        )


def pg_message(exc: psycopg.Error) -> str:
    """PostgreSQL's message with its detail and hint, without the CONTEXT lines."""
    diag = exc.diag
    text = diag.message_primary or str(exc).strip().splitlines()[0]
    for extra in (diag.message_detail, diag.message_hint):
        if extra:
            text += f" ({extra.rstrip('.')})"
    return text


def _one(
    conn: Conn, query: sql.SQL | sql.Composed | str, params: Sequence[Any] | None = None
) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else tuple(row)


def _require_bypass(conn: Conn, what: str) -> None:
    """Export and import read and write every tenant's tables: RLS must not filter them."""
    user, superuser, bypass = _one(
        conn,
        "select r.rolname::text, r.rolsuper, r.rolbypassrls from pg_catalog.pg_roles as r"
        " where r.rolname = current_user",
    )
    if not (superuser or bypass):
        raise TenantError(
            f"login {user} is subject to row level security, so the tenant tables would show "
            f"it no rows (or one context's): {what} needs a superuser or a role with "
            "BYPASSRLS; nothing was done"
        )


def _last_migration(conn: Conn) -> str | None:
    if _one(conn, "select to_regclass('tenancy_migrations._yoyo_migration') is null"):
        return None
    value = _one(
        conn,
        "select max(migration_id) from tenancy_migrations._yoyo_migration"
        " where migration_id ~ '^[0-9]{4}_'",
    )
    return None if value is None else str(value)


def find_tenant(conn: Conn, given: str) -> Tenant:
    """The tenant named by its id (a uuid) or its slug."""
    raw = given.strip()
    try:
        tid: uuid.UUID | None = uuid.UUID(raw)
    except ValueError:
        tid = None
    if tid is not None:
        row = conn.execute(
            "select id, slug::text, name::text, status, key::text from tenancy.tenants"
            " where id = %s",
            (tid,),
        ).fetchone()
    else:
        row = conn.execute(
            "select id, slug::text, name::text, status, key::text from tenancy.tenants"
            " where slug::text = %s",
            (raw,),
        ).fetchone()
    if row is None:
        what = "id" if tid is not None else "slug"
        raise TenantError(f"no tenant has the {what} {raw!r}; nothing was done")
    return Tenant(row[0], row[1], row[2], row[3], row[4])


def _key_value(key: str | None, base_type: str) -> Any:
    """The tenant key as a column of ``base_type`` holds it; None when it cannot (no rows)."""
    if key is None:
        return None
    if base_type in ("bigint", "integer"):
        # The canonical decimal spelling only, as tenancy.tenant_key_int8/int4 read it.
        if not re.fullmatch(r"0|-?[1-9][0-9]{0,18}", key):
            return None
        n = int(key)
        bound = 2**63 if base_type == "bigint" else 2**31
        return n if -bound <= n < bound else None
    return key


def _base_type(conn: Conn, type_oid: int) -> str:
    """The type a domain is over (domains over domains followed down), as format_type names it."""
    return str(
        _one(
            conn,
            """
            with recursive d (oid, base, depth) as (
                select t.oid, t.typbasetype, 0 from pg_catalog.pg_type as t where t.oid = %s
                union all
                select t.oid, t.typbasetype, d.depth + 1
                from d inner join pg_catalog.pg_type as t on t.oid = d.base
                where d.base <> 0
            )
            select pg_catalog.format_type(oid, null) from d order by depth desc limit 1
            """,
            (type_oid,),
        )
    )


def _tenant_predicate(
    column: str, base_type: str, tenant: Tenant, alias: str | None = None
) -> sql.Composable:
    """``column = <the tenant's id or key>``; false when the tenant has no key the column can
    hold (it has no rows there)."""
    value = tenant.id if base_type == "uuid" else _key_value(tenant.key, base_type)
    if value is None:
        return sql.SQL("false")
    target = sql.Identifier(column) if alias is None else sql.Identifier(alias, column)
    return sql.SQL("{} = {}").format(target, sql.Literal(value))


def _platform_predicate(table: PlatformTable, tenant: Tenant) -> sql.Composable:
    return sql.SQL(table.predicate).format(tenant=sql.Literal(tenant.id))


def _columns(conn: Conn, name: str) -> list[tuple[str, str]]:
    """(name, type) of the table's columns in order, generated columns left out."""
    return [
        (str(r[0]), str(r[1]))
        for r in conn.execute(
            "select a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)"
            " from pg_catalog.pg_attribute as a"
            " where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped"
            " and a.attgenerated = '' order by a.attnum",
            (ident(name).as_string(conn),),
        )
    ]


def _order_columns(conn: Conn, name: str) -> list[str]:
    """The columns rows are written in order of: the primary key, else the first unique index
    on plain columns (tenancy.audit_seals), else every column (tenancy.audit_logs: id first)."""
    row = conn.execute(
        "select array(select a.attname::text"
        "   from unnest(i.indkey) with ordinality as k (attnum, n)"
        "   inner join pg_catalog.pg_attribute as a"
        "   on a.attrelid = i.indrelid and a.attnum = k.attnum order by k.n)"
        " from pg_catalog.pg_index as i"
        " where i.indrelid = %s::regclass and (i.indisprimary or (i.indisunique"
        " and i.indpred is null and i.indexprs is null and 0 <> all (i.indkey)))"
        " order by i.indisprimary desc, i.indexrelid limit 1",
        (ident(name).as_string(conn),),
    ).fetchone()
    return [str(c) for c in row[0]] if row else []


@dataclass(frozen=True)
class TenantTable:
    name: str
    tenant_column: str | None
    base_type: str | None


def _tenant_tables(conn: Conn) -> list[TenantTable]:
    """The tenant tables (tenancy.lint_tenant_tables), roots only: a partition's or inheritance
    child's rows are read through its root."""
    rows = conn.execute(
        "select n.nspname::text || '.' || c.relname::text, l.tenant_column::text,"
        " a.atttypid::int8"
        " from tenancy.lint_tenant_tables as l"
        " inner join pg_catalog.pg_class as c on c.oid = l.relid"
        " inner join pg_catalog.pg_namespace as n on n.oid = c.relnamespace"
        " left join pg_catalog.pg_attribute as a"
        " on a.attrelid = c.oid and a.attname = l.tenant_column"
        " where not c.relispartition"
        " and not exists (select from pg_catalog.pg_inherits as i where i.inhrelid = c.oid)"
        " order by 1"
    ).fetchall()
    return [
        TenantTable(str(r[0]), r[1], None if r[2] is None else _base_type(conn, int(r[2])))
        for r in rows
    ]


def _foreign_keys(conn: Conn, names: Iterable[str]) -> dict[str, set[str]]:
    """For each table, the other tables of ``names`` it references (catalog foreign keys)."""
    names = list(names)
    refs: dict[str, set[str]] = {n: set() for n in names}
    rows = conn.execute(
        "select cn.nspname::text || '.' || c.relname::text,"
        " fn.nspname::text || '.' || f.relname::text"
        " from pg_catalog.pg_constraint as k"
        " inner join pg_catalog.pg_class as c on c.oid = k.conrelid"
        " inner join pg_catalog.pg_namespace as cn on cn.oid = c.relnamespace"
        " inner join pg_catalog.pg_class as f on f.oid = k.confrelid"
        " inner join pg_catalog.pg_namespace as fn on fn.oid = f.relnamespace"
        " where k.contype = 'f' and k.conrelid <> k.confrelid"
    ).fetchall()
    for child, parent in rows:
        if child in refs and parent in refs:
            refs[child].add(parent)
    for p in PLATFORM_TABLES:  # what a platform table's predicate reads, foreign key or not
        if p.name in refs:
            refs[p.name] |= {a for a in p.after if a in refs}
    return refs


def parents_first(names: Sequence[str], refs: dict[str, set[str]]) -> list[str]:
    """``names`` ordered so that a table comes after every table it references (stable: ties
    keep the given order; a cycle is broken at its first table in that order)."""
    done: list[str] = []
    placed: set[str] = set()
    pending = list(names)
    while pending:
        for name in pending:
            if refs.get(name, set()) - placed - {name} <= set():
                break
        else:
            name = pending[0]  # a cycle: its foreign keys decide at load time
        pending.remove(name)
        placed.add(name)
        done.append(name)
    return done


# -- progress ------------------------------------------------------------------------------------


class Progress:
    """The progress line on stderr: table, rows so far, rows per second. On a terminal one line,
    rewritten in place and cleared at the end; otherwise (``--progress`` into a file or a pipe)
    a line per table, and one a second during a long table."""

    def __init__(self, stream: IO[str] | None, verb: str) -> None:
        self.stream = stream
        self.verb = verb
        self.live = bool(stream is not None and stream.isatty())
        self.table = ""
        self.rows = 0
        self.started = 0.0
        self.shown = 0.0

    def start(self, table: str) -> None:
        self.table, self.rows = table, 0
        self.started = self.shown = time.monotonic()

    def add(self, rows: int) -> None:
        self.rows += rows
        now = time.monotonic()
        if self.stream is not None and now - self.shown >= (0.1 if self.live else 1.0):
            self.shown = now
            self._show(now)

    def done(self) -> None:
        if self.stream is not None:
            self._show(time.monotonic())

    def close(self) -> None:
        if self.stream is not None and self.live:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()

    def _show(self, now: float) -> None:
        assert self.stream is not None
        took = max(now - self.started, 1e-6)
        line = f"{self.verb} {self.table}: {self.rows:,} rows, {self.rows / took:,.0f} rows/s"
        self.stream.write("\r" + line[:79].ljust(79) if self.live else line + "\n")
        self.stream.flush()


# -- export --------------------------------------------------------------------------------------


@dataclass
class ExportResult:
    tenant: Tenant
    directory: Path
    tables: list[TableSpec]
    skipped: list[tuple[str, str]]
    manifest_sha256: str
    seconds: float


def _export_specs(conn: Conn, tenant: Tenant) -> tuple[list[TableSpec], list[tuple[str, str]]]:
    """What the export reads: the tenants row, the tenant tables, the platform tables."""
    specs: list[TableSpec] = []
    skipped: list[tuple[str, str]] = []

    def spec(name: str, role: str, column: str | None, predicate: sql.Composable) -> TableSpec:
        columns = _columns(conn, name)
        order = _order_columns(conn, name) or [c for c, _ in columns]
        return TableSpec(name, role, column, columns, order, predicate)

    specs.append(spec(TENANTS, "data", "id", sql.SQL("id = {}").format(sql.Literal(tenant.id))))
    for t in _tenant_tables(conn):
        if t.tenant_column is None or t.base_type is None:
            skipped.append((t.name, "its tenant policies read no column: no way to pick rows"))
        elif t.base_type not in ("uuid", "bigint", "integer", "text"):
            skipped.append((t.name, f"tenant column {t.tenant_column} is {t.base_type}"))
        else:
            specs.append(
                spec(
                    t.name,
                    "data",
                    t.tenant_column,
                    _tenant_predicate(t.tenant_column, t.base_type, tenant),
                )
            )
    for p in PLATFORM_TABLES:
        if _one(conn, "select to_regclass(%s) is null", (ident(p.name).as_string(conn),)):
            continue  # an older release: not there
        specs.append(spec(p.name, p.role, p.tenant_column, _platform_predicate(p, tenant)))
    data = [s.name for s in specs if s.role == "data"]
    order = parents_first(data, _foreign_keys(conn, data))
    by_name = {s.name: s for s in specs}
    ordered = [by_name[n] for n in order] + [s for s in specs if s.role == "archive"]
    return ordered, skipped


def file_name(table: str) -> str:
    """``schema.table.copy``; the few characters a file name cannot hold safely (/, \\, a
    leading dot, and % itself) are %-escaped."""
    name = table.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C").replace("\0", "%00")
    return ("%2E" + name[1:] if name.startswith(".") else name) + SUFFIX


def _prepare_out(out: Path) -> bool:
    """Make ``out`` an empty directory of mode 0700; True when it was created here."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise TenantError(f"--out {out} exists and is not a directory; nothing was written")
        if any(out.iterdir()):
            raise TenantError(
                f"--out {out} is not empty: an export goes into a new or empty directory; "
                "nothing was written"
            )
        os.chmod(out, 0o700)
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    out.mkdir(mode=0o700)
    os.chmod(out, 0o700)  # whatever the umask
    return True


def _open_new(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


def export_tenant(
    url: str, tenant_ref: str, out: Path, progress: IO[str] | None = None
) -> ExportResult:
    """Write one tenant's rows to ``out`` (see docs/tenant-export.md)."""
    started = time.monotonic()
    created = _prepare_out(out)
    written: list[Path] = []
    meter = Progress(progress, "exported")
    try:
        with psycopg.connect(url) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            _session(conn)
            _require_bypass(conn, "export")
            last = _last_migration(conn)
            if last is None:
                raise TenantError("the database holds no pgtenancy schema; nothing was written")
            tenant = find_tenant(conn, tenant_ref)
            specs, skipped = _export_specs(conn, tenant)
            lacking = [
                s.name
                for s in specs
                if not _one(
                    conn, "select has_table_privilege(%s, 'SELECT')", (s.ident.as_string(conn),)
                )
            ]
            if lacking:
                raise TenantError(
                    "this login may not read " + ", ".join(lacking) + "; nothing was written"
                )
            exported_at, server_version, database = _one(
                conn,
                "select to_char(now() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
                " current_setting('server_version'), current_database()::text",
            )
            for s in specs:
                s.file = file_name(s.name)
                path = out / s.file
                digest = hashlib.sha256()
                meter.start(s.name)
                query = sql.SQL("copy (select {} from {} where {} order by {}) to stdout").format(
                    sql.SQL(", ").join(sql.Identifier(c) for c, _ in s.columns),
                    s.ident,
                    s.predicate,
                    sql.SQL(", ").join(sql.Identifier(c) for c in s.order),
                )
                with _open_new(path) as f:
                    written.append(path)
                    with conn.cursor().copy(query) as copy:
                        for chunk in copy:
                            data = bytes(chunk)
                            f.write(data)
                            digest.update(data)
                            n = data.count(b"\n")
                            s.rows += n
                            meter.add(n)
                s.sha256 = digest.hexdigest()
                meter.done()
            meter.close()
            conn.rollback()  # read only: nothing to keep
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "tenant": {
                "id": str(tenant.id),
                "slug": tenant.slug,
                "key": tenant.key,
                "name": tenant.name,
                "status": tenant.status,
            },
            "exported_at": exported_at,
            "source": {
                "server_version": server_version,
                "database": database,
                "last_migration": last,
            },
            "copy": {"format": "text", "encoding": "UTF8", "settings": SESSION_SETTINGS},
            "contains_secrets": True,
            "secrets": [s for s in SECRET_TABLES if any(t.name == s for t in specs)],
            "tables": [
                {
                    "name": s.name,
                    "file": s.file,
                    "role": s.role,
                    "tenant_column": s.tenant_column,
                    "columns": [{"name": c, "type": t} for c, t in s.columns],
                    "rows": s.rows,
                    "sha256": s.sha256,
                }
                for s in specs
            ],
            "skipped": [{"name": n, "reason": r} for n, r in skipped],
        }
        text = (json.dumps(manifest, indent=2) + "\n").encode()
        path = out / MANIFEST
        with _open_new(path) as f:
            written.append(path)
            f.write(text)
    except BaseException:
        meter.close()
        for path in written:
            path.unlink(missing_ok=True)
        if created:
            out.rmdir()
        raise
    return ExportResult(
        tenant,
        out,
        specs,
        skipped,
        hashlib.sha256(text).hexdigest(),
        time.monotonic() - started,
    )


# -- import --------------------------------------------------------------------------------------


@dataclass
class ManifestTable:
    name: str
    file: str
    role: str
    tenant_column: str | None
    columns: list[tuple[str, str]]
    rows: int
    sha256: str


@dataclass
class Manifest:
    tenant: Tenant
    last_migration: str
    exported_at: str
    tables: list[ManifestTable]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def data(self) -> list[ManifestTable]:
        return [t for t in self.tables if t.role == "data"]

    def archive(self) -> list[ManifestTable]:
        return [t for t in self.tables if t.role == "archive"]


def read_manifest(directory: Path) -> Manifest:
    """The manifest of an export directory, its shape checked (not yet its files)."""
    path = directory / MANIFEST
    if not directory.is_dir():
        raise TenantError(f"{directory} is not a directory; nothing was written")
    if not path.is_file():
        raise TenantError(f"{path} is missing: not a pgtenancy tenant export; nothing was written")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TenantError(f"{path} is not JSON ({exc}); nothing was written") from None

    def bad(what: str) -> TenantError:
        return TenantError(f"{path}: {what}; nothing was written")

    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        got = raw.get("format") if isinstance(raw, dict) else None
        raise bad(f"format is {got!r}, not {FORMAT!r}: not a pgtenancy tenant export")
    if raw.get("version") != VERSION:
        raise bad(
            f"version {raw.get('version')!r} is not one this pgtenancy reads (version {VERSION})"
        )
    try:
        t = raw["tenant"]
        tenant = Tenant(
            uuid.UUID(str(t["id"])),
            str(t["slug"]),
            str(t.get("name") or t["slug"]),
            str(t.get("status") or "active"),
            None if t.get("key") is None else str(t["key"]),
        )
        last = str(raw["source"]["last_migration"])
        tables: list[ManifestTable] = []
        for e in raw["tables"]:
            tables.append(
                ManifestTable(
                    str(e["name"]),
                    str(e["file"]),
                    str(e["role"]),
                    None if e.get("tenant_column") is None else str(e["tenant_column"]),
                    [(str(c["name"]), str(c["type"])) for c in e["columns"]],
                    int(e["rows"]),
                    str(e["sha256"]),
                )
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"malformed ({type(exc).__name__}: {exc})") from None
    seen: set[str] = set()
    for m in tables:
        if m.role not in ("data", "archive"):
            raise bad(f"table {m.name} has role {m.role!r} (data or archive)")
        if (
            Path(m.file).name != m.file
            or not m.file.endswith(SUFFIX)
            or m.file.startswith(".")
            or "\\" in m.file
        ):
            raise bad(f"table {m.name} names file {m.file!r}, not a *.copy file of the export")
        if m.name in seen or m.file in seen:
            raise bad(f"table {m.name} (file {m.file}) is listed twice")
        seen.update((m.name, m.file))
        if not re.fullmatch(r"[^.]+\..+", m.name):
            raise bad(f"table name {m.name!r} is not schema.table")
        if m.rows < 0 or not re.fullmatch(r"[0-9a-f]{64}", m.sha256):
            raise bad(f"table {m.name}: rows or sha256 malformed")
    names = {m.name: m for m in tables}
    if TENANTS not in names or names[TENANTS].role != "data" or names[TENANTS].rows != 1:
        raise bad(f"{TENANTS} must be a data table of exactly one row (the tenant)")
    if "tenancy.jwt_keys" in names and "tenancy.jwt_issuers" not in names:
        raise bad("tenancy.jwt_keys is listed without tenancy.jwt_issuers")
    return Manifest(tenant, last, str(raw.get("exported_at", "")), tables, raw)


def verify_files(directory: Path, manifest: Manifest, progress: IO[str] | None = None) -> None:
    """Every listed file exists and has the listed sha256 and number of rows; all problems are
    reported together."""
    problems: list[str] = []
    meter = Progress(progress, "verified")
    for m in manifest.tables:
        path = directory / m.file
        if not path.is_file():
            problems.append(f"{m.file} (table {m.name}) is missing")
            continue
        digest = hashlib.sha256()
        rows = 0
        last = b"\n"
        meter.start(m.file)
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
                n = chunk.count(b"\n")
                rows += n
                meter.add(n)
                last = chunk[-1:]
        meter.done()
        if digest.hexdigest() != m.sha256:
            problems.append(
                f"{m.file} (table {m.name}) has sha256 {digest.hexdigest()}, the manifest says "
                f"{m.sha256}: the file was changed or damaged"
            )
        elif rows != m.rows or last != b"\n":
            problems.append(
                f"{m.file} (table {m.name}) holds {rows} row(s), the manifest says {m.rows}"
            )
    meter.close()
    if problems:
        raise TenantError(
            f"{directory} does not match its manifest:\n- "
            + "\n- ".join(problems)
            + "\nnothing was written"
        )


@dataclass
class ImportResult:
    tenant: Tenant
    database: str
    loaded: list[tuple[str, int]]
    archived: list[tuple[str, int]]
    sequences: list[tuple[str, int]]
    audited: int
    seconds: float


def _check_destination(
    conn: Conn, manifest: Manifest
) -> tuple[dict[str, sql.Composable], list[str]]:
    """Refuse a destination the export does not fit; return each data table's predicate for the
    tenant's rows (from the destination's catalog) and the load order."""
    tenant = manifest.tenant
    last = _last_migration(conn)
    if last is None:
        raise TenantError(
            "the destination holds no pgtenancy schema: run pgtenancy migrate on it first; "
            "nothing was written"
        )
    if last != manifest.last_migration:
        hint = (
            "migrate the destination (pgtenancy migrate) first"
            if last < manifest.last_migration
            else "import into a database at the export's migration, then migrate it"
        )
        raise TenantError(
            f"the export was made at pgtenancy migration {manifest.last_migration}, the "
            f"destination is at {last}: {hint}; nothing was written"
        )
    tenant_tables = {t.name: t for t in _tenant_tables(conn)}
    predicates: dict[str, sql.Composable] = {}
    problems: list[str] = []
    for m in manifest.data():
        exists = _one(conn, "select to_regclass(%s) is not null", (ident(m.name).as_string(conn),))
        if not exists:
            problems.append(f"table {m.name} does not exist in the destination")
            continue
        have = _columns(conn, m.name)
        if have != m.columns and sorted(have) != sorted(m.columns):
            want, got = dict(m.columns), dict(have)
            diffs = [f"{c} {t} is missing" for c, t in m.columns if c not in got]
            diffs += [f"{c} {t} is not in the export" for c, t in have if c not in want]
            diffs += [
                f"{c} is {got[c]}, the export's is {t}"
                for c, t in m.columns
                if c in got and got[c] != t
            ]
            problems.append(f"table {m.name} has other columns: " + "; ".join(diffs))
            continue
        if m.name == TENANTS:
            predicates[m.name] = sql.SQL("id = {}").format(sql.Literal(tenant.id))
        elif m.name in PLATFORM:
            if PLATFORM[m.name].role != "data":
                problems.append(f"table {m.name} is an archive table, listed as data")
            predicates[m.name] = _platform_predicate(PLATFORM[m.name], tenant)
        elif m.name in tenant_tables:
            t = tenant_tables[m.name]
            if t.tenant_column is None or t.base_type is None:
                problems.append(f"table {m.name} has no tenant column in the destination")
            else:
                predicates[m.name] = _tenant_predicate(t.tenant_column, t.base_type, tenant)
        else:
            problems.append(
                f"table {m.name} is not a tenant table in the destination (no tenant policy)"
            )
    if problems:
        raise TenantError(
            "the destination does not fit the export:\n- "
            + "\n- ".join(problems)
            + "\nnothing was written"
        )
    clash = conn.execute(
        "select id, slug::text, key::text from tenancy.tenants"
        " where id = %s or slug::text = %s or key::text = %s order by id = %s desc",
        (tenant.id, tenant.slug, tenant.key, tenant.id),
    ).fetchone()
    if clash is not None:
        if clash[0] == tenant.id:
            raise TenantError(
                f"tenant {tenant.id} exists in the destination already (slug {clash[1]!r}); "
                "import creates a tenant, it never merges into one; nothing was written"
            )
        if clash[1] == tenant.slug:
            raise TenantError(
                f"slug {tenant.slug!r} of the exported tenant is taken in the destination by "
                f"tenant {clash[0]}; nothing was written"
            )
        raise TenantError(
            f"key {tenant.key!r} of the exported tenant is the key of tenant {clash[0]} in the "
            "destination; nothing was written"
        )
    privileges = [(m.name, "INSERT") for m in manifest.data()]
    privileges += [(n, "DELETE") for n in OUTBOX_TABLES if n in predicates]
    lacking = [
        f"{p} on {n}"
        for n, p in privileges
        if not _one(conn, "select has_table_privilege(%s, %s)", (ident(n).as_string(conn), p))
    ]
    if lacking:
        raise TenantError("this login lacks " + ", ".join(lacking) + "; nothing was written")
    names = [m.name for m in manifest.data() if m.name != TENANTS]
    ordered = parents_first(names, _foreign_keys(conn, names))
    order = [TENANTS] + [n for n in ordered if n not in OUTBOX_TABLES]
    order += [n for n in ordered if n in OUTBOX_TABLES]
    return predicates, order


def _copy_in(
    conn: Conn, target: sql.Composable, m: ManifestTable, path: Path, meter: Progress
) -> None:
    query = sql.SQL("copy {} ({}) from stdin").format(
        target, sql.SQL(", ").join(sql.Identifier(c) for c, _ in m.columns)
    )
    with conn.cursor().copy(query) as copy, open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            copy.write(chunk)
            meter.add(chunk.count(b"\n"))


def _load_remapped(
    conn: Conn, m: ManifestTable, path: Path, tenant: Tenant, meter: Progress
) -> None:
    """jwt_issuers and jwt_keys: ids are numbers of the whole platform, so issuers get new ones
    in the destination and their keys follow them (matched by issuer name)."""
    staged = "pgtenancy_import_" + m.name.split(".")[1]
    stage = sql.Identifier("pg_temp", staged)
    conn.execute(
        sql.SQL("create temporary table {} (like {}) on commit drop").format(
            sql.Identifier(staged), ident(m.name)
        )
    )
    _copy_in(conn, stage, m, path, meter)
    cols = [c for c, _ in m.columns]
    if m.name == "tenancy.jwt_issuers":
        keep = [c for c in cols if c != "id"]
        conn.execute(
            sql.SQL("insert into tenancy.jwt_issuers ({}) select {} from {} order by id").format(
                sql.SQL(", ").join(map(sql.Identifier, keep)),
                sql.SQL(", ").join(map(sql.Identifier, keep)),
                stage,
            )
        )
        return
    select = [
        sql.SQL("i.id") if c == "issuer_id" else sql.SQL("k.{}").format(sql.Identifier(c))
        for c in cols
    ]
    conn.execute(
        sql.SQL(
            "insert into tenancy.jwt_keys ({}) select {} from {} as k"
            " inner join pg_temp.pgtenancy_import_jwt_issuers as o on o.id = k.issuer_id"
            " inner join tenancy.jwt_issuers as i"
            " on i.issuer = o.issuer and i.tenant_id = o.tenant_id"
            " where i.tenant_id = {}"
        ).format(
            sql.SQL(", ").join(map(sql.Identifier, cols)),
            sql.SQL(", ").join(select),
            stage,
            sql.Literal(tenant.id),
        )
    )


def _raise_sequences(conn: Conn, name: str, predicate: sql.Composable) -> list[tuple[str, int]]:
    """Raise each sequence feeding a column of ``name`` (identity, serial, owned nextval) to at
    least the largest value imported into it."""
    raised: list[tuple[str, int]] = []
    for column, seq in conn.execute(
        "select a.attname::text, pg_catalog.pg_get_serial_sequence(%s, a.attname)"
        " from pg_catalog.pg_attribute as a"
        " where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped"
        " and pg_catalog.pg_get_serial_sequence(%s, a.attname) is not null",
        (ident(name).as_string(conn),) * 3,
    ).fetchall():
        top = _one(
            conn,
            sql.SQL("select max({}) from {} where {}").format(
                sql.Identifier(column), ident(name), predicate
            ),
        )
        if top is None:
            continue
        last, called = _one(
            conn,
            sql.SQL("select last_value, is_called from {}").format(
                sql.SQL(seq)  # pg_get_serial_sequence quotes it
            ),
        )
        if top > last or (top == last and not called):
            conn.execute("select pg_catalog.setval(%s::regclass, %s, true)", (seq, top))
            raised.append((f"{name}.{column}", int(top)))
    return raised


def _load(
    conn: Conn,
    directory: Path,
    manifest: Manifest,
    predicates: dict[str, sql.Composable],
    order: list[str],
    meter: Progress,
) -> list[tuple[str, int]]:
    """COPY each data file into its table in ``order``, checking after each that every row
    loaded is the tenant's."""
    tenant = manifest.tenant
    by_name = {m.name: m for m in manifest.tables}
    loaded: list[tuple[str, int]] = []
    outbox_cleared = False
    for name in order:
        m = by_name[name]
        if name in OUTBOX_TABLES and not outbox_cleared:
            # What the inserts above enqueued (the tenant's $groupidentify, usage alerts): the
            # export's own outbox rows replace it, so nothing goes out twice.
            for outbox in OUTBOX_TABLES:
                if outbox in predicates:
                    conn.execute(
                        sql.SQL("delete from {} where {}").format(ident(outbox), predicates[outbox])
                    )
            outbox_cleared = True
        meter.start(name)
        try:
            if name in REMAPPED:
                _load_remapped(conn, m, directory / m.file, tenant, meter)
            else:
                _copy_in(conn, ident(name), m, directory / m.file, meter)
        except psycopg.Error as exc:
            raise TenantError(
                f"loading {name} from {m.file} failed: {pg_message(exc)}; nothing was written "
                "(one transaction)"
            ) from None
        meter.done()
        owned = _one(
            conn,
            sql.SQL("select count(*) from {} where {}").format(ident(name), predicates[name]),
        )
        if owned != m.rows:
            raise TenantError(
                f"{m.file} holds {m.rows} row(s) but {owned} of them are rows of tenant "
                f"{tenant.id} in {name}: the file holds rows of another tenant (or rows that "
                "lead nowhere); nothing was written"
            )
        loaded.append((name, m.rows))
    return loaded


def import_tenant(url: str, directory: Path, progress: IO[str] | None = None) -> ImportResult:
    """Load an export into ``url`` (see docs/tenant-export.md): everything is checked first, then
    one transaction writes it all or nothing."""
    started = time.monotonic()
    manifest = read_manifest(directory)
    verify_files(directory, manifest, progress)
    tenant = manifest.tenant
    with psycopg.connect(url) as conn:
        _session(conn)
        _require_bypass(conn, "import")
        predicates, order = _check_destination(conn, manifest)
        audit_before = _one(
            conn, "select count(*) from tenancy.audit_logs where tenant_id = %s", (tenant.id,)
        )
        meter = Progress(progress, "imported")
        try:
            loaded = _load(conn, directory, manifest, predicates, order, meter)
        finally:
            meter.close()
        tenant_row = conn.execute(
            "select slug::text, key::text from tenancy.tenants where id = %s", (tenant.id,)
        ).fetchone()
        if tenant_row is None or tuple(tenant_row) != (tenant.slug, tenant.key):
            raise TenantError(
                f"{tenant_file(manifest)} does not hold the tenant the manifest names "
                f"({tenant.id}, slug {tenant.slug!r}); nothing was written"
            )
        raised: list[tuple[str, int]] = []
        for name in order:
            if name not in REMAPPED and name != TENANTS:
                raised += _raise_sequences(conn, name, predicates[name])
        audited = (
            _one(conn, "select count(*) from tenancy.audit_logs where tenant_id = %s", (tenant.id,))
            - audit_before
        )
        database = str(_one(conn, "select current_database()::text"))
        conn.commit()
    return ImportResult(
        tenant,
        database,
        loaded,
        [(m.name, m.rows) for m in manifest.archive()],
        raised,
        int(audited),
        time.monotonic() - started,
    )


def tenant_file(manifest: Manifest) -> str:
    return next(m.file for m in manifest.tables if m.name == TENANTS)


# -- restore -------------------------------------------------------------------------------------


@dataclass
class RestorePlan:
    tenant: Tenant
    table: str
    at: datetime
    side_table: str  # as SQL spells it
    side_name: str  # the table's name in schema tenancy_restore
    rows_now: int
    rows_then: int
    insert: int
    update: int
    delete: int
    excluded: list[str]
    cascades: list[str]
    reused: bool
    untracked: int  # rows now that the trail never recorded (in place deletes them)


@dataclass
class RestoreDone:
    inserted: int
    updated: int
    deleted: int


@dataclass(frozen=True)
class _Shape:
    name: str
    entity_type: str
    tenant_column: str
    base_type: str
    key_columns: list[str]
    excluded: list[str]
    generated: list[str]
    always_identity: list[str]
    columns: list[str]


def _shape(conn: Conn, table: str) -> _Shape:
    """What restore needs of the table: checked to be a tenant table's root and audited."""
    regclass = _one(conn, "select to_regclass(%s)::text", (table,))
    if regclass is None:
        raise TenantError(f"table {table} does not exist; nothing was done")
    name = str(
        _one(
            conn,
            "select n.nspname::text || '.' || c.relname::text from pg_catalog.pg_class as c"
            " inner join pg_catalog.pg_namespace as n on n.oid = c.relnamespace"
            " where c.oid = %s::regclass",
            (regclass,),
        )
    )
    parent = _one(
        conn,
        "select (select i.inhparent::regclass::text from pg_catalog.pg_inherits as i"
        " where i.inhrelid = %s::regclass limit 1)",
        (regclass,),
    )
    if parent is not None:
        raise TenantError(
            f"{name} is a partition or inheritance child of {parent}: restore {parent}, whose "
            "rows the audit trail records; nothing was done"
        )
    # The generated audit triggers name the tenant column and its type (uuid, bigint, integer,
    # text): tenancy.audit_table_info reads them, and is granted to tenancy_service.
    try:
        with conn.transaction():
            info = conn.execute(
                "select tenant_column, tenant_type, key_columns, excluded_columns, entity_type"
                " from tenancy.audit_table_info(%s::regclass)",
                (regclass,),
            ).fetchone()
    except psycopg.errors.ObjectNotInPrerequisiteState:
        raise TenantError(
            f"{name} is not audited (no tenancy_audit_insert trigger): the audit trail holds no "
            "rows of it to rebuild from; nothing was done"
        ) from None
    assert info is not None
    if info[0] is None or info[1] not in ("uuid", "bigint", "integer", "text"):
        raise TenantError(f"{name} has no tenant column its audit trigger names; nothing was done")
    cols = conn.execute(
        "select a.attname::text, a.attgenerated <> '', a.attidentity = 'a'"
        " from pg_catalog.pg_attribute as a"
        " where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped"
        " order by a.attnum",
        (regclass,),
    ).fetchall()
    return _Shape(
        name,
        str(info[4]),
        str(info[0]),
        str(info[1]),
        list(info[2] or []),
        list(info[3] or []),
        [c for c, g, _ in cols if g],
        [c for c, _, a in cols if a],
        [c for c, _, _ in cols],
    )


def side_table_name(table: str, slug: str, at: datetime) -> str:
    """``schema__table__slug__YYYYMMDD_HHMMSS[_ffffff]`` (UTC), at most 63 bytes: a longer one
    keeps its time and ends its prefix with a hash of the whole name."""
    utc = at.astimezone(UTC)
    stamp = utc.strftime("%Y%m%d_%H%M%S") + (f"_{utc.microsecond:06d}" if utc.microsecond else "")
    # Slugs never hold "_": "-" becomes "_", so the name needs no quotes.
    prefix = f"{table.replace('.', '__')}__{slug.replace('-', '_')}"
    name = f"{prefix}__{stamp}"
    if len(name.encode()) > 63:
        short = hashlib.sha256(name.encode()).hexdigest()[:8]
        room = 63 - len(stamp) - len(short) - 3
        name = f"{prefix.encode()[:room].decode(errors='ignore')}_{short}__{stamp}"
    return name


def sql_name(*parts: str) -> str:
    """A qualified name as SQL spells it: quoted only where it must be."""
    return ".".join(
        p if re.fullmatch(r"[a-z_][a-z0-9_]*", p) else '"' + p.replace('"', '""') + '"'
        for p in parts
    )


def _match(shape: _Shape, left: str, right: str) -> sql.Composable:
    if not shape.key_columns:
        return sql.SQL("true")
    return sql.SQL(" and ").join(
        sql.SQL("{}.{} = {}.{}").format(
            sql.Identifier(left), sql.Identifier(c), sql.Identifier(right), sql.Identifier(c)
        )
        for c in shape.key_columns
    )


def _differs(shape: _Shape) -> sql.Composable:
    ignore = sorted(set(shape.excluded) | set(shape.generated))
    return sql.SQL(
        "(to_jsonb(l) operator (pg_catalog.-) {ign}::text[])"
        " is distinct from (to_jsonb(s) operator (pg_catalog.-) {ign}::text[])"
    ).format(ign=sql.Literal(ignore))


def _owned(shape: _Shape, tenant: Tenant, alias: str) -> sql.Composable:
    return _tenant_predicate(shape.tenant_column, shape.base_type, tenant, alias)


def _counts(conn: Conn, shape: _Shape, tenant: Tenant, side: sql.Composable) -> tuple[int, ...]:
    live = ident(shape.name)
    query = sql.SQL(
        "select"
        " (select count(*) from {live} as l where {lo}),"
        " (select count(*) from {side} as s),"
        " (select count(*) from {side} as s where not exists"
        "   (select from {live} as l where {lo} and {m})),"
        " (select count(*) from {live} as l inner join {side} as s on {m}"
        "   where {lo} and {so} and {d}),"
        " (select count(*) from {live} as l where {lo} and not exists"
        "   (select from {side} as s where {so} and {m}))"
    ).format(
        live=live,
        side=side,
        lo=_owned(shape, tenant, "l"),
        so=_owned(shape, tenant, "s"),
        m=_match(shape, "l", "s"),
        d=_differs(shape),
    )
    return tuple(int(v) for v in _one(conn, query))


def _untracked(conn: Conn, shape: _Shape, tenant: Tenant) -> int:
    """The tenant's live rows of which the audit trail holds no row at all (written before the
    table was audited, or their trail dropped by retention): the side table cannot hold them,
    so an in-place restore deletes them."""
    key = (
        sql.SQL("(jsonb_build_object({}))::text").format(
            sql.SQL(", ").join(
                sql.SQL("{}, l.{}").format(sql.Literal(c), sql.Identifier(c))
                for c in shape.key_columns
            )
        )
        if shape.key_columns
        else sql.SQL("null::text")
    )
    return int(
        _one(
            conn,
            sql.SQL(
                "select count(*) from {live} as l where {lo} and not exists"
                " (select from tenancy.audit_logs as a where a.tenant_id = {tid}"
                " and a.entity_type = {entity} and a.entity_id is not distinct from {key})"
            ).format(
                live=ident(shape.name),
                lo=_owned(shape, tenant, "l"),
                tid=sql.Literal(tenant.id),
                entity=sql.Literal(shape.entity_type),
                key=key,
            ),
        )
    )


def _cascades(conn: Conn, name: str) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "select distinct k.conrelid::regclass::text from pg_catalog.pg_constraint as k"
            " where k.contype = 'f' and k.confrelid = %s::regclass and k.confdeltype = 'c'"
            " and k.conrelid <> k.confrelid and k.conparentid = 0 order by 1",
            (ident(name).as_string(conn),),
        )
    ]


def _require_context_role(conn: Conn) -> None:
    ok = _one(
        conn,
        "select r.rolsuper or pg_catalog.pg_has_role(current_user, 'tenancy_service', 'USAGE')"
        " from pg_catalog.pg_roles as r where r.rolname = current_user",
    )
    if not ok:
        raise TenantError(
            "this login may not set a service context of the tenant (tenancy.set_context), "
            "which restore needs: connect as a superuser or a member of tenancy_service; "
            "nothing was done"
        )


def _set_context(conn: Conn, tenant: Tenant) -> None:
    try:
        with conn.transaction():
            conn.execute("select tenancy.set_context(%s)", (tenant.id,))
    except psycopg.Error as exc:
        raise TenantError(
            f"no service context for tenant {tenant.slug} ({tenant.id}): "
            f"{pg_message(exc)}; nothing was done"
        ) from None


def _build_side_table(
    conn: Conn, shape: _Shape, tenant: Tenant, at: datetime, side: sql.Identifier
) -> None:
    """The tenant's rows of the table at ``at`` (tenancy.table_at, in the transaction's service
    context), typed as the table's rows, granted to nobody."""
    live = ident(shape.name)
    conn.execute(
        sql.SQL(
            "create table {} as select r.* from tenancy.table_at({}::regclass, {}) as s"
            " cross join lateral jsonb_populate_record(null::{}, s.data) as r"
        ).format(side, sql.Literal(live.as_string(conn)), sql.Literal(at), live)
    )
    conn.execute(
        sql.SQL("comment on table {} is {}").format(
            side,
            sql.Literal(
                f"pgtenancy tenant restore: the rows of tenant {tenant.slug} ({tenant.id}) "
                f"in {shape.name} at {at.isoformat()}, from the audit trail"
                + (
                    f"; {', '.join(shape.excluded)} (audit_exclude) not recorded: NULL"
                    if shape.excluded
                    else ""
                )
            ),
        )
    )
    roles = [r for r in PGTENANCY_ROLES if _one(conn, "select to_regrole(%s) is not null", (r,))]
    conn.execute(
        sql.SQL("revoke all on table {} from {}").format(
            side,
            sql.SQL(", ").join([sql.SQL("public"), *map(sql.Identifier, roles)]),
        )
    )


def _restore_schema(conn: Conn) -> None:
    """Schema tenancy_restore: created (granted to nobody) when missing; the login must be able to
    create its side table in it."""
    schema = sql.Identifier(RESTORE_SCHEMA)
    if _one(conn, "select to_regnamespace(%s) is null", (RESTORE_SCHEMA,)):
        try:
            with conn.transaction():
                conn.execute(sql.SQL("create schema if not exists {}").format(schema))
        except psycopg.errors.InsufficientPrivilege:
            raise TenantError(
                f"schema {RESTORE_SCHEMA} does not exist and this login may not create it: "
                f"create it first (create schema {RESTORE_SCHEMA}) as a login with CREATE on "
                "the database, or grant that; nothing was done"
            ) from None
        conn.execute(
            sql.SQL("comment on schema {} is {}").format(
                schema,
                sql.Literal(
                    "pgtenancy tenant restore: side tables of tenants' rows as they were "
                    "(schema__table__tenant__time), for review; granted to no application "
                    "role. Drop them once reviewed."
                ),
            )
        )
    elif not _one(
        conn,
        "select has_schema_privilege(%s, 'USAGE') and has_schema_privilege(%s, 'CREATE')",
        (RESTORE_SCHEMA, RESTORE_SCHEMA),
    ):
        raise TenantError(
            f"this login may not create tables in schema {RESTORE_SCHEMA}: grant usage, create "
            f"on schema {RESTORE_SCHEMA} to it (as the schema's owner); nothing was done"
        )


def plan_restore(url: str, tenant_ref: str, at_text: str, table: str) -> RestorePlan:
    """Build the side table ``tenancy_restore.<schema>__<table>__<tenant>__<time>`` holding the
    tenant's rows of ``table`` at ``at_text`` (from the audit trail; an existing one for the same
    tenant, table and time is reused) and count what an in-place restore would do."""
    with psycopg.connect(url) as conn:
        _require_context_role(conn)
        tenant = find_tenant(conn, tenant_ref)
        try:
            with conn.transaction():
                at, future = _one(
                    conn, "select %s::timestamptz, %s::timestamptz > now()", (at_text, at_text)
                )
        except psycopg.Error as exc:
            raise TenantError(
                f"--at {at_text!r} is not a time PostgreSQL reads ({pg_message(exc)}); "
                "nothing was done"
            ) from None
        if future:
            raise TenantError(f"--at {at_text!r} is in the future; nothing was done")
        shape = _shape(conn, table)
        _set_context(conn, tenant)
        side_name = side_table_name(shape.name, tenant.slug, at)
        side = sql.Identifier(RESTORE_SCHEMA, side_name)
        _restore_schema(conn)
        reused = bool(_one(conn, "select to_regclass(%s) is not null", (side.as_string(conn),)))
        if not reused:
            _build_side_table(conn, shape, tenant, at, side)
        elif _one(
            conn,
            sql.SQL("select count(*) from {} as s where not coalesce({}, false)").format(
                side, _owned(shape, tenant, "s")
            ),
        ):
            raise TenantError(
                f"{sql_name(RESTORE_SCHEMA, side_name)} exists and holds rows of another "
                "tenant: drop it or rename it; nothing was done"
            )
        now_, then, ins, upd, dele = _counts(conn, shape, tenant, side)
        untracked = _untracked(conn, shape, tenant)
        cascades = _cascades(conn, shape.name)
        conn.commit()
    return RestorePlan(
        tenant,
        shape.name,
        at,
        sql_name(RESTORE_SCHEMA, side_name),
        side_name,
        now_,
        then,
        ins,
        upd,
        dele,
        shape.excluded,
        cascades,
        reused,
        untracked,
    )


def restore_in_place(url: str, plan: RestorePlan) -> RestoreDone:
    """In one transaction in a service context of the tenant: make the tenant's live rows of the
    table equal to the side table (delete, update, insert), as audited writes. Columns absent
    from the trail (audit_exclude) keep their current values (inserted rows: their defaults)."""
    with psycopg.connect(url) as conn:
        _require_context_role(conn)
        tenant = plan.tenant
        shape = _shape(conn, plan.table)
        _set_context(conn, tenant)
        live = ident(shape.name)
        side = sql.Identifier(RESTORE_SCHEMA, plan.side_name)
        if not _one(conn, "select to_regclass(%s) is not null", (side.as_string(conn),)):
            raise TenantError(f"side table {plan.side_table} is gone; nothing was changed")
        lo, so, m = _owned(shape, tenant, "l"), _owned(shape, tenant, "s"), _match(shape, "l", "s")
        try:
            # The tenant's rows stay as read until the end: concurrent updates and deletes wait.
            conn.execute(sql.SQL("select from {} as l where {} for update").format(live, lo))
            deleted = conn.execute(
                sql.SQL(
                    "delete from {live} as l where {lo} and not exists"
                    " (select from {side} as s where {so} and {m})"
                ).format(live=live, side=side, lo=lo, so=so, m=m)
            ).rowcount
            keys = set(shape.key_columns) | {shape.tenant_column}
            skip = keys | set(shape.excluded) | set(shape.generated) | set(shape.always_identity)
            changed = [c for c in shape.columns if c not in skip]
            updated = 0
            if changed:
                updated = conn.execute(
                    sql.SQL(
                        "update {live} as l set {sets} from {side} as s"
                        " where {lo} and {so} and {m} and {d}"
                    ).format(
                        live=live,
                        side=side,
                        sets=sql.SQL(", ").join(
                            sql.SQL("{} = s.{}").format(sql.Identifier(c), sql.Identifier(c))
                            for c in changed
                        ),
                        lo=lo,
                        so=so,
                        m=m,
                        d=_differs(shape),
                    )
                ).rowcount
            put = [c for c in shape.columns if c not in set(shape.excluded) | set(shape.generated)]
            inserted = conn.execute(
                sql.SQL(
                    "insert into {live} ({cols}) overriding system value"
                    " select {scols} from {side} as s where {so} and not exists"
                    " (select from {live} as l where {lo} and {m})"
                ).format(
                    live=live,
                    side=side,
                    cols=sql.SQL(", ").join(map(sql.Identifier, put)),
                    scols=sql.SQL(", ").join(
                        sql.SQL("s.{}").format(sql.Identifier(c)) for c in put
                    ),
                    so=so,
                    lo=lo,
                    m=m,
                )
            ).rowcount
        except psycopg.Error as exc:
            raise TenantError(
                f"restoring {shape.name} in place failed: {pg_message(exc)}; nothing was changed"
            ) from None
        conn.commit()
    return RestoreDone(inserted, updated, deleted)


# -- the command line ----------------------------------------------------------------------------


def _progress_stream(args: Any) -> IO[str] | None:
    return sys.stderr if (getattr(args, "progress", False) or sys.stderr.isatty()) else None


def run_export(args: Any, url: str) -> int:
    out = Path(args.out)
    done = export_tenant(url, args.tenant, out, _progress_stream(args))
    data = [t for t in done.tables if t.role == "data"]
    archive = [t for t in done.tables if t.role == "archive"]
    t = done.tenant
    print(
        f"exported tenant {t.slug} ({t.id}) to {done.directory}: {len(data)} table(s), "
        f"{sum(s.rows for s in data):,} row(s); archive (audit trail, security events): "
        f"{len(archive)} table(s), {sum(s.rows for s in archive):,} row(s); one snapshot, "
        f"{done.seconds:.1f} s"
    )
    for name, reason in done.skipped:
        print(f"pgtenancy: tenant export: warning: {name} not exported: {reason}", file=sys.stderr)
    print(f"manifest.json sha256 {done.manifest_sha256} (keep it apart to check the export later)")
    secrets = sum(s.rows for s in done.tables if s.name == "tenancy.connector_secrets")
    print(
        f"the export holds secrets ({secrets} webhook URL(s) and signing secret(s) in clear, "
        "API key and invitation token hashes): files are mode 0600 in a 0700 directory; keep "
        "it like a database backup"
    )
    return 0


def run_import(args: Any, url: str) -> int:
    done = import_tenant(url, Path(args.directory), _progress_stream(args))
    t = done.tenant
    print(
        f"imported tenant {t.slug} ({t.id}) into {done.database}: {len(done.loaded)} table(s), "
        f"{sum(n for _, n in done.loaded):,} row(s), one transaction, {done.seconds:.1f} s"
    )
    if done.archived:
        listed = ", ".join(f"{n} ({r:,} row(s))" for n, r in done.archived)
        print(f"not imported (archive, kept in the export): {listed}")
    print(
        f"the destination's audit trail recorded {done.audited:,} imported row(s) as INSERTs "
        "(no tenant context: actor_role empty, db_user this login)"
    )
    for column, value in done.sequences:
        print(f"raised the sequence of {column} to {value}")
    if t.status != "active":
        print(f"tenant {t.slug} is {t.status}, as it was in the source")
    return 0


def run_restore(args: Any, url: str, confirm: Callable[[str], bool] | None = None) -> int:
    if args.in_place and not args.yes and confirm is None and not sys.stdin.isatty():
        raise TenantError(
            "--in-place asks for confirmation on a terminal; pass --yes to confirm in a "
            "script; nothing was done"
        )
    plan = plan_restore(url, args.tenant, args.at, args.table)
    t = plan.tenant
    print(
        f"side table {plan.side_table}: the rows of tenant {t.slug} ({t.id}) in {plan.table} "
        f"at {plan.at.isoformat()}, from the audit trail"
        + (" (built by an earlier restore to that time: drop it to rebuild)" if plan.reused else "")
    )
    print(
        f"rows now {plan.rows_now}, rows then {plan.rows_then}: in place this would insert "
        f"{plan.insert}, update {plan.update}, delete {plan.delete}"
    )
    if plan.excluded:
        print(
            f"columns not in the audit trail (audit_exclude): {', '.join(plan.excluded)}: NULL "
            "in the side table; in place they keep their current values"
        )
    if plan.untracked:
        print(
            f"warning: {plan.untracked} row(s) of the tenant in {plan.table} have no row in the "
            "audit trail (written before the table was audited, or their trail was dropped by "
            "retention): the trail cannot say what they were, and in place deletes them"
        )
    if plan.cascades and plan.delete:
        print(
            f"deleting rows of {plan.table} cascades to {', '.join(plan.cascades)} "
            "(on delete cascade)"
        )
    if not args.in_place:
        print(f"review it, then restore in place with --in-place, or drop {plan.side_table}")
        return 0
    if not args.yes:
        question = (
            f"make the rows of tenant {t.slug} in {plan.table} equal to {plan.side_table} "
            f"(insert {plan.insert}, update {plan.update}, delete {plan.delete})? [y/N] "
        )
        ask = confirm or (lambda q: input(q).strip().lower() in ("y", "yes"))
        if not ask(question):
            print(f"not restored: {plan.table} is unchanged ({plan.side_table} is kept)")
            return 1
    done = restore_in_place(url, plan)
    print(
        f"restored {plan.table} of tenant {t.slug} to {plan.at.isoformat()}: inserted "
        f"{done.inserted}, updated {done.updated}, deleted {done.deleted} (audited as writes "
        "of a service context)"
    )
    return 0
