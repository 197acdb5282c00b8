"""``pgtenancy tenant offboard`` and ``pgtenancy tenant certificate``: a tenant deleted, with proof.

Thin calls of the SQL functions that do the work (``sql/functions/offboarding/``), as a login in
``tenancy_admin``:

- :func:`offboard`: ``tenancy.offboard_tenant`` step after step, each in its own transaction
  (the first suspends the tenant and counts its rows, each further one deletes a batch, the last
  sets its status to ``deleted`` and returns the deletion certificate), then one
  ``tenancy.seal_audit()`` round so the certificate's audit entry is chained. Interrupted, it
  loses at most the step under way: run it again to resume.
- :func:`certificate`: ``tenancy.deletion_certificate``; :func:`verify`:
  ``tenancy.verify_deletion_certificate`` (the hash, the audit entry holding the same
  certificate, the seal that chains it).
- :func:`certificate_sha256`: the certificate's hash recomputed here, from its canonical JSON
  (``tenancy.canonical_json`` writes the same text), for checks outside the database.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors
from psycopg.types.json import Jsonb

#: The keys of a certificate its sha256 does not cover: the hash itself and the audit row.
UNHASHED = ("sha256", "audit_id")


class OffboardError(Exception):
    """The command cannot go on as asked (exit status 2); nothing was deleted by it."""


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    slug: str
    status: str


@dataclass(frozen=True)
class CertificateCheck:
    """The outcome of ``tenancy.verify_deletion_certificate``."""

    ok: bool
    sealed: bool
    audit_id: int | None
    problem: str | None


Conn = psycopg.Connection[Any]


def canonical_json(value: Any) -> str:
    """The text ``tenancy.canonical_json`` writes for a certificate's values (objects, arrays,
    strings, integers): keys in code point order, no whitespace, non-ASCII as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def certificate_sha256(certificate: dict[str, Any]) -> str:
    """The SHA-256 (hex) a certificate's ``sha256`` must be: of the canonical JSON of every key
    but ``sha256`` and ``audit_id``."""
    body = {k: v for k, v in certificate.items() if k not in UNHASHED}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def find_tenant(conn: Conn, ref: str) -> Tenant:
    """The tenant a command line names: its id (a uuid) or its slug."""
    try:
        tenant_id: uuid.UUID | None = uuid.UUID(ref.strip())
    except ValueError:
        tenant_id = None
    if tenant_id is not None:
        row = conn.execute(
            "select id, slug, status from tenancy.tenants where id = %s", (tenant_id,)
        ).fetchone()
    else:
        row = conn.execute(
            "select id, slug, status from tenancy.tenants where slug = %s", (ref.strip(),)
        ).fetchone()
    if row is None:
        raise OffboardError(f"no tenant {ref!r} (a tenant id or slug)")
    return Tenant(row[0], str(row[1]), str(row[2]))


def stored_certificate(conn: Conn, tenant_id: uuid.UUID) -> dict[str, Any] | None:
    """The tenant's deletion certificate when its offboarding has finished, else None."""
    row = conn.execute(
        "select certificate from tenancy.tenant_offboardings where tenant_id = %s", (tenant_id,)
    ).fetchone()
    return None if row is None or row[0] is None else dict(row[0])


def step(conn: Conn, tenant_id: uuid.UUID, reason: str | None, batch_rows: int) -> dict[str, Any]:
    """One ``tenancy.offboard_tenant`` step, committed (the connection is in autocommit)."""
    row = conn.execute(
        "select tenancy.offboard_tenant(%s, %s, %s)", (tenant_id, reason, batch_rows)
    ).fetchone()
    assert row is not None
    return dict(row[0])


