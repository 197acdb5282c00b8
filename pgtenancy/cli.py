"""The ``pgtenancy`` command line.

Commands that touch a database act only on the one the user names, with ``--database-url`` or
``DATABASE_URL``: nothing falls back to a default server or creates a cluster unasked. The
throwaway cluster of ``pgtenancy db`` (development tooling, :mod:`pgtenancy.testing.cluster`)
is imported only by that command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from . import migrate as migrations

DEFAULT_DBNAME = "pgtenancy"


class UsageError(Exception):
    """The command line cannot be carried out as given (exit status 2, nothing done)."""


def _url(args: argparse.Namespace) -> str:
    """The database the user named: ``--database-url``, else ``$DATABASE_URL``; never a default.

    Without either, with an empty one, or with one that names no database (``postgresql://``,
    what ``postgresql://$HOST/$DB`` becomes when both are unset), all of which libpq would take
    as "the default server", the command is refused before anything is opened.
    """
    if args.database_url is not None:
        if not args.database_url.strip():
            raise UsageError(f"{args.command}: --database-url is empty; nothing was done")
        return _names_a_database(args, "--database-url", str(args.database_url))
    env = os.environ.get("DATABASE_URL")
    if env is not None:
        if not env.strip():
            raise UsageError(f"{args.command}: DATABASE_URL is set but empty; nothing was done")
        return _names_a_database(args, "DATABASE_URL", env)
    raise UsageError(
        f"{args.command}: which database? Pass --database-url URL or set DATABASE_URL; "
        'for the throwaway local cluster use --database-url "$(pgtenancy db url)". '
        "Nothing was done."
    )


def _names_a_database(args: argparse.Namespace, where: str, url: str) -> str:
    # The URL is not repeated in the message: it may carry a password.
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise UsageError(
            f"{args.command}: {where} is not a libpq URL ({exc}); nothing was done"
        ) from None
    if not (params.get("dbname") or params.get("service")):  # a service file names it
        raise UsageError(
            f"{args.command}: {where} names no database (libpq would use its default one); "
            "name it, as in postgresql://USER@HOST/DBNAME; nothing was done"
        )
    return url


def _add_url(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        help="libpq URL of the target database (default: $DATABASE_URL; one of the two is "
        'required: for the throwaway cluster, "$(pgtenancy db url)")',
    )


def cmd_migrate(args: argparse.Namespace) -> int:
    url = _url(args)
    if args.list:
        rows = migrations.status(url)
        width = max(len(r.id) for r in rows)
        for r in rows:
            state = "applied" if r.applied else "pending"
            print(f"{state:8} {r.id:{width}}  {r.source}")
        return 0
    keep = bool(args.keep_temp_privilege)
    had_temp = not keep and migrations.temp_privilege(url).public_has_temp
    outcome = migrations.migrate_database(url, keep_temp_privilege=keep)
    for sid in outcome.adopted:
        print(f"recorded {sid} (its objects exist already, made by the steps it replaces)")
    for sid in outcome.applied:
        print(f"applied {sid}")
    for sig in outcome.dropped:
        print(f"dropped function {sig} (no file in sql/functions defines it any more)")
    if not (outcome.adopted or outcome.applied or outcome.dropped):
        print("database is up to date")
    if had_temp:
        print("revoked TEMPORARY on the database from PUBLIC (see --keep-temp-privilege)")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    files: list[Path] = []
    for raw in args.paths:
        path = Path(raw)
        files.extend(sorted(path.glob("*.sql")) if path.is_dir() else [path])
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"pgtenancy: no such file: {', '.join(missing)}; nothing applied", file=sys.stderr)
        return 2
    url = _url(args)
    if args.each:
        return _apply_each(url, files)
    # All or nothing: one transaction over every file, so a failing file leaves none applied.
    with psycopg.connect(url, autocommit=True) as conn:
        current = files[0] if files else None
        try:
            with conn.transaction():
                for current in files:
                    _run_file(conn, current)
        except _EndedTransaction as ended:
            print(f"pgtenancy: {ended}", file=sys.stderr)
            return 2
        except psycopg.Error as exc:
            others = len(files) - 1
            rest = (
                f", nor the {others} other file{'s' if others != 1 else ''} (one transaction; "
                "--each applies file by file)"
                if others
                else ""
            )
            print(f"pgtenancy: {current} was not applied{rest}: {exc}", file=sys.stderr)
            return 2
    for f in files:
        print(f"applied {f}")
    return 0


class _EndedTransaction(Exception):
    """A file ended apply's transaction with a COMMIT, ROLLBACK or END of its own."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} ends the transaction (a COMMIT, ROLLBACK or END of its own): what ran up "
            "to that point may be committed; apply stopped there and ran none of the files "
            "after it. Remove the transaction control from the file."
        )


