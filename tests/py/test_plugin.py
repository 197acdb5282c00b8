"""pgtenancy's pytest plugin, used the way an application's test suite uses it."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pgtenancy import testing

pytest_plugins = ["pytester"]

APP_TEST = """
import psycopg


def remember(url):
    with open("made.txt", "a") as f:
        f.write(url + "\\n")


def test_schema_and_policies(pgtenancy_database_url):
    remember(pgtenancy_database_url)
    with psycopg.connect(pgtenancy_database_url) as conn:
        row = conn.execute(
            "select to_regclass('tenancy.tenants') is not null,"
            " (select relforcerowsecurity from pg_class where oid = 'shop.orders'::regclass),"
            " (select count(*) from pg_extension where extname = 'pgtap'),"
            " current_database()"
        ).fetchone()
    assert row[:3] == (True, True, 1), row
    assert row[3].startswith("pgtenancy_test_")


def test_factory_gives_another_database(pgtenancy_make_database, pgtenancy_database_url):
    other = pgtenancy_make_database()
    remember(other)
    assert other != pgtenancy_database_url
    with psycopg.connect(other) as conn:
        assert conn.execute("select count(*) from shop.orders").fetchone() == (0,)
"""

SCHEMA = """
create schema shop;
create table shop.orders (tenant_id uuid not null, id bigint not null, primary key (tenant_id, id));
"""
POLICY = """
alter table shop.orders enable row level security;
alter table shop.orders force row level security;
"""


def drop_templates(base_url: str, prefix: str) -> None:
    """Drop the templates this test's application built (their family is its temporary path)."""
    with psycopg.connect(base_url, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "select datname from pg_database where starts_with(datname, %s)", (prefix,)
            )
        ]
        assert len(names) == 1, names
        for name in names:
            conn.execute(
                sql.SQL("alter database {} is_template false").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("drop database {}").format(sql.Identifier(name)))


def test_an_application_gets_fresh_databases_with_its_schema(
    pytester: pytest.Pytester, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest('pytest_plugins = ["pgtenancy.testing.plugin"]\n')
    pytester.makepyprojecttoml(
        "[tool.pytest.ini_options]\n"
        'pgtenancy_sql = ["db/schema.sql", "db/policies"]\n'
        'pgtenancy_extensions = ["pgtap"]\n'
    )
    db = pytester.mkdir("db")
    (db / "schema.sql").write_text(SCHEMA)
    (db / "policies").mkdir()
    (db / "policies" / "shop.orders.sql").write_text(POLICY)
    pytester.makepyfile(test_app=APP_TEST)
    monkeypatch.setenv("DATABASE_URL", base_url)

    template = testing.Template(
        sources=(pytester.path / "db" / "schema.sql", pytester.path / "db" / "policies"),
        extensions=("pgtap",),
    )
    try:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    finally:
        drop_templates(base_url, testing.TEMPLATE_PREFIX + template.family() + "_")

    result.assert_outcomes(passed=2)
    # Both databases the session made were dropped at its end.
    made = [conninfo_to_dict(u)["dbname"] for u in (pytester.path / "made.txt").read_text().split()]
    assert len(set(made)) == 2
    with psycopg.connect(base_url) as conn:
        left = conn.execute(
            "select count(*) from pg_database where datname = any(%s)", (made,)
        ).fetchone()
    assert left == (0,)
