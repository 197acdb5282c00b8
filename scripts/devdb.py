"""Print the URL of a scratch database for the generator to introspect.

``core``: pgtenancy migrated. ``app``: the same plus the example application's schema.
``fixtures``: the same plus the test fixture schema (tests/fixtures/schema.sql).
Rebuilt on every call so it always matches the sources.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
from psycopg import sql

from pgtenancy import testing
from pgtenancy.migrate import migrate
from pgtenancy.testing import cluster


def main(kind: str) -> int:
    base = cluster.database_url()
    name = f"pgtenancy_dev_{kind}"
    with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = testing.with_dbname(base, name)
    migrate(url)
    schemas = {"app": ("examples", "app"), "fixtures": ("tests", "fixtures")}
    if kind in schemas:
        schema = Path(__file__).resolve().parent.parent.joinpath(*schemas[kind], "schema.sql")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(schema.read_bytes())
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "core"))
