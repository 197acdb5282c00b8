"""The ``pgtenancy`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import psycopg

from . import cluster
from . import migrate as migrations


def _url(args: argparse.Namespace) -> str:
    return str(args.database_url) if args.database_url else cluster.database_url()


def _add_url(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        help="libpq URL of the target database (default: $DATABASE_URL, else the project's "
        "throwaway cluster)",
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
    with psycopg.connect(_url(args), autocommit=True) as conn:
        for f in files:
            try:
                with conn.transaction():
                    conn.execute(f.read_text().encode())
            except psycopg.Error as exc:
                print(f"pgtenancy: {f} was not applied: {exc}", file=sys.stderr)
                return 2
            print(f"applied {f}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    c = cluster.local_cluster()
    if args.action == "start":
        c.ensure()
        print(c.url())
    elif args.action == "stop":
        print("stopped" if c.stop() else "not running")
    elif args.action == "url":
        print(c.ensure().url(args.dbname))
    elif args.action == "status":
        print(f"{'running' if c.is_running() else 'stopped'} {c.root}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from .generator import cli_main

    argv = ["--spec", args.spec, "--out", args.out]
    if args.tests:
        argv += ["--tests", args.tests]
    if args.check:
        argv.append("--check")
    argv += ["--database-url", _url(args)]
    return int(cli_main(argv))


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
    p.add_argument("--check", action="store_true", help="exit 1 when the output is stale")
    _add_url(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "apply", help="run SQL files (or directories of them), each in a transaction"
    )
    p.add_argument("paths", nargs="+")
    _add_url(p)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("db", help="the throwaway local cluster used when DATABASE_URL is unset")
    p.add_argument("action", choices=["start", "stop", "url", "status"])
    p.add_argument("--dbname", default=cluster.DEFAULT_DBNAME)
    p.set_defaults(func=cmd_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (cluster.ClusterError, migrations.MigrateError, OSError) as exc:
        print(f"pgtenancy: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        # A database error: its message, not a traceback.
        print(f"pgtenancy: {args.command}: {exc}".rstrip(), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