def offboard(
    url: str,
    tenant_id: uuid.UUID,
    reason: str | None,
    batch_rows: int = 10000,
    progress: Callable[[dict[str, Any]], None] | None = None,
    poll: float = 1.0,
    seal_wait: float = 30.0,
) -> dict[str, Any]:
    """Offboard a tenant to the end; returns its deletion certificate.

    Each step is committed before the next; ``progress`` gets every step's result (``waiting_for``
    in it: transactions begun before the suspension still run, and the next step comes ``poll``
    seconds later). Once done, sealing rounds chain the certificate's audit entry (for at most
    ``seal_wait`` seconds while older transactions still run; skipped when the login may not
    seal)."""
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            result = step(conn, tenant_id, reason, batch_rows)
            if result.get("done"):
                break
            if progress is not None:
                progress(result)
            if result.get("waiting_for"):
                time.sleep(poll)
        result.pop("done", None)
        # Sealing chains the rows of transactions that have ended, and of every older one: a
        # long transaction elsewhere on the server holds the certificate's row back for a while.
        deadline = time.monotonic() + seal_wait
        with contextlib.suppress(errors.InsufficientPrivilege):
            while True:
                conn.execute("select tenancy.seal_audit()")
                row = conn.execute(
                    "select sealed from tenancy.verify_deletion_certificate(%s)",
                    (json.dumps(result),),
                ).fetchone()
                if row is None or row[0] or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
    return result


def certificate(url: str, tenant_id: uuid.UUID) -> dict[str, Any]:
    """``tenancy.deletion_certificate``: P0002 (never offboarded), 55000 (under way)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select tenancy.deletion_certificate(%s)", (tenant_id,)).fetchone()
    assert row is not None
    return dict(row[0])


def verify(url: str, cert: dict[str, Any]) -> CertificateCheck:
    """``tenancy.verify_deletion_certificate`` of a certificate (stored, or a copy)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select ok, sealed, audit_id, problem from tenancy.verify_deletion_certificate(%s)",
            (Jsonb(cert),),
        ).fetchone()
    assert row is not None
    return CertificateCheck(bool(row[0]), bool(row[1]), row[2], row[3])


