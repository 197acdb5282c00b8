"""Development and test tooling, kept apart from what applications import.

- :mod:`pgtenancy.testing.cluster`: the throwaway PostgreSQL cluster (``pgtenancy db …``).
- :mod:`pgtenancy.testing.template`: test databases cloned from a migrated template.
- :mod:`pgtenancy.testing.tokens`: HS256 tokens that ``tenancy.authenticate`` accepts.
- :mod:`pgtenancy.testing.plugin`: pytest fixtures built on the template, for applications
  built on pgtenancy (``pytest_plugins = ["pgtenancy.testing.plugin"]``).

``python -m pgtenancy.testing create [--seeded] | drop URL`` creates and drops test databases.
Nothing in the runtime (``import pgtenancy``, :mod:`pgtenancy.context`) imports this package.
"""

from __future__ import annotations

from .template import (
    TEMPLATE_PREFIX,
    TEST_PREFIX,
    Template,
    as_login,
    create_test_database,
    dbname_of,
    drop_test_database,
    ensure_template,
    example_sources,
    project_sources,
    project_template,
    repo_root,
    seed_and_remigrate,
    sql_files,
    testing_sources,
    with_dbname,
)

__all__ = [
    "TEMPLATE_PREFIX",
    "TEST_PREFIX",
    "Template",
    "as_login",
    "create_test_database",
    "dbname_of",
    "drop_test_database",
    "ensure_template",
    "example_sources",
    "project_sources",
    "project_template",
    "repo_root",
    "seed_and_remigrate",
    "sql_files",
    "testing_sources",
    "with_dbname",
]
