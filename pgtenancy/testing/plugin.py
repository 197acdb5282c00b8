"""pytest fixtures for applications built on pgtenancy: a fresh, migrated database per session.

Enable it in the ``conftest.py`` at the root of the test suite::

    pytest_plugins = ["pgtenancy.testing.plugin"]

and name what the test databases hold besides pgtenancy's schema, in the pytest configuration
(paths relative to it; directories stand for their ``*.sql`` files, recursively)::

    [tool.pytest.ini_options]
    pgtenancy_sql = ["db/schema.sql", "db/policies"]
    pgtenancy_extensions = ["pgtap"]

The first session migrates a template database (``pgtenancy migrate``, then the extensions, then
the SQL files, each in its own transaction) on the server of ``$DATABASE_URL`` (else the
throwaway cluster of ``pgtenancy db``); later sessions clone it in a fraction of a second until
a SQL file changes. The connecting role must be able to create databases.

Fixtures:

``pgtenancy_server_url``
    (session) URL of the server the databases are created on.
``pgtenancy_template``
    (session) the :class:`~pgtenancy.testing.template.Template` built from the two settings;
    override it in a ``conftest.py`` to compute it instead.
``pgtenancy_make_database``
    (session) a factory: each call clones the template into a new database and returns its
    URL; every such database is dropped when the session ends.
``pgtenancy_database_url``
    (session) URL of one such database, shared by the session's tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from . import cluster
from .template import Template, create_test_database, drop_test_database


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "pgtenancy_sql",
        "SQL files or directories applied, in order, to pgtenancy test databases after migrating",
        type="paths",
        default=[],
    )
    parser.addini(
        "pgtenancy_extensions",
        "extensions created in pgtenancy test databases before the SQL files",
        type="args",
        default=[],
    )


@pytest.fixture(scope="session")
def pgtenancy_server_url() -> str:
    """``$DATABASE_URL``, else the throwaway cluster's URL (the cluster is started if needed)."""
    return os.environ.get("DATABASE_URL") or cluster.database_url()


@pytest.fixture(scope="session")
def pgtenancy_template(pytestconfig: pytest.Config) -> Template:
    sources: list[Path] = pytestconfig.getini("pgtenancy_sql")
    extensions: list[str] = pytestconfig.getini("pgtenancy_extensions")
    return Template(sources=tuple(sources), extensions=tuple(extensions))


@pytest.fixture(scope="session")
def pgtenancy_make_database(
    pgtenancy_server_url: str, pgtenancy_template: Template
) -> Iterator[Callable[[], str]]:
    created: list[str] = []

    def make() -> str:
        url = create_test_database(pgtenancy_server_url, pgtenancy_template)
        created.append(url)
        return url

    yield make
    for url in created:
        drop_test_database(url)


@pytest.fixture(scope="session")
def pgtenancy_database_url(pgtenancy_make_database: Callable[[], str]) -> str:
    return pgtenancy_make_database()
