"""Upgrade check: the previous release, installed and seeded, then migrated to this checkout.

``make updatecheck`` runs it (``make test`` includes it). Steps:

1. find the previous release: the newest ``v*`` tag reachable from HEAD that is not HEAD
   itself (or ``--previous REF``), and export its tree with ``git archive``;
2. in a new database, install that release with its own code (its ``pgtenancy.migrate``), load
   its example application and seed tenants, members and rows with its own test helpers;
3. migrate the database with this checkout's code, replace the test fixtures with this
   checkout's, and run the whole pgTAP suite (pg_prove) against it;
4. compare the schema ``tenancy`` of the upgraded database with that of a database migrated
   from scratch (``pg_dump --schema-only``): an upgrade must end where a fresh install starts.

Usage: python scripts/updatecheck.py --database-url URL [--previous REF] [--keep]
"""

from __future__ import annotations

import argparse
import difflib
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pgtenancy import testing  # noqa: E402
from pgtenancy.migrate import migrate_database  # noqa: E402

PREFIX = "pgtenancy_update_"

# Run by the previous release's own code (PYTHONPATH points at its tree).
OLD_INSTALL = """
import sys
import psycopg
import pgtenancy
from pgtenancy import testing
from pgtenancy.migrate import migrate

url = sys.argv[1]
assert pgtenancy.__file__.startswith(sys.argv[2]), pgtenancy.__file__
migrate(url)
with psycopg.connect(url, autocommit=True) as db:
    db.execute("create extension if not exists pgtap")
    for path in testing.example_sources():
        with db.transaction():
            db.execute(path.read_bytes())
testing.seed_and_remigrate(url)
with psycopg.connect(url) as db:
    print(db.execute(
        "select count(*) from tenancy.tenants"
    ).fetchone()[0], "tenants seeded by", pgtenancy.__file__)
"""


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


#: Releases and their commits, newest first: used when the clone carries no tags.
RELEASES = ROOT / "scripts" / "releases.txt"


def previous_release() -> str:
    head = git("rev-parse", "HEAD")
    for tag in git("tag", "--merged", "HEAD", "--sort=-v:refname", "--list", "v*").split():
        if git("rev-parse", f"{tag}^{{commit}}") != head:
            return tag
    for line in RELEASES.read_text().splitlines():
        name, _, commit = line.partition(" ")
        if commit and not line.startswith("#") and commit.strip() != head:
            return commit.strip()
    raise SystemExit(
        "updatecheck: no earlier release tag (v*) is reachable from HEAD; "
        "fetch the tags (git fetch --tags) or pass --previous REF"
    )


def export(ref: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="tar")


def create_database(base_url: str) -> str:
    name = PREFIX + uuid.uuid4().hex[:12]
    with psycopg.connect(testing.with_dbname(base_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return testing.with_dbname(base_url, name)


def drop_database(url: str) -> None:
    name = testing.dbname_of(url)
    assert name.startswith(PREFIX), name
    with psycopg.connect(testing.with_dbname(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(name)))


def install_previous(url: str, tree: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("PYTHONSAFEPATH", None)
    subprocess.run(
        [sys.executable, "-c", OLD_INSTALL, url, str(tree)], check=True, cwd=tree, env=env
    )


def replace_fixtures(url: str) -> None:
    """Swap the previous release's test fixtures for this checkout's, as the template has them."""
    with psycopg.connect(url, autocommit=True) as db:
        schemas = [
            str(r[0])
            for r in db.execute("select nspname::text from pg_namespace where nspname in ('app')")
        ]
        for schema in schemas:
            db.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
        for path in testing.project_template().files():
            with db.transaction():
                db.execute(path.read_bytes())


def pg_prove(url: str) -> int:
    params = conninfo_to_dict(url)
    cmd = [
        "pg_prove", "--recurse", "--ext", ".sql",
        "-h", str(params.get("host", "localhost")), "-p", str(params.get("port", 5432)),
        "-d", str(params["dbname"]), "-U", str(params.get("user", "postgres")),
        str(ROOT / "tests" / "pgtap"),
    ]  # fmt: skip
    return subprocess.run(cmd, check=False).returncode


def schema_dump(url: str) -> list[str]:
    params = conninfo_to_dict(url)
    out = subprocess.run(
        [
            "pg_dump", "--schema-only", "--no-owner", "--schema=tenancy",
            "-h", str(params.get("host", "localhost")), "-p", str(params.get("port", 5432)),
            "-U", str(params.get("user", "postgres")), str(params["dbname"]),
        ],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    # Comments and the random key of pg_dump's \restrict guard are not part of the schema.
    lines = [
        line
        for line in out.splitlines()
        if line and not line.startswith(("--", "\\restrict ", "\\unrestrict "))
    ]
    # tenancy.hmac_sha256 and tenancy.random_token name the schema pgcrypto lives in: public for
    # an installation made by 0.1.0, its own schema for a fresh one. That name is all that may
    # differ.
    return [
        re.sub(r"\b(public|pgcrypto)\.(hmac|gen_random_bytes)\(", r"<pgcrypto>.\2(", line)
        for line in lines
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="server to create databases on")
    parser.add_argument("--previous", help="the release to upgrade from (default: last v* tag)")
    parser.add_argument("--keep", action="store_true", help="keep the databases for inspection")
    args = parser.parse_args(argv)

    previous = args.previous or previous_release()
    print(f"== updatecheck: from {previous} ({git('rev-parse', '--short', previous)}) to HEAD")
    upgraded = create_database(args.database_url)
    fresh = create_database(args.database_url)
    try:
        with tempfile.TemporaryDirectory(prefix="pgtenancy-previous-") as tmp:
            tree = Path(tmp)
            export(previous, tree)
            print(f"-- installing {previous} and seeding it")
            install_previous(upgraded, tree)
        print("-- migrating to HEAD")
        outcome = migrate_database(upgraded)
        print(
            f"   recorded {len(outcome.adopted)} replaced steps, applied {len(outcome.applied)}, "
            f"dropped {len(outcome.dropped)} functions: {', '.join(outcome.dropped) or '-'}"
        )
        with psycopg.connect(upgraded) as db:
            left = db.execute(
                "select count(*) from pg_class where relnamespace = 'public'::regnamespace"
                " and relname ~ '^_?yoyo'"
            ).fetchone()
        if left != (0,):
            print("updatecheck: yoyo's tables are still in public after the upgrade")
            return 1
        print("   yoyo's tables moved out of public")
        print("-- comparing schema tenancy with a fresh installation")
        migrate_database(fresh)
        diff = list(
            difflib.unified_diff(
                schema_dump(fresh), schema_dump(upgraded), "fresh", "upgraded", lineterm=""
            )
        )
        if diff:
            print("\n".join(diff))
            print("updatecheck: the upgraded schema differs from a fresh installation")
            return 1
        print("   identical")
        print("-- pgTAP suite on the upgraded database")
        replace_fixtures(upgraded)
        rc = pg_prove(upgraded)
        if rc:
            print(f"updatecheck: pgTAP failed on a database upgraded from {previous}")
        return rc
    finally:
        if args.keep:
            print(f"kept {upgraded} and {fresh}")
        else:
            drop_database(upgraded)
            drop_database(fresh)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
