"""Red team of the signed context (tenancy.context_mac), the Citus flavour's worker-verifiable form.

The application role can SET LOCAL any value, read both settings, replay them in a later
transaction or another session, and run with temporary objects and pg_temp first in its
search_path. Each attack is refused; each is paired with the rightful operation succeeding.
A database of its own: app.projects carries the Citus flavour's policies (generated here), the
form is on, and the application authenticates with real tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import (
    JWT_AUDIENCE,
    JWT_ISSUER,
    JWT_SECRET,
    PGTENANCY,
    REPO,
    Roles,
    new_user_id,
    token_for,
)
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict

from pgtenancy import testing

Conn = psycopg.Connection[Any]
PROJECTS = "select name from app.projects order by name"
SETTINGS = "select current_setting('tenancy.context'), current_setting('tenancy.context_mac')"


class World:
    """The database, its login URLs and two tenants with rows: A (a1, a2) and B (b1)."""

    def __init__(self, url: str, roles: Roles) -> None:
        self.url = url
        self.app = testing.as_login(url, conninfo_to_dict(roles.app)["user"])
        self.service = testing.as_login(url, conninfo_to_dict(roles.service)["user"])
        self.admin = testing.as_login(url, conninfo_to_dict(roles.admin)["user"])
        self.owner_a, self.owner_b = new_user_id(), new_user_id()
        assert self.configure(True) == "on"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(
                "select tenancy.configure_jwt(%s, %s, %s)", (JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE)
            )
            self.a = conn.execute(
                "select tenancy.create_tenant(%s, 'A', %s)",
                (f"rt-a-{uuid.uuid4().hex[:8]}", self.owner_a),
            ).fetchone()[0]  # type: ignore[index]
            self.b = conn.execute(
                "select tenancy.create_tenant(%s, 'B', %s)",
                (f"rt-b-{uuid.uuid4().hex[:8]}", self.owner_b),
            ).fetchone()[0]  # type: ignore[index]
        self.viewer_a = new_user_id()
        with psycopg.connect(self.service) as conn:
            with conn.transaction():
                conn.execute("select tenancy.set_context(%s)", (self.a,))
                conn.execute("select tenancy.add_member(%s, 'viewer')", (self.viewer_a,))
                conn.execute("insert into app.projects (name) values ('a1'), ('a2')")
            with conn.transaction():
                conn.execute("select tenancy.set_context(%s)", (self.b,))
                conn.execute("insert into app.projects (name) values ('b1')")

    def configure(self, enabled: bool, lifetime: int = 30, rotate: bool = False) -> str:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            return str(
                conn.execute(
                    "select tenancy.configure_context_mac(%s, %s, %s)", (enabled, lifetime, rotate)
                ).fetchone()[0]  # type: ignore[index]
            )

    def signed(self, user: str | None = None, tenant: Any = None) -> tuple[str, str]:
        """The (context, signature) pair an authenticated application transaction holds."""
        with psycopg.connect(self.app) as conn, conn.transaction():
            conn.execute(
                "select tenancy.authenticate(%s)",
                (token_for(tenant or self.a, user or self.owner_a),),
            )
            row = conn.execute(SETTINGS).fetchone()
            assert row is not None
            return row[0], row[1]


def replayed(conn: Conn, context: str, mac: str) -> list[str]:
    """What a transaction sees with the two settings written by hand (rolled back)."""
    with conn.transaction(force_rollback=True):
        conn.execute("select set_config('tenancy.context', %s, true)", (context,))
        conn.execute("select set_config('tenancy.context_mac', %s, true)", (mac,))
        return [r[0] for r in conn.execute(PROJECTS)]


def insert_refusal(conn: Conn, context: str, mac: str) -> str | None:
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("select set_config('tenancy.context', %s, true)", (context,))
            conn.execute("select set_config('tenancy.context_mac', %s, true)", (mac,))
            conn.execute("insert into app.projects (name) values ('forged')")
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def forge(secret: bytes, context: str, expiry: int) -> str:
    head = f"m1|{expiry}|{uuid.uuid4().hex}|"
    return head + hmac.new(secret, (head + context).encode(), hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def world(base_url: str, roles: Roles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = testing.create_test_database(base_url)
    try:
        out = tmp_path_factory.mktemp("citus_redteam")
        proc = subprocess.run(
            [str(PGTENANCY), "generate", "--flavour", "citus",
             "--spec", "tests/fixtures/tenancy.toml", "--out", str(out), "--database-url", url],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("set client_min_messages = warning")
            conn.execute(Path(out / "app.projects.sql").read_text().encode())
        yield World(url, roles)
    finally:
        testing.drop_test_database(url)


def test_rightful_contexts_see_their_tenant_through_the_citus_policy(world: World) -> None:
    with psycopg.connect(world.app) as conn:
        with conn.transaction():
            conn.execute("select tenancy.authenticate(%s)", (token_for(world.a, world.owner_a),))
            assert [r[0] for r in conn.execute(PROJECTS)] == ["a1", "a2"]
            conn.execute("insert into app.projects (name) values ('a3')")
            assert conn.execute("select tenancy.context_tenant_id_mac(null)").fetchone() == (
                world.a,
            )
            # the policy itself is the Citus flavour's: no sub-select, the signed form
            (qual,) = conn.execute(
                "select qual from pg_policies where tablename = 'projects' and cmd = 'SELECT'"
            ).fetchone()  # type: ignore[misc]
            assert "context_tenant_id_mac" in qual and "SELECT" not in qual
            conn.execute("delete from app.projects where name = 'a3'")
        with conn.transaction():
            conn.execute("select tenancy.authenticate(%s)", (token_for(world.b, world.owner_b),))
            assert [r[0] for r in conn.execute(PROJECTS)] == ["b1"]


def test_the_key_and_the_signing_function_are_out_of_reach(world: World) -> None:
    with psycopg.connect(world.url, autocommit=True) as conn:
        conn.execute("analyze tenancy.context_mac_keys")
        assert conn.execute("select count(*) from tenancy.context_mac_keys").fetchone() == (1,)
    with psycopg.connect(world.app, autocommit=True) as conn:
        for statement in (
            "select secret from tenancy.context_mac_keys",
            "select tenancy.sign_context_mac(gen_random_uuid(), 'x', 'owner', null)",
            "select tenancy.configure_context_mac(true, 3600, true)",
            "select tenancy.hmac_sha256('\\x00', '\\x00')",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
        # Nor its statistics: pg_stats shows a table's values only to who may read it.
        assert conn.execute(
            "select count(*) from pg_stats where tablename = 'context_mac_keys'"
        ).fetchone() == (0,)


def test_hand_written_values_and_forged_signatures_are_refused(world: World) -> None:
    context, mac = world.signed()
    future = int(time.time()) + 600
    with psycopg.connect(world.app) as conn:
        assert replayed(conn, context, mac) == ["a1", "a2"]  # the signed pair itself (see replay)
        for forged_context, forged_mac in [
            (context, ""),
            (context, mac[:-64] + "0" * 64),
            (context, mac[:-1] + ("0" if mac[-1] != "0" else "1")),
            (context, f"m1|{future}|{'0' * 32}|" + hashlib.sha256(context.encode()).hexdigest()),
            (context, mac.replace("m1|", "m1|9", 1)),  # a later expiry, same MAC
            (context.replace(str(world.a), str(world.b)), mac),  # another tenant
            (context.replace("|owner|", "|service|"), mac),  # another role
            (context + "x", mac),  # another user
            ("", mac),
        ]:
            assert replayed(conn, forged_context, forged_mac) == [], (forged_context, forged_mac)
            assert insert_refusal(conn, forged_context, forged_mac) == "TN001"


def test_a_replay_gives_only_the_signed_tenant_role_and_user_within_the_lifetime(
    world: World,
) -> None:
    """A value read in one session and replayed in another within its lifetime is accepted, as
    the same tenant, role and user it was signed for (docs/citus.md); a viewer's value does not
    become an owner's."""
    context, mac = world.signed(user=world.viewer_a)
    assert "|viewer|" in context
    with psycopg.connect(world.app) as conn:
        with conn.transaction(force_rollback=True):
            conn.execute("select set_config('tenancy.context', %s, true)", (context,))
            conn.execute("select set_config('tenancy.context_mac', %s, true)", (mac,))
            assert conn.execute(
                "select tenancy.context_tenant_id_mac(array['viewer']), "
                "tenancy.context_tenant_id_mac(array['owner', 'admin'])"
            ).fetchone() == (world.a, None)
        assert replayed(conn, context.replace("|viewer|", "|owner|"), mac) == []


