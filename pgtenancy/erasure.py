"""``pgtenancy erasure``: keep the erasure ledger outside the database, and apply it again.

An erasure (``tenancy.erase_subject``) is recorded in ``tenancy.erasure_ledger`` by a hash of the
subject, never its id. Restoring a backup brings back the personal values erased since it was
taken, and the ledger entries written since too: :func:`export_ledger` writes every tenant's
entries to a file to keep with the backups (a tenant that is not active only when connected as
a role that bypasses row level security: else it is named, and the command exits 1), and
:func:`reapply` adds the entries the restored database lacks (``tenancy.import_erasure_ledger``)
and applies every entry again (``tenancy.reapply_erasures``), tenant by tenant, each in its own
transaction and service context. :func:`load_ledger` checks every entry of a kept file first,
so one malformed or forged entry stops the run before any tenant is touched. Connect as a
``tenancy_service`` login (or a superuser).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

FORMAT = "pgtenancy.erasure_ledger"
VERSION = 1


class LedgerError(Exception):
    """A ledger file that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class Reapplied:
    """One ledger entry applied again: the subjects found and the rows changed."""

    tenant_id: uuid.UUID
    ledger_id: uuid.UUID
    subject_hash: str
    subjects: int
    rows_changed: int


@dataclass(frozen=True)
class Skipped:
    """A tenant whose entries could not be applied (not active: no context can be set)."""

    tenant_id: uuid.UUID
    reason: str


def _tenants(conn: psycopg.Connection[Any]) -> list[tuple[uuid.UUID, str]]:
    return [
        (r[0], r[1])
        for r in conn.execute("select t.id, t.status from tenancy.tenants as t order by t.id")
    ]


def _set_context(conn: psycopg.Connection[Any], tenant_id: uuid.UUID) -> None:
    conn.execute("select from tenancy.set_context(%s)", (tenant_id,))


_LEDGER_SQL = (
    "select e.tenant_id::text, e.id::text, e.erased_at, e.subject_hash, "
    "e.reason, e.counts, e.audit_rows, e.erased_by "
    "from tenancy.erasure_ledger as e where e.tenant_id = %s "
    "order by e.erased_at, e.id"
)


@dataclass(frozen=True)
class Ledger:
    """The ledger read from a database: its entries, and the tenants whose entries could not
    be read (not active: no tenant context can be set, and the role is subject to row level
    security)."""

    entries: list[dict[str, Any]]
    unread: list[Skipped]


def _bypasses_rls(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "select r.rolsuper or r.rolbypassrls from pg_catalog.pg_roles as r"
        " where r.rolname operator (pg_catalog.=) current_user"
    ).fetchone()
    return bool(row and row[0])


def read_ledger(database_url: str) -> Ledger:
    """Every tenant's ledger entries, oldest first: each active tenant in a service context;
    a tenant that is not active only when the role bypasses row level security (a superuser),
    else it is listed in ``unread``."""
    entries: list[dict[str, Any]] = []
    unread: list[Skipped] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        direct = _bypasses_rls(conn)
        for tenant_id, status in _tenants(conn):
            if status != "active" and not direct:
                unread.append(Skipped(tenant_id, f"it is {status}"))
                continue
            with conn.transaction():
                if status == "active":
                    _set_context(conn, tenant_id)
                with conn.cursor(row_factory=dict_row) as cur:
                    cur.execute(_LEDGER_SQL, (tenant_id,))
                    for row in cur.fetchall():
                        row["erased_at"] = row["erased_at"].isoformat()
                        entries.append(row)
    return Ledger(entries, unread)


def export_ledger(database_url: str, out: Path) -> Ledger:
    """Write the ledger to ``out`` (JSON); returns what was read (entries and unread tenants)."""
    ledger = read_ledger(database_url)
    document = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "entries": ledger.entries,
    }
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if str(out) == "-":
        print(text, end="")
    else:
        out.write_text(text, encoding="utf-8")
    return ledger


