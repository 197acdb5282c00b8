"""The context core: clean sessions only (TN008), revocation from the next context set after a
change commits in every isolation level, and what authenticate does with leftovers.

Every refusal is paired with the same call succeeding for the rightful session.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from conftest import Roles, Tenant, add_member, one, token_for, visible, wait_until_blocked
from psycopg import IsolationLevel

from pgtenancy import authenticated_transaction, testing

AUTHENTICATE = "select tenancy.authenticate(%s)"
SET_CONTEXT = "select tenancy.set_context(%s, %s)"
CONTEXT = (
    "select tenancy.current_tenant_id(), tenancy.current_user_id(), tenancy.current_member_role()"
)
VISIBLE = "select name from app.projects order by name"

Conn = psycopg.Connection[Any]


def sqlstate_of(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> str | None:
    """Run ``query`` in its own transaction; its SQLSTATE, or None when it worked."""
    try:
        with conn.transaction():
            conn.execute(query, params)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


@pytest.fixture
def tenant(roles: Roles, make_tenant: Callable[[], Tenant]) -> Tenant:
    t = make_tenant()
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute(SET_CONTEXT, (t.id, None))
        conn.execute("insert into app.projects (name) values ('p1'), ('p2')")
    return t


@pytest.fixture
def temp_login(roles: Roles) -> Iterator[Callable[[bool], str]]:
    """Factory: a tenancy_app login that may create temporary objects, optionally opted in to
    contexts in such sessions (member of tenancy_session_objects); tenancy_service too, so the
    same login can call set_context."""
    made: list[str] = []
    db = testing.dbname_of(roles.superuser)

    def factory(opted_in: bool) -> str:
        name = f"t_temp_{uuid.uuid4().hex[:8]}"
        groups = "tenancy_service" + (", tenancy_session_objects" if opted_in else "")
        with psycopg.connect(roles.superuser, autocommit=True) as conn:
            conn.execute(f"create role {name} login in role {groups}")
            conn.execute(f'grant temporary on database "{db}" to {name}')
        made.append(name)
        return testing.as_login(roles.superuser, name)

    yield factory
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        for name in made:
            # A closed session's backend drops its temporary tables as it exits, after the
            # client has gone: wait for it, or the role still owns them.
            deadline = time.monotonic() + 30
            while one(conn, "select count(*) from pg_stat_activity where usename = %s", (name,)):
                assert time.monotonic() < deadline, f"a session of {name} never ended"
                time.sleep(0.01)
            conn.execute(f'revoke temporary on database "{db}" from {name}')
            conn.execute(f"drop role {name}")


# -- TN008: a context is not set in a session an earlier borrower shaped ----------------------


@pytest.mark.parametrize("leftover", ["temp table", "temp domain", "temp function", "temp view"])
def test_temporary_objects_refuse_a_context_until_the_session_is_reset(
    temp_login: Callable[[bool], str], tenant: Tenant, leftover: str
) -> None:
    plant = {
        "temp table": "create temp table projects (name text)",
        "temp domain": "create domain pg_temp.text as pg_catalog.text",
        "temp function": "create function pg_temp.f() returns int language sql as 'select 1'",
        "temp view": "create temp view projects as select 'planted'::text as name",
    }[leftover]
    with psycopg.connect(temp_login(False), autocommit=True) as conn:
        conn.execute(plant)
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
        assert info.value.sqlstate == "TN008"
        assert "temporary object" in str(info.value) and "pg_temp_" in str(info.value)
        # set_context (trusted backends) is refused the same way.
        assert sqlstate_of(conn, SET_CONTEXT, (tenant.id, None)) == "TN008"
        # Rightful: once the session is reset, the same call works.
        conn.execute("discard all")
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
            assert visible(conn) == ["p1", "p2"]


def test_a_holdable_cursor_refuses_a_context_until_it_is_closed(
    roles: Roles, tenant: Tenant
) -> None:
    with psycopg.connect(roles.app, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
            conn.execute("declare left_behind cursor with hold for " + VISIBLE)
        # The cursor outlived its transaction with tenant rows in it: no new context here.
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
        assert info.value.sqlstate == "TN008"
        assert "left_behind" in str(info.value)
        conn.execute("close left_behind")
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
            assert visible(conn) == ["p1", "p2"]


def test_a_login_in_tenancy_session_objects_keeps_its_temporary_tables(
    temp_login: Callable[[bool], str], tenant: Tenant
) -> None:
    with psycopg.connect(temp_login(True), autocommit=True) as conn:
        conn.execute("create temp table scratch (n int)")
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
            conn.execute("insert into scratch select count(*) from app.projects")
            assert one(conn, "select n from scratch") == 2
        # Opting in changes nothing else: another tenant's token is still another tenant.
        with conn.transaction():
            conn.execute(SET_CONTEXT, (tenant.id, None))
            assert visible(conn) == ["p1", "p2"]


# -- revocation: from the next context set after the change commits -----------------------------

LEVELS = [
    IsolationLevel.READ_COMMITTED,
    IsolationLevel.REPEATABLE_READ,
    IsolationLevel.SERIALIZABLE,
]
IDS = ["read-committed", "repeatable-read", "serializable"]


def remove(roles: Roles, tenant: Tenant, user: uuid.UUID) -> None:
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute(SET_CONTEXT, (tenant.id, None))
        conn.execute("select tenancy.remove_member(%s)", (user,))


@pytest.mark.parametrize("level", LEVELS, ids=IDS)
@pytest.mark.parametrize("change", ["suspension", "removal", "demotion"])
def test_a_change_committed_after_the_snapshot_refuses_the_next_context(
    roles: Roles, tenant: Tenant, level: IsolationLevel, change: str
) -> None:
    member = add_member(roles, tenant, "admin")
    expected_rc = {"suspension": "TN002", "removal": "TN003", "demotion": None}[change]
    with psycopg.connect(roles.app) as conn:
        conn.isolation_level = level
        # The transaction takes its snapshot before the change commits...
        conn.execute("select count(*) from app.projects")
        if change == "suspension":
            with psycopg.connect(roles.admin) as admin, admin.transaction():
                admin.execute("select tenancy.suspend_tenant(%s)", (tenant.id,))
        elif change == "removal":
            remove(roles, tenant, member)
        else:
            with psycopg.connect(roles.service) as svc, svc.transaction():
                svc.execute(SET_CONTEXT, (tenant.id, None))
                svc.execute("select tenancy.set_member_role(%s, 'viewer')", (member,))
        # ... and asks for a context after: never from the revoked data.
        try:
            conn.execute(AUTHENTICATE, (token_for(tenant.id, member),))
            outcome: str | None = None
            role = one(conn, "select tenancy.current_member_role()")
        except psycopg.Error as exc:
            outcome, role = exc.sqlstate, None
        conn.rollback()
    if level == IsolationLevel.READ_COMMITTED:
        # Each statement sees what committed before it.
        assert outcome == expected_rc
        if change == "demotion":
            assert role == "viewer"
    else:
        # The snapshot predates the change: refused as a serialisation failure, to retry.
        assert outcome == "40001", (outcome, role)
    # Rightful: a fresh transaction gets the answer from the committed state.
    with psycopg.connect(roles.app) as conn:
        conn.isolation_level = level
        fresh = sqlstate_of(conn, AUTHENTICATE, (token_for(tenant.id, member),))
        assert fresh == expected_rc
        owner_ok = sqlstate_of(conn, AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
        assert owner_ok == ("TN002" if change == "suspension" else None)


def test_a_context_set_before_the_change_commits_lasts_until_its_transaction_ends(
    roles: Roles, tenant: Tenant
) -> None:
    member = add_member(roles, tenant, "member")
    with psycopg.connect(roles.app) as conn, psycopg.connect(roles.service) as svc:
        # The removal is made but not yet committed when the member's context is set.
        svc.execute(SET_CONTEXT, (tenant.id, None))
        svc.execute("select tenancy.remove_member(%s)", (member,))
        conn.execute(AUTHENTICATE, (token_for(tenant.id, member),))
        svc.commit()
        # The documented contract: the context stays until its transaction ends ...
        assert one(conn, CONTEXT) == (tenant.id, member, "member")
        assert visible(conn) == ["p1", "p2"]
        conn.rollback()
        # ... and the next one is refused.
        assert sqlstate_of(conn, AUTHENTICATE, (token_for(tenant.id, member),)) == "TN003"


@pytest.mark.parametrize("level", LEVELS[1:], ids=IDS[1:])
def test_under_repeatable_read_a_change_in_progress_is_waited_for(
    roles: Roles, tenant: Tenant, level: IsolationLevel
) -> None:
    member = add_member(roles, tenant, "member")
    with psycopg.connect(roles.app) as conn, psycopg.connect(roles.service) as svc:
        conn.isolation_level = level
        conn.execute("select 1")  # the snapshot
        svc.execute(SET_CONTEXT, (tenant.id, None))
        svc.execute("select tenancy.remove_member(%s)", (member,))
        outcome: list[str | None] = []

        def authenticate() -> None:
            outcome.append(sqlstate_of(conn, AUTHENTICATE, (token_for(tenant.id, member),)))

        worker = threading.Thread(target=authenticate)
        worker.start()
        wait_until_blocked(roles.superuser, conn.info.backend_pid)
        svc.commit()
        worker.join(30)
        assert outcome == ["40001"]
    # Rightful: the owner's context, in the same isolation level, is unaffected.
    with psycopg.connect(roles.app) as conn:
        conn.isolation_level = level
        assert sqlstate_of(conn, AUTHENTICATE, (token_for(tenant.id, tenant.owner),)) is None


# -- leftovers that authenticate neutralises ------------------------------------------------------


def test_a_session_level_context_value_left_behind_is_replaced(
    roles: Roles, tenant: Tenant, make_tenant: Callable[[], Tenant]
) -> None:
    other = make_tenant()
    with psycopg.connect(roles.app, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(other.id, other.owner),))
            value = one(conn, "select current_setting('tenancy.context')")
        # An earlier borrower leaves a session-wide copy of its value behind.
        conn.execute("select set_config('tenancy.context', %s, false)", (value,))
        # It gives nothing, before or after the next borrower's transaction ...
        assert one(conn, CONTEXT) == (None, None, None)
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
            assert visible(conn) == ["p1", "p2"]
        # ... and authenticate replaced it: the session holds no tenant's value any more.
        assert one(conn, "select current_setting('tenancy.context', true)") == ""
        assert one(conn, CONTEXT) == (None, None, None)


# -- the helpers -------------------------------------------------------------------------------


def test_helpers_bind_the_token_even_on_a_client_side_binding_connection(
    roles: Roles, tenant: Tenant
) -> None:
    token = token_for(tenant.id, tenant.owner)
    with (
        psycopg.connect(roles.app, cursor_factory=psycopg.ClientCursor) as conn,
        psycopg.connect(roles.superuser, autocommit=True) as observer,
    ):
        # A ClientCursor interpolates: this is what the helpers must not do.
        with conn.transaction():
            conn.execute("select length(%s)", (token,))
            seen = one(
                observer,
                "select query from pg_stat_activity where pid = %s",
                (conn.info.backend_pid,),
            )
            assert token in seen
        with authenticated_transaction(conn, token) as ctx:
            assert ctx.tenant_id == tenant.id
            seen = one(
                observer,
                "select query from pg_stat_activity where pid = %s",
                (conn.info.backend_pid,),
            )
            assert "authenticate($1)" in seen and token not in seen
            assert visible(conn) == ["p1", "p2"]


@pytest.mark.parametrize("level", LEVELS, ids=IDS)
def test_a_rotated_jwt_secret_refuses_old_tokens_in_every_isolation_level(
    roles: Roles, tenant: Tenant, level: IsolationLevel
) -> None:
    old_token = token_for(tenant.id, tenant.owner)
    with psycopg.connect(roles.app) as conn:
        conn.isolation_level = level
        conn.execute("select 1")  # the snapshot, taken before the rotation
        with psycopg.connect(roles.superuser, autocommit=True) as admin:
            row = admin.execute(
                "select secret, issuer, audience from tenancy.jwt_config"
            ).fetchone()
            assert row is not None
            admin.execute("set role tenancy_admin")
            admin.execute(
                "select tenancy.configure_jwt(%s, %s, %s)", ("rotated-" + "s" * 40, *row[1:])
            )
            try:
                outcome = sqlstate_of(conn, AUTHENTICATE, (old_token,))
                # READ COMMITTED reads the new secret; the others refuse to trust the snapshot.
                assert outcome == ("TN004" if level == IsolationLevel.READ_COMMITTED else "40001")
            finally:
                admin.execute("select tenancy.configure_jwt(%s, %s, %s)", row)
    # Rightful: with the secret back, the same token works in the same isolation level.
    with psycopg.connect(roles.app) as conn:
        conn.isolation_level = level
        assert sqlstate_of(conn, AUTHENTICATE, (old_token,)) is None


def test_a_statement_prepared_in_sql_refuses_a_context_until_it_is_deallocated(
    roles: Roles, tenant: Tenant, temp_login: Callable[[bool], str]
) -> None:
    with psycopg.connect(roles.app, autocommit=True) as conn:
        # An earlier borrower redefines a name a driver might execute next.
        conn.execute("prepare _pg3_1 as select count(*) from app.projects")
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
        assert info.value.sqlstate == "TN008" and "_pg3_1" in str(info.value)
        conn.execute("deallocate _pg3_1")
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
            assert visible(conn) == ["p1", "p2"]
    # Protocol-level prepared statements (what drivers make) are not leftovers.
    with psycopg.connect(roles.app, autocommit=True, prepare_threshold=0) as conn:
        for _ in range(3):
            with conn.transaction():
                conn.execute(AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
                assert visible(conn) == ["p1", "p2"]
    # A login that opted in may keep its own.
    with psycopg.connect(temp_login(True), autocommit=True) as conn:
        conn.execute("prepare mine as select count(*) from app.projects")
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
            assert one(conn, "execute mine") == 2


def test_other_sessions_cannot_read_which_context_was_set_last(
    roles: Roles, tenant: Tenant
) -> None:
    with psycopg.connect(roles.app) as conn, psycopg.connect(roles.app) as other:
        conn.execute(AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
        # The sequences' shared value says nothing about the context just set ...
        assert one(
            other,
            "select pg_sequence_last_value('tenancy.context_key'),"
            " pg_sequence_last_value('tenancy.context_fingerprint')",
        ) == (None, None)
        # ... while the session that set it keeps its key.
        assert visible(conn) == ["p1", "p2"]
        assert one(conn, CONTEXT) == (tenant.id, tenant.owner, "owner")
