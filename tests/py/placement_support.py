"""Two PostgreSQL clusters of the tests' own, for placements, tenant moves and the router.

``home`` and ``dedicated`` are separate servers (separate data directories, ports and
processes), both with ``wal_level = logical``: a tenant moves from one to the other by logical
replication. Each test gets a fresh pair of databases (:func:`make_pair`) migrated with the test
template, with the placements configured on both sides: on ``home``, ``home`` is here and
``dedicated`` is known; on ``dedicated`` the other way round.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pgtenancy import testing
from pgtenancy.testing import cluster

LOGICAL = (
    "wal_level=logical",
    "max_replication_slots=40",
    "max_wal_senders=40",
    "max_worker_processes=24",
    "max_logical_replication_workers=16",
    "max_sync_workers_per_subscription=4",
    "wal_sender_timeout=60s",
)


@dataclass(frozen=True)
class Servers:
    home: cluster.Cluster
    dedicated: cluster.Cluster


@dataclass(frozen=True)
class Pair:
    """A migrated database on each server, and login URLs for both."""

    home: str  # superuser URLs
    dedicated: str
    admin_home: str
    admin_dedicated: str
    service_home: str
    service_dedicated: str
    app_home: str
    app_dedicated: str


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    root = Path(tempfile.mkdtemp(prefix="pgt-placements-"))
    root.chmod(0o755)  # the servers' own directories below are theirs alone
    home = cluster.Cluster(root / "home", settings=LOGICAL)
    dedicated = cluster.Cluster(root / "dedicated", settings=LOGICAL)
    try:
        yield Servers(home.ensure(), dedicated.ensure())
    finally:
        home.stop()
        dedicated.stop()
        shutil.rmtree(root, ignore_errors=True)


def _logins(url: str, suffix: str) -> dict[str, str]:
    names = {kind: f"p_{kind}_{suffix}" for kind in ("app", "service", "admin")}
    with psycopg.connect(url, autocommit=True) as conn:
        for kind, name in names.items():
            conn.execute(f"create role {name} login in role tenancy_{kind}")
        conn.execute(f"grant tenancy_service to {names['admin']}")
    return {kind: testing.as_login(url, name) for kind, name in names.items()}


def make_pair(servers: Servers) -> Pair:
    template = testing.project_template()
    home = testing.create_test_database(servers.home.url(), template)
    dedicated = testing.create_test_database(servers.dedicated.url(), template)
    suffix = uuid.uuid4().hex[:8]
    home_logins = _logins(home, suffix)
    dedicated_logins = _logins(dedicated, suffix)
    with psycopg.connect(home, autocommit=True) as conn:
        conn.execute("set role tenancy_admin")
        conn.execute("select tenancy.configure_placement('dedicated', 'dedicated')")
    with psycopg.connect(dedicated, autocommit=True) as conn:
        conn.execute("set role tenancy_admin")
        conn.execute("select tenancy.configure_placement('dedicated', 'dedicated', p_here => true)")
    return Pair(
        home=home,
        dedicated=dedicated,
        admin_home=home_logins["admin"],
        admin_dedicated=dedicated_logins["admin"],
        service_home=home_logins["service"],
        service_dedicated=dedicated_logins["service"],
        app_home=home_logins["app"],
        app_dedicated=dedicated_logins["app"],
    )


def drop_pair(pair: Pair) -> None:
    """Drop both databases, with any replication a failed test left behind."""
    with psycopg.connect(pair.dedicated, autocommit=True) as conn:
        for (name,) in conn.execute("select subname from pg_subscription").fetchall():
            conn.execute(f'alter subscription "{name}" disable')
            conn.execute(f'alter subscription "{name}" set (slot_name = none)')
            conn.execute(f'drop subscription "{name}"')
    with psycopg.connect(pair.home, autocommit=True) as conn:
        conn.execute(
            "select pg_drop_replication_slot(slot_name) from pg_replication_slots"
            " where database = current_database() and not active"
        )
    for url in (pair.home, pair.dedicated):
        testing.drop_test_database(url)


@pytest.fixture
def pair(servers: Servers) -> Iterator[Pair]:
    made = make_pair(servers)
    try:
        yield made
    finally:
        drop_pair(made)