# -- the command line ---------------------------------------------------------------------------


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _Progress:
    """One stderr line per step: rows deleted, the tables, the total so far, the pace."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.waiting: list[int] | None = None

    def __call__(self, result: dict[str, Any]) -> None:
        waiting = result.get("waiting_for")
        if waiting:
            if waiting != self.waiting:
                pids = ", ".join(str(p) for p in waiting)
                _say(
                    f"  waiting for {len(waiting)} transaction(s) begun before the suspension "
                    f"(pids {pids}): they may hold a context of the tenant"
                )
            self.waiting = list(waiting)
            return
        self.waiting = None
        before, deleted = int(result["rows_before"]), int(result["rows_deleted"])
        if int(result["step"]) == 1:
            _say(f"  step 1: suspended; {before:,} row(s) of the tenant in its tenant tables")
            return
        tables = ", ".join(f"{t} {n:,}" for t, n in sorted(result["tables"].items()))
        share = f" ({100 * deleted // before}%)" if before else ""
        pace = deleted / max(time.monotonic() - self.start, 1e-6)
        _say(
            f"  step {result['step']}: {int(result['deleted']):,} row(s) deleted ({tables}); "
            f"{deleted:,} of {before:,}{share}, {pace:,.0f} rows/s"
        )


def _confirm(tenant: Tenant) -> None:
    what = (
        f"tenant {tenant.slug} ({tenant.id}, {tenant.status}): every row of it in every tenant "
        "table is deleted for good (its audit trail and security events are kept)"
    )
    if not sys.stdin.isatty():
        raise OffboardError(f"offboarding {what}: pass --yes to confirm; nothing was done")
    _say(f"Offboarding {what}.")
    print(f"Type the tenant's slug ({tenant.slug}) to go on: ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip() != tenant.slug:
        raise OffboardError("not confirmed; nothing was done")


def cmd_offboard(args: argparse.Namespace) -> int:
    from .cli import UsageError, _url

    args.command = "tenant offboard"
    url = _url(args)
    if args.batch_rows < 1 or args.batch_rows > 1_000_000:
        raise UsageError("tenant offboard: --batch-rows must be 1 to 1000000; nothing was done")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            tenant = find_tenant(conn, args.tenant)
            done = stored_certificate(conn, tenant.id)
        if done is None and not args.yes:
            _confirm(tenant)
    except OffboardError as exc:
        raise UsageError(f"tenant offboard: {exc}") from None
    if done is None:
        _say(f"offboarding tenant {tenant.slug} ({tenant.id}), {args.batch_rows:,} rows per step")
        try:
            done = offboard(url, tenant.id, args.reason, args.batch_rows, _Progress())
        except KeyboardInterrupt:
            _say(
                "interrupted: the step under way was rolled back; run the same command again to "
                "resume (the tenant stays suspended)"
            )
            return 130
    else:
        _say(f"tenant {tenant.slug} ({tenant.id}) was offboarded already: its certificate")
    rows = done.get("rows", {})
    _say(
        f"tenant {tenant.slug} offboarded: {int(rows.get('deleted', 0)):,} row(s) deleted from "
        f"{len(done.get('tables', []))} tenant table(s); certificate sha256 {done.get('sha256')}, "
        f"audit row {done.get('audit_id')}"
    )
    print(json.dumps(done, indent=2, sort_keys=True, ensure_ascii=False))
    return 0


def cmd_certificate(args: argparse.Namespace) -> int:
    from .cli import UsageError, _url

    args.command = "tenant certificate"
    url = _url(args)
    try:
        if args.file is not None:
            where = "standard input" if args.file == "-" else args.file
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
            try:
                cert = json.loads(text)
            except ValueError as exc:
                raise OffboardError(f"the certificate in {where} is not JSON ({exc})") from None
            if not isinstance(cert, dict):
                raise OffboardError(f"the certificate in {where} is not a JSON object")
            with psycopg.connect(url, autocommit=True) as conn:
                tenant = find_tenant(conn, args.tenant)
            if str((cert.get("tenant") or {}).get("id")) != str(tenant.id):
                raise OffboardError(f"the certificate in {where} is not tenant {args.tenant}'s")
        else:
            with psycopg.connect(url, autocommit=True) as conn:
                tenant = find_tenant(conn, args.tenant)
            cert = certificate(url, tenant.id)
    except OffboardError as exc:
        raise UsageError(f"tenant certificate: {exc}") from None
    print(json.dumps(cert, indent=2, sort_keys=True, ensure_ascii=False))
    if not (args.verify or args.file is not None):
        return 0
    check = verify(url, cert)
    if check.ok:
        _say(
            f"ok: the deletion certificate of tenant {tenant.slug} verifies: sha256 "
            f"{cert.get('sha256')}, sealed in audit row {check.audit_id}"
        )
        return 0
    _say(f"NOT OK: the deletion certificate of tenant {tenant.slug}: {check.problem}")
    return 1


def add_commands(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``offboard`` and ``certificate`` to the actions of ``pgtenancy tenant``."""
    from .cli import _add_url

    tenant_help = "the tenant's id (a uuid) or its slug"
    q = actions.add_parser(
        "offboard",
        help="delete every row of a tenant in every tenant table, in batches, and print its "
        "deletion certificate (as a tenancy_admin login; run it again to resume)",
    )
    q.add_argument("tenant", metavar="TENANT", help=tenant_help)
    q.add_argument(
        "--reason",
        required=True,
        help="why (1 to 500 characters): kept in the certificate and the audit trail",
    )
    q.add_argument(
        "--batch-rows",
        type=int,
        default=10000,
        metavar="N",
        help="rows deleted per step, each step its own transaction (default 10000)",
    )
    q.add_argument(
        "--yes", action="store_true", help="do not ask for the tenant's slug as confirmation"
    )
    _add_url(q)
    q.set_defaults(func=cmd_offboard)

    q = actions.add_parser(
        "certificate",
        help="print an offboarded tenant's deletion certificate; --verify checks it against the "
        "sealed audit trail (exit 1 when it does not verify)",
    )
    q.add_argument("tenant", metavar="TENANT", help=tenant_help)
    q.add_argument(
        "--verify",
        action="store_true",
        help="check its hash, its audit entry and the seal chaining it (exit 0: verifies, 1: not)",
    )
    q.add_argument(
        "--file",
        metavar="FILE",
        help="verify this certificate (a copy kept elsewhere; -: standard input) instead of the "
        "stored one; implies --verify",
    )
    _add_url(q)
    q.set_defaults(func=cmd_certificate)
