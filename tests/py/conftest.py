"""Shared fixtures: one fresh database per test session, cloned from a migrated template.

The database comes from pgtenancy's pytest plugin (the one applications use), with the
template of pgtenancy's own tests: pgTAP and the example application.

Fixtures create their own login roles (members of tenancy_app / tenancy_service /
tenancy_admin), so tests act as the real roles, never as a superuser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

# Two clusters of the tests' own (started only by the tests that use them).
from placement_support import pair, servers  # noqa: F401  (fixtures)

from pgtenancy import tenant_transaction, testing
from pgtenancy.testing.tokens import encode_hs256

pytest_plugins = ["pgtenancy.testing.plugin"]

JWT_SECRET = "test-secret-" + "x" * 40
JWT_ISSUER = "https://auth.example.test"
JWT_AUDIENCE = "pgtenancy-tests"


@pytest.fixture(scope="session")
def pgtenancy_server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The server of this test process: ``$DATABASE_URL`` (else the throwaway cluster) when
    pytest runs alone; a cluster of its own for each process that ``pytest -n`` starts.

    Processes on one server would disturb each other's cluster-wide state, and so would the
    pgTAP suite and the update check that ``make test`` runs beside pytest on the throwaway
    cluster (each pgTAP file is one long transaction): the audit trail's sealing frontier (the
    oldest running transaction of the server), pgtenancy's roles, and pg_stat_activity as the
    fence and offboarding read it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker == "":
        yield os.environ.get("DATABASE_URL") or testing.cluster.database_url()
        return
    root = Path(tempfile.mkdtemp(prefix=f"pgt-{worker}-"))
    root.chmod(0o755)
    server = testing.cluster.Cluster(root / "server")
    try:
        yield server.ensure().url()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pgtenancy_template() -> testing.Template:
    """pgtenancy's own test template (the plugin's fixture, overridden)."""
    return testing.project_template()


@pytest.fixture(scope="session")
def base_url(pgtenancy_server_url: str) -> str:
    return pgtenancy_server_url


@pytest.fixture(scope="session")
def database_url(pgtenancy_database_url: str) -> str:
    """URL of a fresh database for this test session (superuser connection)."""
    return pgtenancy_database_url


@dataclass
class Roles:
    """Login roles for the session, each a member of one pgtenancy group role."""

    superuser: str
    app: str
    service: str
    admin: str


@pytest.fixture(scope="session")
def roles(database_url: str) -> Roles:
    suffix = uuid.uuid4().hex[:8]
    names = {
        "app": f"t_app_{suffix}",
        "service": f"t_service_{suffix}",
        "admin": f"t_admin_{suffix}",
    }
    with psycopg.connect(database_url, autocommit=True) as conn:
        for kind, name in names.items():
            conn.execute(f"create role {name} login in role tenancy_{kind}")
        conn.execute(f"grant tenancy_service to {names['admin']}")
        conn.execute("set role tenancy_admin")  # configure as an operator, not a superuser
        conn.execute(
            "select tenancy.configure_jwt(%s, %s, %s)", (JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE)
        )
        # Lockouts off: many tests refuse one user's tokens on purpose. The lockout tests set a
        # limit (the `lockout` fixture of test_lockout.py) and restore this.
        conn.execute("select tenancy.configure_auth(p_lockout_failures => 0)")
        conn.execute("reset role")
    return Roles(
        superuser=database_url,
        app=testing.as_login(database_url, names["app"]),
        service=testing.as_login(database_url, names["service"]),
        admin=testing.as_login(database_url, names["admin"]),
    )


def make_jwt(
    claims: dict[str, Any],
    secret: str = JWT_SECRET,
    header: dict[str, Any] | None = None,
) -> str:
    return encode_hs256(claims, secret, header)


def token_for(
    tenant_id: uuid.UUID | str, user_id: uuid.UUID | str, ttl: int = 300, **extra: Any
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "tenant_id": str(tenant_id),
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "iat": now,
        "exp": now + ttl,
    }
    claims.update(extra)
    return make_jwt(claims)


def new_user_id() -> str:
    """A fresh user id in the shape identity providers give (text with '|', not a uuid)."""
    return f"auth0|{uuid.uuid4().hex}"


@dataclass
class Tenant:
    id: uuid.UUID
    slug: str
    owner: str


@pytest.fixture
def make_tenant(roles: Roles) -> Any:
    """Factory: a new active tenant with an owner, created by tenancy_admin."""

    def factory(slug: str | None = None) -> Tenant:
        slug = slug or f"t-{uuid.uuid4().hex[:10]}"
        owner = new_user_id()
        with psycopg.connect(roles.admin, autocommit=True) as conn:
            row = conn.execute(
                "select tenancy.create_tenant(%s, %s, %s)", (slug, slug.title(), owner)
            ).fetchone()
        assert row is not None
        return Tenant(id=row[0], slug=slug, owner=owner)

    return factory


@pytest.fixture
def tenants(roles: Roles, make_tenant: Any) -> tuple[Tenant, Tenant]:
    """Two tenants with rows of their own: A has a1, a2; B has b1, b2, b3."""
    a, b = make_tenant(), make_tenant()
    seed(roles, a, ["a1", "a2"])
    seed(roles, b, ["b1", "b2", "b3"])
    return a, b


# -- helpers shared by the test modules ------------------------------------------------------

Conn = psycopg.Connection[Any]
PGTENANCY = Path(sys.executable).with_name("pgtenancy")
REPO = testing.repo_root()
CONTEXT_SQL = (
    "select tenancy.current_tenant_id(), tenancy.current_user_id(), tenancy.current_member_role()"
)
VISIBLE_SQL = "select tenant_id, name from app.projects order by name"
INSERT_SQL = "insert into app.projects (name) values (%s)"  # tenant_id defaults to the context


def one(conn: Conn, query: str, params: Any = None) -> Any:
    """The single value of a one-row result; a tuple when the row has several columns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else tuple(row)