def test_an_expired_value_is_refused_in_a_later_transaction(world: World) -> None:
    assert world.configure(True, lifetime=1) == "on"
    try:
        context, mac = world.signed()
        with psycopg.connect(world.app) as conn:
            # A transaction that began before the expiry keeps its context to its end.
            with conn.transaction():
                conn.execute(
                    "select tenancy.authenticate(%s)", (token_for(world.a, world.owner_a),)
                )
                conn.execute("select pg_sleep(1.2)")
                assert [r[0] for r in conn.execute(PROJECTS)] == ["a1", "a2"]
            time.sleep(1.2)
            assert replayed(conn, context, mac) == []
            with psycopg.connect(world.url) as su:
                (secret,) = su.execute("select secret from tenancy.context_mac_keys").fetchone()  # type: ignore[misc]
            # Correctly signed, expired a second ago: refused; the same a minute ahead: accepted.
            assert replayed(conn, context, forge(secret, context, int(time.time()) - 1)) == []
            assert replayed(conn, context, forge(secret, context, int(time.time()) + 60)) == [
                "a1",
                "a2",
            ]
    finally:
        assert world.configure(True, lifetime=30) == "on"


def test_temporary_objects_and_pg_temp_first_change_nothing(world: World) -> None:
    """A temporary table named like the key table holding a key the attacker knows, and
    pg_temp first in search_path: a value signed with that key is refused; the rightful context
    works the same under that search_path."""
    user = conninfo_to_dict(world.app)["user"]
    dbname = conninfo_to_dict(world.url)["dbname"]
    with psycopg.connect(world.url, autocommit=True) as su:
        su.execute(f'grant temporary on database "{dbname}" to "{user}"')
    try:
        secret = b"k" * 32
        context, mac = world.signed()
        with psycopg.connect(world.app) as conn:
            conn.execute("set search_path = pg_temp, tenancy, public")
            conn.execute(
                "create temporary table context_mac_keys (singleton boolean, secret bytea, "
                "lifetime_seconds integer, created_at timestamptz)"
            )
            conn.execute(
                "insert into pg_temp.context_mac_keys values (true, %s, 3600, now())", (secret,)
            )
            conn.execute(
                "create function pg_temp.hmac_sha256(bytea, bytea) returns bytea language sql "
                "as $$ select '\\x00'::bytea $$"
            )
            conn.commit()
            assert replayed(conn, context, forge(secret, context, int(time.time()) + 60)) == []
            # The pair signed with the real key, in this session (whose temporary objects keep
            # authenticate away, TN008): read with the real key, whatever pg_temp holds.
            assert replayed(conn, context, mac) == ["a1", "a2"]
    finally:
        with psycopg.connect(world.url, autocommit=True) as su:
            su.execute(f'revoke temporary on database "{dbname}" from "{user}"')


