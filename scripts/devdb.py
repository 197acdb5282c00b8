"""Print the URL of a scratch database for the generator to read the catalog of.

``core``: pgtenancy's versioned migrations and functions. ``app``: the same plus the example
application's schema; ``fixtures``: the same plus the test fixture schema (tests/fixtures). None
holds generated policies (``sql/policies/``, ``examples/app/policies/``,
``tests/fixtures/policies/``): the generator reads the catalog to regenerate them, so they must not
be applied from the files about to be rewritten. Rebuilt on every call so it always matches the
sources.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
from psycopg import sql

from pgtenancy import testing
from pgtenancy.migrate import steps
from pgtenancy.testing import cluster

ROOT = Path(__file__).resolve().parent.parent


def build_without_policies(url: str) -> None:
    """Apply every migration step except the generated policies, each in one transaction.

    A scratch database needs no migration bookkeeping, so the steps are run as they are
    rendered for yoyo, in the same order.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        for step in steps():
            if step.display.startswith("policies/"):
                continue
            with conn.transaction():
                conn.execute(step.text().encode())


def main(kind: str) -> int:
    base = cluster.database_url()
    name = f"pgtenancy_dev_{kind}"
    with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = testing.with_dbname(base, name)
    build_without_policies(url)
    schemas = {"app": ("examples", "app"), "fixtures": ("tests", "fixtures")}
    if kind in schemas:
        schema = ROOT.joinpath(*schemas[kind], "schema.sql")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(schema.read_bytes())
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "core"))