def visible(conn: Conn) -> list[str]:
    """Names of the app.projects rows this transaction sees."""
    return [r[0] for r in conn.execute("select name from app.projects order by name")]


def visible_rows(conn: Conn) -> list[tuple[uuid.UUID, str]]:
    """(tenant_id, name) of the app.projects rows this transaction sees."""
    return [(r[0], r[1]) for r in conn.execute(VISIBLE_SQL).fetchall()]


def context_now(conn: Conn) -> tuple[Any, ...]:
    """(tenant, user, role) of the current context."""
    row = conn.execute(CONTEXT_SQL).fetchone()
    assert row is not None
    return tuple(row)


def seed(roles: Roles, tenant: Tenant, names: list[str]) -> None:
    """Rows for one tenant, written by a trusted backend through the helper."""
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, tenant.id):
        for name in names:
            conn.execute(INSERT_SQL, (name,))


def wait_until_blocked(superuser_url: str, pid: int, timeout: float = 30.0) -> None:
    """Return once backend ``pid`` waits for a lock held by another session."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        while True:
            row = conn.execute("select cardinality(pg_blocking_pids(%s))", (pid,)).fetchone()
            if row and row[0]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"backend {pid} never waited for a lock")
            time.sleep(0.01)


def run_cli(
    *args: str, cwd: Path | str = REPO, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """The ``pgtenancy`` command, run as a subprocess the way a DBA or CI runs it."""
    return subprocess.run(
        [str(PGTENANCY), *args],
        cwd=str(cwd),
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def claims_of(tenant: Tenant, **changes: Any) -> dict[str, Any]:
    """Claims of a valid token for the tenant's owner; ``changes`` set claims (None: remove)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(tenant.owner),
        "tenant_id": str(tenant.id),
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "iat": now,
        "exp": now + 300,
    }
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def add_member(roles: Roles, tenant: Tenant, role: str) -> str:
    """A new member of ``tenant`` with ``role``, added by a trusted backend."""
    user = new_user_id()
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s, %s)", (tenant.id, None))
        conn.execute("select tenancy.add_member(%s, %s)", (user, role))
    return user