def test_clear_context_ends_the_signature(world: World) -> None:
    with psycopg.connect(world.app) as conn, conn.transaction():
        conn.execute("select tenancy.authenticate(%s)", (token_for(world.a, world.owner_a),))
        mac = conn.execute("select current_setting('tenancy.context_mac')").fetchone()
        conn.execute("select tenancy.clear_context()")
        assert conn.execute("select current_setting('tenancy.context_mac')").fetchone() == mac
        assert [r[0] for r in conn.execute(PROJECTS)] == []
        assert conn.execute("select tenancy.context_tenant_id_mac(null)").fetchone() == (None,)


def test_rotation_and_switching_off_refuse_signed_values(world: World) -> None:
    context, mac = world.signed()
    with psycopg.connect(world.app) as conn:
        assert replayed(conn, context, mac) == ["a1", "a2"]
        assert world.configure(True, rotate=True) == "on (new key)"
        assert replayed(conn, context, mac) == []
        assert world.configure(False) == "off"
        try:
            # Off: nothing is signed and the Citus flavour's policies show nothing (fail closed).
            with conn.transaction():
                conn.execute(
                    "select tenancy.authenticate(%s)", (token_for(world.a, world.owner_a),)
                )
                assert conn.execute(
                    "select current_setting('tenancy.context_mac', true)"
                ).fetchone() in ((None,), ("",))
                assert [r[0] for r in conn.execute(PROJECTS)] == []
        finally:
            assert world.configure(True) == "on"
        with conn.transaction():
            conn.execute("select tenancy.authenticate(%s)", (token_for(world.a, world.owner_a),))
            assert [r[0] for r in conn.execute(PROJECTS)] == ["a1", "a2"]