def _run_file(conn: psycopg.Connection[tuple[object, ...]], path: Path) -> None:
    """Run one file inside apply's open transaction; refuse a file that ended it.

    What such a file committed cannot be undone; stopping keeps the files after it from running
    outside any transaction, one statement at a time.
    """
    conn.execute(path.read_text().encode())
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
        raise _EndedTransaction(path)


def _apply_each(url: str, files: list[Path]) -> int:
    """One transaction per file, in order; stops at the first failing file."""
    with psycopg.connect(url, autocommit=True) as conn:
        for f in files:
            try:
                with conn.transaction():
                    _run_file(conn, f)
            except _EndedTransaction as ended:
                print(f"pgtenancy: {ended}", file=sys.stderr)
                return 2
            except psycopg.Error as exc:
                print(f"pgtenancy: {f} was not applied: {exc}", file=sys.stderr)
                return 2
            print(f"applied {f}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from . import doctor

    spec = None
    if args.spec:
        from .generator import SpecError

        try:
            spec = doctor.load_spec_file(Path(args.spec))
        except SpecError as exc:
            print(f"pgtenancy: doctor: {exc}", file=sys.stderr)
            return 2
    try:
        findings = doctor.run_lints(_url(args), spec)
    except LookupError as exc:
        print(f"pgtenancy: doctor: {exc}", file=sys.stderr)
        return 2
    print(doctor.as_json(findings) if args.format == "json" else doctor.as_text(findings))
    # Exit 1 when anything at or above --level was found.
    return 1 if doctor.at_or_above(findings, args.level.upper()) else 0


def cmd_db(args: argparse.Namespace) -> int:
    from .testing import cluster  # development tooling, only for this command

    c = cluster.local_cluster()
    try:
        if args.action == "start":
            c.ensure()
            print(c.url())
        elif args.action == "stop":
            print("stopped" if c.stop() else "not running")
        elif args.action == "url":
            print(c.ensure().url(args.dbname))
        elif args.action == "status":
            print(f"{'running' if c.is_running() else 'stopped'} {c.root}")
    except cluster.ClusterError as exc:
        print(f"pgtenancy: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from .generator import cli_main

    argv = ["--spec", args.spec, "--out", args.out]
    if args.tests:
        argv += ["--tests", args.tests]
    if args.check:
        argv.append("--check")
    if args.flavour != "postgres":
        argv += ["--flavour", args.flavour]
    argv += ["--snapshot", args.snapshot] if args.snapshot else ["--database-url", _url(args)]
    return int(cli_main(argv))


def cmd_adopt(args: argparse.Namespace) -> int:
    from . import adopt  # reads the spec with the generator's parser: not for applications

    url = _url(args)
    try:
        plan = adopt.adopt(
            url, Path(args.spec), Path(args.out), args.tenant_map, batch=args.batch_size
        )
    except (adopt.AdoptError, adopt.SpecError) as exc:
        for line in str(exc).splitlines():
            print(f"pgtenancy: adopt: {line}", file=sys.stderr)
        print(f"pgtenancy: adopt: nothing was written to {args.out}", file=sys.stderr)
        return 2
    for warning in plan.warnings:
        print(f"pgtenancy: adopt: warning: {warning}", file=sys.stderr)
    adds = sum(1 for p in plan.tables if p.add_column)
    keys = sum(len(p.rebuilds) for p in plan.tables)
    fks = len(plan.foreign_keys) + sum(len(r.dependents) for p in plan.tables for r in p.rebuilds)
    tenants = "" if plan.tenants is None else f", {len(plan.tenants)} tenant(s) to create"
    print(
        f"wrote {args.out}: {len(plan.tables)} table(s), {adds} tenant column(s) to add, "
        f"{len(plan.order)} backfill(s), {keys} key(s) or index(es) to rebuild, {fks} foreign "
        f"key(s) to re-create{tenants}; review it, then: psql -v ON_ERROR_STOP=1 -f {args.out}"
    )
    return 0


def cmd_domains(args: argparse.Namespace) -> int:
    from . import domains

    url = _url(args)
    nameservers = [args.nameserver] if args.nameserver else None
    resolver = domains.make_resolver(nameservers, port=args.port, timeout=args.timeout)
    outcomes = domains.verify(url, resolver)
    errors = 0
    for o in outcomes:
        if o.error is not None:
            errors += 1
            print(
                f"pgtenancy: domains verify: {o.hostname}: TXT lookup of {o.txt_name} failed "
                f"({o.error}); left as it was",
                file=sys.stderr,
            )
        else:
            seen = f"{len(o.values)} TXT value(s) at {o.txt_name}"
            print(f"{o.status} {o.hostname} ({seen})")
    if not outcomes:
        print("no custom domain to verify")
    return 1 if errors else 0


class _Stop(Exception):
    """SIGTERM ended ``jwks sync --watch``."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def _jwks_round(url: str, args: argparse.Namespace) -> int:
    """One ``jwks sync`` pass: a line per issuer; 1 when any failed."""
    from . import jwks

    try:
        outcomes = jwks.sync(
            url,
            args.issuer,
            allow_empty=args.allow_empty,
            allow_http=args.allow_http,
            timeout=args.timeout,
        )
    except LookupError as exc:
        raise UsageError(f"jwks sync: {exc}") from None
    failed = 0
    for o in outcomes:
        if o.error is not None:
            failed += 1
            when = o.target.synced_at
            stored = f"last stored {when.isoformat(' ', 'seconds')}" if when else "none stored yet"
            print(
                f"pgtenancy: jwks sync: {o.target.issuer}: {o.error}; its keys are unchanged "
                f"({stored})",
                file=sys.stderr,
                flush=True,
            )
        else:
            print(
                f"synced {o.target.issuer}: {o.added} added, {o.removed} removed, "
                f"{o.kept} kept, {o.skipped} skipped",
                flush=True,
            )
    if not outcomes:
        print("no trusted issuer has a JWKS URL", flush=True)
    return 1 if failed else 0


def cmd_jwks(args: argparse.Namespace) -> int:
    import signal
    import time

    url = _url(args)
    if not 0 < args.timeout <= 300:
        raise UsageError(f"jwks sync: --timeout {args.timeout:g} is not from 0 to 300 seconds")
    if args.watch is None:
        return _jwks_round(url, args)
    if args.watch < 1:
        raise UsageError(f"jwks sync: --watch {args.watch:g} is shorter than 1 second")
    # The first pass must reach the database (a wrong URL or login fails at once, exit 2);
    # later passes report a failure and try again at the next one.
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        _jwks_round(url, args)
        while True:
            time.sleep(args.watch)
            try:
                _jwks_round(url, args)
            except (UsageError, psycopg.Error) as exc:
                what = str(exc).strip()
                what = what if isinstance(exc, UsageError) else f"jwks sync: {what}"
                print(
                    f"pgtenancy: {what}; trying again in {args.watch:g} s",
                    file=sys.stderr,
                    flush=True,
                )
    except (KeyboardInterrupt, _Stop):
        return 0


def _audit_tenant(args: argparse.Namespace) -> uuid.UUID | None:
    """TENANT_ID of ``audit verify`` / ``export-seal``: a uuid, or ``none`` (rows of no tenant)."""
    raw = str(args.tenant_id).strip()
    if raw.lower() == "none":
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise UsageError(
            f"audit {args.action}: tenant id {raw!r} is not a uuid (or 'none' for the rows of "
            "no tenant); nothing was done"
        ) from None


def _audit_anchor(args: argparse.Namespace) -> dict[str, object] | None:
    """The anchor file of ``audit verify --anchor`` (``-``: standard input), as JSON."""
    if args.anchor is None:
        return None
    where = "standard input" if args.anchor == "-" else args.anchor
    text = sys.stdin.read() if args.anchor == "-" else Path(args.anchor).read_text()
    try:
        anchor = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"audit verify: the anchor in {where} is not JSON ({exc})") from None
    if not isinstance(anchor, dict):
        raise UsageError(
            f"audit verify: the anchor in {where} is not a JSON object (what "
            "pgtenancy audit export-seal prints)"
        )
    return anchor


def cmd_audit(args: argparse.Namespace) -> int:
    from . import audit

    if args.action == "seal":
        done = audit.seal(_url(args))
        print(
            f"sealed {done.sealed_rows} row(s) of {done.tenants} tenant(s) in {done.batches} "
            f"batch(es); frontier {done.frontier}"
        )
        return 0
    tenant = _audit_tenant(args)
    who = f"tenant {tenant}" if tenant is not None else "the rows of no tenant"
    if args.action == "export-seal":
        print(json.dumps(audit.export_seal(_url(args), tenant), sort_keys=True))
        return 0
    anchor = _audit_anchor(args)
    result = audit.verify(_url(args), tenant, anchor)
    checked = f"{result.checked_rows} row(s) in {result.checked_seals} seal(s)"
    if result.ok:
        anchored = " and the anchor" if anchor is not None else ""
        print(f"ok: {who}: {checked}{anchored} verified")
        return 0
    bad = f" (first bad row: {result.first_bad_id})" if result.first_bad_id is not None else ""
    print(f"NOT OK: {who}: {result.problem}{bad}; {checked} checked")
    return 1


def cmd_erasure(args: argparse.Namespace) -> int:
    from . import erasure

    if args.action == "ledger":
        ledger = erasure.export_ledger(_url(args), Path(args.out))
        count = len(ledger.entries)
        if args.out != "-":
            print(f"wrote {count} ledger entr{'y' if count == 1 else 'ies'} to {args.out}")
        for skip in ledger.unread:
            print(
                f"tenant {skip.tenant_id}: not written: {skip.reason} (no tenant context; "
                "connect as a role that bypasses row level security to keep its entries)",
                file=sys.stderr,
            )
        return 1 if ledger.unread else 0
    try:
        entries = erasure.load_ledger(Path(args.ledger)) if args.ledger else []
    except erasure.LedgerError as exc:
        print(f"pgtenancy erasure reapply: {exc}", file=sys.stderr)
        return 2
    done, skipped = erasure.reapply(_url(args), entries)
    for item in done:
        print(
            f"tenant {item.tenant_id}: ledger {item.ledger_id}: {item.subjects} subject(s) found, "
            f"{item.rows_changed} row(s) erased again"
        )
    for skip in skipped:
        print(f"tenant {skip.tenant_id}: skipped: {skip.reason}", file=sys.stderr)
    print(f"{len(done)} ledger entr{'y' if len(done) == 1 else 'ies'} applied again")
    return 1 if skipped else 0


def cmd_relay(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from . import relay

    url = _url(args)
    if args.action == "status":
        rows = relay.status(url)
        head = f"{'source':<10} {'kind':<8} {'pending':>8} {'in flight':>10} {'dead':>8}"
        print(f"{head}  oldest pending")
        for r in rows:
            oldest = r["oldest_pending"].isoformat() if r["oldest_pending"] else "-"
            print(
                f"{r['source']:<10} {r['kind']:<8} {r['pending']:>8} {r['in_flight']:>10} "
                f"{r['dead']:>8}  {oldest}"
            )
        return 0
    host = args.posthog_host or os.environ.get("PGTENANCY_POSTHOG_HOST")
    key = args.posthog_key or os.environ.get("PGTENANCY_POSTHOG_KEY")
    if bool(host) != bool(key):
        raise UsageError("relay: PostHog needs both --posthog-host and --posthog-key (or neither)")
    if not 1 <= args.lease <= 3600:
        raise UsageError(f"relay: --lease {args.lease} is not from 1 to 3600 seconds")
    if not 0 < args.timeout <= 300:
        raise UsageError(f"relay: --timeout {args.timeout:g} is not from 0 to 300 seconds")
    config = relay.RelayConfig(
        database_url=url,
        posthog_host=host,
        posthog_key=key,
        lease_seconds=args.lease,
        timeout=args.timeout,
        concurrency=args.concurrency,
        max_attempts=args.max_attempts,
        allow_private_network=args.allow_private_network,
    )
    if args.name:
        config.name = args.name
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per batch, not per request
    totals = asyncio.run(relay.Relay(config).run(once=args.once))
    summary = ", ".join(f"{k} {v}" for k, v in sorted(totals.items())) or "nothing due"
    print(f"relay {config.name}: {summary}")
    return 0


def _tenant(args: argparse.Namespace, run: Callable[[argparse.Namespace, str], int]) -> int:
    """Run one ``pgtenancy tenant ACTION``: its code lives in its own module; a
    :class:`~pgtenancy.tenant_export.TenantError` is a refusal (exit 2, nothing written)."""
    from .tenant_export import TenantError

    args.command = f"tenant {args.action}"
    url = _url(args)
    try:
        return int(run(args, url))
    except TenantError as exc:
        raise UsageError(f"{args.command}: {exc}") from None


def cmd_tenant_export(args: argparse.Namespace) -> int:
    from . import tenant_export

    return _tenant(args, tenant_export.run_export)


def cmd_tenant_import(args: argparse.Namespace) -> int:
    from . import tenant_export

    return _tenant(args, tenant_export.run_import)


def cmd_tenant_restore(args: argparse.Namespace) -> int:
    from . import tenant_export

    return _tenant(args, tenant_export.run_restore)


def _add_tenant_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``pgtenancy tenant ACTION``: one tenant's data as a whole. Each action is a parser of its
    own whose ``func`` runs it; add new actions here."""
    p = sub.add_parser(
        "tenant",
        help="one tenant's data: export it, import it into another database, restore a table "
        "of it as it was (docs/tenant-export.md), offboard it with a deletion certificate",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    tenant_help = "the tenant's id (a uuid) or its slug"
    progress_help = (
        "show progress on stderr (table, rows, rows/s): a line per table; on a terminal, the "
        "default, one line rewritten in place"
    )

    q = actions.add_parser(
        "export",
        help="write a tenant's rows, platform records and audit trail (one snapshot) to a "
        "directory: a COPY file per table and manifest.json (as a superuser or BYPASSRLS login)",
    )
    q.add_argument("tenant", metavar="TENANT", help=tenant_help)
    q.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="a new or empty directory (made mode 0700; files 0600: the export holds secrets)",
    )
    q.add_argument("--progress", action="store_true", help=progress_help)
    _add_url(q)
    q.set_defaults(func=cmd_tenant_export)

    q = actions.add_parser(
        "import",
        help="load an export into a database where the tenant does not exist (checks every "
        "file and the destination first; one transaction)",
    )
    q.add_argument("directory", metavar="DIR", help="the directory tenant export wrote")
    q.add_argument("--progress", action="store_true", help=progress_help)
    _add_url(q)
    q.set_defaults(func=cmd_tenant_import)

    q = actions.add_parser(
        "restore",
        help="rebuild a tenant's rows of an audited table as they were at a time, into a side "
        "table in schema tenancy_restore; --in-place makes the live rows equal to it",
    )
    q.add_argument("tenant", metavar="TENANT", help=tenant_help)
    q.add_argument(
        "--at",
        required=True,
        metavar="TIMESTAMP",
        help="the time, as PostgreSQL reads a timestamptz (2026-12-06T10:15:00Z; without an "
        "offset: the server's time zone)",
    )
    q.add_argument("--table", required=True, metavar="SCHEMA.TABLE", help="an audited tenant table")
    q.add_argument(
        "--in-place",
        action="store_true",
        help="then make the tenant's live rows equal to the side table, in one transaction "
        "(audited writes of a service context), after a confirmation",
    )
    q.add_argument("--yes", action="store_true", help="confirm --in-place without asking")
    _add_url(q)
    q.set_defaults(func=cmd_tenant_restore)

    from . import offboard  # offboard and certificate

    offboard.add_commands(actions)

    from . import move  # move, --abort, --release

    move.add_commands(actions)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgtenancy", description="PostgreSQL-native multi-tenancy."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="apply the tenancy schema (idempotent)")
    _add_url(p)
    p.add_argument("--list", action="store_true", help="show applied and pending steps")
    p.add_argument(
        "--keep-temp-privilege",
        action="store_true",
        help="leave PUBLIC's TEMPORARY privilege on the database (by default migrate revokes "
        "it, which needs the database owner or a superuser)",
    )
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("generate", help="render RLS SQL and pgTAP tests from a spec")
    p.add_argument("--spec", required=True, help="tenancy.toml")
    p.add_argument("--out", required=True, help="directory for the SQL files")
    p.add_argument("--tests", help="directory for the pgTAP isolation tests")
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the output is stale (files only; pgtenancy doctor --spec checks the "
        "live database's policies)",
    )
    p.add_argument("--snapshot", help="render from a catalog snapshot (JSON) instead of a database")
    p.add_argument(
        "--flavour",
        choices=("postgres", "citus"),
        default="postgres",
        help="postgres (default) or citus: policies Citus accepts on distributed tables "
        "(docs/citus.md)",
    )
    _add_url(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "adopt",
        help="write the online migration that makes existing tables tenant tables (reads only)",
    )
    p.add_argument("--spec", required=True, help="tenancy.toml")
    p.add_argument(
        "--out", required=True, help="the SQL file to write (e.g. migrations/0042_adopt.sql)"
    )
    p.add_argument(
        "--tenant-map",
        metavar="QUERY",
        help="a query returning each tenant's key, then optionally its name (text) and id "
        "(uuid): the file creates those tenants",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=10_000,
        help="rows per committed batch of the backfills (default 10000)",
    )
    _add_url(p)
    p.set_defaults(func=cmd_adopt)

    p = sub.add_parser("apply", help="run SQL files (or directories of them) in one transaction")
    p.add_argument("paths", nargs="+")
    p.add_argument(
        "--each",
        action="store_true",
        help="one transaction per file, stopping at the first failure (default: all files in "
        "one transaction, so a failure applies none)",
    )
    _add_url(p)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("doctor", help="run the numbered lints over a database (reads only)")
    p.add_argument(
        "--spec",
        metavar="FILE",
        help="also check that every table this spec lists is a tenant table (0019) whose live "
        "policies are the generated ones (0020), that it lists every tenant table (0021), and "
        "take personal data as its pii and subject classify it (0022)",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument(
        "--level",
        choices=["error", "warn", "info"],
        default="warn",
        help="exit 1 when a problem of this level or above is found (default: warn)",
    )
    _add_url(p)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("domains", help="custom domains: verify their TXT records (DNS)")
    p.add_argument("action", choices=["verify"])
    p.add_argument(
        "--nameserver",
        metavar="ADDRESS",
        help="ask this DNS server (an IP address) instead of the system's resolvers",
    )
    p.add_argument("--port", type=int, default=53, help="the DNS server's port (default 53)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per lookup (default 5)")
    _add_url(p)
    p.set_defaults(func=cmd_domains)

    p = sub.add_parser(
        "jwks",
        help="trusted issuers: fetch their JWKS and store the keys (connect as a tenancy_admin)",
    )
    p.add_argument("action", choices=["sync"])
    p.add_argument(
        "--issuer",
        action="append",
        metavar="ISSUER",
        help="sync this issuer only (its iss value; repeat for several; default: every issuer "
        "with a JWKS URL)",
    )
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="store a JWKS without any usable key, revoking every key of the issuer (refused "
        "by default: an empty answer is far more often a fault than a revocation)",
    )
    p.add_argument(
        "--allow-http",
        action="store_true",
        help="fetch plain http URLs from other hosts than this one (refused by default: anyone "
        "on the path could replace the keys)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds per fetch, each network step and the whole body (default 10)",
    )
    p.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="sync again every SECONDS until stopped (SIGTERM or Ctrl-C; exit 0); without it, "
        "sync once and exit (1 when any issuer failed): for cron or a systemd timer",
    )
    _add_url(p)
    p.set_defaults(func=cmd_jwks)

    p = sub.add_parser(
        "audit",
        help="the audit trail's hash chain: seal it, verify a tenant's, export its latest seal",
    )
    audit_sub = p.add_subparsers(dest="action", required=True)
    tenant_help = "a tenant id, or none (the rows of no tenant)"
    q = audit_sub.add_parser(
        "seal",
        help="seal every audit row of ended transactions (connect as a tenancy_service or "
        "tenancy_admin member; run it on a schedule)",
    )
    _add_url(q)
    q = audit_sub.add_parser(
        "verify",
        help="check a tenant's chain and rows (exit 1 with the first problem when not ok)",
    )
    q.add_argument("tenant_id", metavar="TENANT_ID", help=tenant_help)
    q.add_argument(
        "--anchor",
        metavar="FILE",
        help="a seal printed earlier by audit export-seal and kept elsewhere (-: standard "
        "input): it must still match",
    )
    _add_url(q)
    q = audit_sub.add_parser(
        "export-seal",
        help="print the tenant's latest seal as JSON, to keep outside the database",
    )
    q.add_argument("tenant_id", metavar="TENANT_ID", help=tenant_help)
    _add_url(q)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser(
        "erasure",
        help="the GDPR erasure ledger: keep it outside the database, apply it again after a "
        "restore (connect as a tenancy_service login)",
    )
    erasure_sub = p.add_subparsers(dest="action", required=True)
    q = erasure_sub.add_parser(
        "ledger",
        help="write every tenant's erasure ledger as JSON, to keep with the backups (exit 1 "
        "when a tenant's entries could not be read: not active, and the role is subject to "
        "row level security)",
    )
    q.add_argument("--out", metavar="FILE", default="-", help="the file to write (default: -)")
    _add_url(q)
    q = erasure_sub.add_parser(
        "reapply",
        help="after a restore from backup: add the entries of a kept ledger that are missing, "
        "then erase every ledger entry's subject again (exit 1 when a tenant was skipped)",
    )
    q.add_argument("--ledger", metavar="FILE", help="a ledger written earlier by erasure ledger")
    _add_url(q)
    p.set_defaults(func=cmd_erasure)

    p = sub.add_parser(
        "relay",
        help="deliver the outbox to PostHog, Slack and webhooks (connect as a tenancy_service "
        "login); relay status prints the backlog",
    )
    p.add_argument("action", nargs="?", choices=["status"], help="status: print the backlog")
    p.add_argument("--once", action="store_true", help="deliver what is due, then exit (cron)")
    p.add_argument(
        "--posthog-host",
        help="PostHog's API host, e.g. https://us.i.posthog.com ($PGTENANCY_POSTHOG_HOST); "
        "without it analytics events wait",
    )
    p.add_argument("--posthog-key", help="the project API key, phc_… ($PGTENANCY_POSTHOG_KEY)")
    p.add_argument("--name", help="this relay's name in leases (default: host:pid:random)")
    p.add_argument("--lease", type=int, default=30, help="seconds a claim is held (default 30)")
    p.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout, seconds (10)")
    p.add_argument("--concurrency", type=int, default=64, help="requests at once (64)")
    p.add_argument(
        "--max-attempts", type=int, default=12, help="attempts before a dead letter (12)"
    )
    p.add_argument(
        "--allow-private-network",
        action="store_true",
        help="let endpoints resolve to loopback or private addresses (tests, private setups)",
    )
    _add_url(p)
    p.set_defaults(func=cmd_relay)

    _add_tenant_commands(sub)

    p = sub.add_parser("db", help="a throwaway local cluster for development and tests")
    p.add_argument("action", choices=["start", "stop", "url", "status"])
    p.add_argument("--dbname", default=DEFAULT_DBNAME)
    p.set_defaults(func=cmd_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"pgtenancy: {exc}", file=sys.stderr)
        return 2
    except (migrations.MigrateError, OSError) as exc:
        print(f"pgtenancy: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        # A database error: its message, not a traceback.
        print(f"pgtenancy: {args.command}: {exc}".rstrip(), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