def load_ledger(path: Path) -> list[dict[str, Any]]:
    """The entries of a ledger file written by :func:`export_ledger`."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read the ledger: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise LedgerError(f"{path}: not a JSON ledger: {exc}") from exc
    if (
        not isinstance(document, dict)
        or document.get("format") != FORMAT
        or document.get("version") != VERSION
    ):
        raise LedgerError(
            f"{path}: not a pgtenancy erasure ledger of version {VERSION} "
            f"(format {document.get('format') if isinstance(document, dict) else None!r})"
        )
    entries = document.get("entries")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("tenant_id"), str) for e in entries
    ):
        raise LedgerError(f"{path}: entries must be a list of ledger rows with a tenant_id")
    for number, entry in enumerate(entries, 1):
        problem = _entry_problem(entry)
        if problem:
            raise LedgerError(f"{path}: entry {number}: {problem}")
    return entries


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HASH = re.compile(r"[0-9a-f]{64}")


def _entry_problem(entry: dict[str, Any]) -> str | None:
    """What is wrong with one ledger row (as tenancy.import_erasure_ledger takes it), or None.

    Checked for every entry before any tenant is touched: one bad entry must not stop the
    erasures of the tenants after it half-way."""
    try:
        uuid.UUID(entry["tenant_id"])
    except ValueError:
        return f"tenant_id {entry['tenant_id']!r} is not a uuid"
    entry_id = entry.get("id")
    if not isinstance(entry_id, str) or not _UUID.fullmatch(entry_id):
        return f"id {entry_id!r} is not a uuid (lower case)"
    subject_hash = entry.get("subject_hash")
    if not isinstance(subject_hash, str) or not _HASH.fullmatch(subject_hash):
        return f"subject_hash {subject_hash!r} is not a SHA-256 in lower-case hex"
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        return f"reason {reason!r} is not a non-empty text"
    erased_at = entry.get("erased_at")
    try:
        if not isinstance(erased_at, str) or datetime.fromisoformat(erased_at).tzinfo is None:
            raise ValueError
    except ValueError:
        return f"erased_at {erased_at!r} is not an ISO 8601 time with its offset"
    if entry.get("counts") is not None and not isinstance(entry["counts"], dict):
        return f"counts {entry['counts']!r} is not an object"
    audit_rows = entry.get("audit_rows")
    if audit_rows is not None and (
        isinstance(audit_rows, bool)
        or not isinstance(audit_rows, int)
        or not 0 <= audit_rows < 2**31
    ):
        return f"audit_rows {audit_rows!r} is not a count"
    erased_by = entry.get("erased_by")
    if erased_by is not None and not isinstance(erased_by, str):
        return f"erased_by {erased_by!r} is not a text"
    return None


def reapply(
    database_url: str, entries: Iterable[dict[str, Any]] = ()
) -> tuple[list[Reapplied], list[Skipped]]:
    """Import ``entries`` (from a kept ledger) and apply every tenant's ledger again."""
    by_tenant: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for entry in entries:
        by_tenant.setdefault(uuid.UUID(entry["tenant_id"]), []).append(entry)
    done: list[Reapplied] = []
    skipped: list[Skipped] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        statuses = dict(_tenants(conn))
        for tenant_id in sorted(set(statuses) | set(by_tenant)):
            status = statuses.get(tenant_id)
            if status != "active":
                if tenant_id in by_tenant or status is None:
                    skipped.append(
                        Skipped(
                            tenant_id, "no such tenant" if status is None else f"it is {status}"
                        )
                    )
                continue
            with conn.transaction():
                _set_context(conn, tenant_id)
                if tenant_id in by_tenant:
                    conn.execute(
                        "select tenancy.import_erasure_ledger(%s)", (Jsonb(by_tenant[tenant_id]),)
                    )
                for ledger_id, subject_hash, subjects, rows in conn.execute(
                    "select r.ledger_id, r.subject_hash, r.subjects, r.rows_changed "
                    "from tenancy.reapply_erasures() as r"
                ):
                    done.append(Reapplied(tenant_id, ledger_id, subject_hash, subjects, rows))
    return done, skipped
