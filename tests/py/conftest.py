"""Shared fixtures: one fresh database per test session, cloned from a migrated template.

The database comes from pgtenancy's pytest plugin (the one applications use), with the
template of pgtenancy's own tests: pgTAP and the example application.

Fixtures create their own login roles (members of tenancy_app / tenancy_service /
tenancy_admin), so tests act as the real roles, never as a superuser.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from pgtenancy import testing
from pgtenancy.testing.tokens import encode_hs256

pytest_plugins = ["pgtenancy.testing.plugin"]

JWT_SECRET = "test-secret-" + "x" * 40
JWT_ISSUER = "https://auth.example.test"
JWT_AUDIENCE = "pgtenancy-tests"


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


@dataclass
class Tenant:
    id: uuid.UUID
    slug: str
    owner: uuid.UUID


@pytest.fixture
def make_tenant(roles: Roles) -> Any:
    """Factory: a new active tenant with an owner, created by tenancy_admin."""

    def factory(slug: str | None = None) -> Tenant:
        slug = slug or f"t-{uuid.uuid4().hex[:10]}"
        owner = uuid.uuid4()
        with psycopg.connect(roles.admin, autocommit=True) as conn:
            row = conn.execute(
                "select tenancy.create_tenant(%s, %s, %s)", (slug, slug.title(), owner)
            ).fetchone()
        assert row is not None
        return Tenant(id=row[0], slug=slug, owner=owner)

    return factory
