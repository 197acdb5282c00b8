"""``pgtenancy erasure``: keep the erasure ledger outside the database, and apply it again.

An erasure (``tenancy.erase_subject``) is recorded in ``tenancy.erasure_ledger`` by a hash of the
subject, never its id. Restoring a backup brings back the personal values erased since it was
taken, and the ledger entries written since too: :func:`export_ledger` writes every tenant's
entries to a file to keep with the backups, and :func:`reapply` adds the entries the restored
database lacks (``tenancy.import_erasure_ledger``) and applies every entry again
(``tenancy.reapply_erasures``), tenant by tenant, each in its own transaction and service
context. Connect as a ``tenancy_service`` login (or a superuser).
"""

from __future__ import annotations

import json
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


def read_ledger(database_url: str) -> list[dict[str, Any]]:
    """Every active tenant's ledger entries, oldest first (each tenant in a service context)."""
    entries: list[dict[str, Any]] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for tenant_id, status in _tenants(conn):
            if status != "active":
                continue
            with conn.transaction():
                _set_context(conn, tenant_id)
                with conn.cursor(row_factory=dict_row) as cur:
                    cur.execute(
                        "select e.tenant_id::text, e.id::text, e.erased_at, e.subject_hash, "
                        "e.reason, e.counts, e.audit_rows, e.erased_by "
                        "from tenancy.erasure_ledger as e where e.tenant_id = %s "
                        "order by e.erased_at, e.id",
                        (tenant_id,),
                    )
                    for row in cur.fetchall():
                        row["erased_at"] = row["erased_at"].isoformat()
                        entries.append(row)
    return entries


def export_ledger(database_url: str, out: Path) -> int:
    """Write the ledger to ``out`` (JSON); returns the number of entries."""
    entries = read_ledger(database_url)
    document = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "entries": entries,
    }
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if str(out) == "-":
        print(text, end="")
    else:
        out.write_text(text, encoding="utf-8")
    return len(entries)


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
    for entry in entries:
        try:
            uuid.UUID(entry["tenant_id"])
        except ValueError as exc:
            raise LedgerError(f"{path}: tenant_id {entry['tenant_id']!r} is not a uuid") from exc
    return entries


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
