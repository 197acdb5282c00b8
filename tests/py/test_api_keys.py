"""API keys: lifecycle, role limits, isolation, forgery, secrecy, failures that survive rollbacks,
lockout, revocation racing authentication under REPEATABLE READ, and arbitrary input.

Every refusal is paired with the rightful request succeeding. The application connects as a
login in tenancy_app; keys are made by owners and admins through a trusted backend's context
(tenancy_service with the user), as an application's admin screen would.
"""

from __future__ import annotations

import datetime
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from conftest import Roles, Tenant, add_member, one, visible
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import errors
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pgtenancy import (
    AuthenticationRefused,
    aapi_key_transaction,
    api_key_transaction,
    apool_api_key_transaction,
    pool_api_key_transaction,
)

BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def create_key(
    roles: Roles,
    tenant: Tenant,
    user: str | None,
    role: str = "member",
    expires_at: datetime.datetime | None = None,
    name: str = "ci",
) -> tuple[uuid.UUID, str]:
    """(id, key) of a new key of ``tenant`` made by ``user`` (None: a service context)."""
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s, %s)", (tenant.id, user))
        row = conn.execute(
            "select id, key from tenancy.create_api_key(%s, %s, %s)",
            (name, role, expires_at),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def revoke_key(roles: Roles, tenant: Tenant, user: str | None, key_id: uuid.UUID) -> None:
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s, %s)", (tenant.id, user))
        conn.execute("select tenancy.revoke_api_key(%s)", (key_id,))


def authenticate(conn: psycopg.Connection[Any], key: str) -> tuple[Any, ...]:
    row = conn.execute(
        "select tenant_id, role, api_key_id from tenancy.authenticate_api_key(%s)", (key,)
    ).fetchone()
    assert row is not None
    return tuple(row)


def refusal(roles: Roles, key: str) -> tuple[str | None, str]:
    """(SQLSTATE, message) of authenticate_api_key(key) in its own rolled-back transaction."""
    with psycopg.connect(roles.app) as conn:
        with pytest.raises(psycopg.Error) as excinfo:
            conn.execute("select tenancy.authenticate_api_key(%s)", (key,))
        conn.rollback()
    return excinfo.value.sqlstate, str(excinfo.value)


def failures(roles: Roles, key_id: uuid.UUID) -> int:
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        return int(one(conn, "select tenancy.auth_failures(%s)", (f"api_key:{key_id}",)))


def failure_total(roles: Roles) -> int:
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        return int(
            one(conn, "select coalesce(pg_sequence_last_value('tenancy.auth_failures_total'), 0)")
        )


# -- lifecycle ------------------------------------------------------------------------------------


def test_lifecycle_create_authenticate_read_revoke(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    key_id, key = create_key(roles, a, a.owner)
    assert key.startswith("pgtk_") and len(key) == 70
    with psycopg.connect(roles.app) as conn, conn.transaction():
        assert authenticate(conn, key) == (a.id, "member", key_id)
        assert one(conn, "select tenancy.current_user_id()") is None
        assert one(conn, "select tenancy.current_api_key_id()") == key_id
        assert visible(conn) == ["a1", "a2"]
        # The key of A never reads B, not even by naming B's rows.
        assert one(conn, "select count(*) from app.projects where tenant_id = %s", (b.id,)) == 0
    revoke_key(roles, a, a.owner, key_id)
    state, message = refusal(roles, key)
    assert state == "TN004" and "was revoked at" in message and key[27:] not in message
    # B's own key still reads B.
    _, b_key = create_key(roles, b, b.owner)
    with psycopg.connect(roles.app) as conn, conn.transaction():
        authenticate(conn, b_key)
        assert visible(conn) == ["b1", "b2", "b3"]


def test_writes_with_a_key_follow_its_role(roles: Roles, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    _, admin_key = create_key(roles, a, a.owner, role="admin")
    _, viewer_key = create_key(roles, a, a.owner, role="viewer")
    with psycopg.connect(roles.app) as conn:
        authenticate(conn, admin_key)
        conn.execute("insert into app.projects (name) values ('from a key')")
        assert "from a key" in visible(conn)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "insert into app.projects (tenant_id, name) values (%s, 'into b')", (b.id,)
            )
        conn.rollback()
        authenticate(conn, viewer_key)
        assert visible(conn) == ["a1", "a2"]
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("insert into app.projects (name) values ('viewer writes')")
        conn.rollback()


def test_expiry(roles: Roles, make_tenant: Any) -> None:
    a = make_tenant()
    now = datetime.datetime.now(datetime.UTC)
    with pytest.raises(errors.InvalidParameterValue, match="is not in the future"):
        create_key(roles, a, a.owner, expires_at=now - datetime.timedelta(seconds=1))
    key_id, key = create_key(roles, a, a.owner, expires_at=now + datetime.timedelta(seconds=1.5))
    with psycopg.connect(roles.app) as conn, conn.transaction():
        assert authenticate(conn, key)[2] == key_id
    time.sleep(1.6)
    state, message = refusal(roles, key)
    assert state == "TN004" and f"API key {key_id}" in message and "expired at" in message


def test_role_limits(roles: Roles, make_tenant: Any) -> None:
    a = make_tenant()
    admin = add_member(roles, a, "admin")
    member = add_member(roles, a, "member")
    owner_key_id, _ = create_key(roles, a, a.owner, role="owner")
    with pytest.raises(errors.InsufficientPrivilege, match="an admin cannot create an owner"):
        create_key(roles, a, admin, role="owner")
    with pytest.raises(errors.InsufficientPrivilege, match="an admin cannot revoke owner"):
        revoke_key(roles, a, admin, owner_key_id)
    with pytest.raises(errors.InsufficientPrivilege, match="role member .* cannot manage API keys"):
        create_key(roles, a, member)
    # What an admin may do, it does.
    admin_key_id, _ = create_key(roles, a, admin, role="admin")
    revoke_key(roles, a, admin, admin_key_id)
    revoke_key(roles, a, a.owner, owner_key_id)
    with psycopg.connect(roles.superuser) as conn:
        revoked = conn.execute(
            "select id, revoked_by from tenancy.api_keys "
            "where tenant_id = %s and revoked_at is not null",
            (a.id,),
        ).fetchall()
    assert sorted(revoked) == sorted([(admin_key_id, admin), (owner_key_id, a.owner)])


# -- attacks, each with the rightful request -------------------------------------------------------


def test_forged_context_naming_another_key_gives_nothing(roles: Roles, make_tenant: Any) -> None:
    a = make_tenant()
    key1_id, key1 = create_key(roles, a, a.owner)
    key2_id, _ = create_key(roles, a, a.owner)
    with psycopg.connect(roles.superuser) as conn:
        forged = one(
            conn,
            "select tenancy.context_value(%s, 'member', null, chr(30) || %s)",
            (a.id, str(key2_id)),
        )
    with psycopg.connect(roles.app) as conn, conn.transaction():
        authenticate(conn, key1)
        assert one(conn, "select tenancy.current_api_key_id()") == key1_id
        conn.execute("select set_config('tenancy.context', %s, true)", (forged,))
        assert one(conn, "select tenancy.current_api_key_id()") is None
        assert one(conn, "select tenancy.current_user_id()") is None


def test_hash_is_unreadable_and_keys_are_never_stored(roles: Roles, make_tenant: Any) -> None:
    a = make_tenant()
    key_id, key = create_key(roles, a, a.owner, role="owner")
    with psycopg.connect(roles.app) as conn, conn.transaction():
        authenticate(conn, key)
        listed = conn.execute("select * from tenancy.api_keys").fetchall()
        assert [r[1] for r in listed] == [key_id]
        assert all(key[27:] not in str(v) and key not in str(v) for r in listed for v in r)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("select hash from tenancy.api_key_secrets")
    with psycopg.connect(roles.superuser) as conn:
        dump = one(
            conn,
            "select string_agg(t::text, ' ') from (select * from tenancy.api_keys union all "
            "select null, null, null, null::tenancy.member_role, encode(hash, 'hex'), null, null, "
            "null, null, null, null from tenancy.api_key_secrets) as t",
        )
        hashed = one(conn, "select encode(sha256(convert_to(%s, 'UTF8')), 'hex')", (key,))
    assert key[27:] not in dump and hashed in dump


def test_keys_never_in_messages_or_events(roles: Roles, make_tenant: Any) -> None:
    a = make_tenant()
    key_id, key = create_key(roles, a, a.owner)
    revoke_key(roles, a, a.owner, key_id)
    secret = key[27:]
    variants = [key, key[:-1], key + "A", key[:-1] + ("A" if key[-1] != "A" else "B"), key.upper()]
    with psycopg.connect(roles.app) as conn:
        for variant in variants:
            row = conn.execute(
                "select sqlstate, message from tenancy.try_authenticate_api_key(%s)", (variant,)
            ).fetchone()
            assert row is not None and row[0] == "TN004"
            assert secret[:20] not in row[1] and secret[-20:] not in row[1]
            conn.commit()
            state, message = refusal(roles, variant)
            assert state == "TN004" and secret[:20] not in message
    with psycopg.connect(roles.superuser) as conn:
        events = one(conn, "select string_agg(e::text, ' ') from tenancy.security_events as e")
    assert secret[:20] not in events and secret[-20:] not in events


# -- failures survive rollbacks; lockout -----------------------------------------------------------


def test_failures_survive_rollback(roles: Roles, make_tenant: Any) -> None:
    a = make_tenant()
    key_id, key = create_key(roles, a, a.owner)
    revoke_key(roles, a, a.owner, key_id)
    before, total_before = failures(roles, key_id), failure_total(roles)
    for _ in range(3):
        assert refusal(roles, key)[0] == "TN004"  # raised, the transaction rolled back
    assert failures(roles, key_id) == before + 3
    assert failure_total(roles) == total_before + 3
    # The non-raising form keeps its event when the caller commits; the raised ones left gaps.
    with psycopg.connect(roles.app) as conn:
        row = conn.execute(
            "select tenant_id, sqlstate from tenancy.try_authenticate_api_key(%s)", (key,)
        ).fetchone()
        conn.commit()
    assert row == (None, "TN004")
    with psycopg.connect(roles.superuser) as conn:
        events = conn.execute(
            "select kind, tenant_id, sqlstate, attempt from tenancy.security_events "
            "where api_key_id = %s and kind = 'authentication.failed'",
            (str(key_id),),
        ).fetchall()
    assert events == [("authentication.failed", a.id, "TN004", total_before + 4)]
    assert failures(roles, key_id) == before + 4


def test_read_only_transaction_is_refused_before_the_key(roles: Roles, make_tenant: Any) -> None:
    a = make_tenant()
    _, key = create_key(roles, a, a.owner)
    total = failure_total(roles)
    with psycopg.connect(roles.app) as conn:
        conn.read_only = True
        for candidate in [key, "garbage", key[:-1]]:
            for function in ("authenticate_api_key", "try_authenticate_api_key"):
                with pytest.raises(errors.ReadOnlySqlTransaction):
                    conn.execute(f"select tenancy.{function}(%s)", (candidate,))
                conn.rollback()
        conn.read_only = False
        authenticate(conn, key)
        conn.rollback()
    assert failure_total(roles) == total


def test_lockout_after_failures(roles: Roles, make_tenant: Any) -> None:
    a = make_tenant()
    key_id, key = create_key(roles, a, a.owner)
    other_id, other = create_key(roles, a, a.owner)
    revoke_key(roles, a, a.owner, key_id)
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        saved = conn.execute(
            "select lockout_failures, lockout_window from tenancy.auth_config"
        ).fetchone()
        assert saved is not None
        # A window of a length no other test uses: the failure sketch's counters carry their
        # window's number, so the failures other tests of this database counted lately (they
        # may fill every counter of the sketch) do not count in it.
        conn.execute(
            "select tenancy.configure_auth(p_lockout_failures => 3,"
            " p_lockout_window => interval '433 seconds')"
        )
    try:
        start = failures(roles, key_id)
        for _ in range(max(0, 3 - start)):
            assert refusal(roles, key)[0] == "TN004"
        state, message = refusal(roles, key)
        assert state == "TN013" and f"api_key:{key_id}" in message
        with psycopg.connect(roles.app) as conn:
            row = conn.execute(
                "select sqlstate from tenancy.try_authenticate_api_key(%s)", (key,)
            ).fetchone()
            conn.commit()
            assert row == ("TN013",)
            # Another key of the tenant is not locked out.
            with conn.transaction():
                assert authenticate(conn, other)[2] == other_id
    finally:
        with psycopg.connect(roles.admin, autocommit=True) as conn:
            conn.execute(
                "select tenancy.configure_auth(p_lockout_failures => %s, p_lockout_window => %s)",
                saved,
            )


# -- concurrency ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "level", [psycopg.IsolationLevel.REPEATABLE_READ, psycopg.IsolationLevel.SERIALIZABLE]
)
def test_revoke_after_snapshot_refuses(
    roles: Roles, make_tenant: Any, level: psycopg.IsolationLevel
) -> None:
    a = make_tenant()
    key_id, key = create_key(roles, a, a.owner)
    with psycopg.connect(roles.app) as conn:
        conn.isolation_level = level
        # Rightful: a snapshot taken with the key valid, and nothing changed since.
        conn.execute("select count(*) from tenancy.memberships")  # the snapshot
        authenticate(conn, key)
        conn.rollback()
        conn.execute("select count(*) from tenancy.memberships")  # the snapshot
        revoke_key(roles, a, a.owner, key_id)
        with pytest.raises(errors.SerializationFailure):
            conn.execute("select tenancy.authenticate_api_key(%s)", (key,))
        conn.rollback()
        with pytest.raises(psycopg.Error) as excinfo:
            conn.execute("select tenancy.authenticate_api_key(%s)", (key,))
        assert excinfo.value.sqlstate == "TN004"
        conn.rollback()


def test_revocation_applies_to_later_transactions(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    """A context lives one transaction: one set before the revocation committed keeps its rows
    until it ends; every transaction after is refused."""
    a, _ = tenants
    key_id, key = create_key(roles, a, a.owner)
    with psycopg.connect(roles.app) as conn:
        # The first use writes last_used_at: the revocation would wait for that transaction.
        authenticate(conn, key)
        conn.commit()
        authenticate(conn, key)
        revoke_key(roles, a, a.owner, key_id)
        assert visible(conn) == ["a1", "a2"]
        conn.commit()
        with pytest.raises(psycopg.Error) as excinfo:
            authenticate(conn, key)
        assert excinfo.value.sqlstate == "TN004"
        conn.rollback()
        assert visible(conn) == []


def test_last_used_refresh_by_another_session_is_no_conflict(
    roles: Roles, make_tenant: Any
) -> None:
    a = make_tenant()
    key_id, key = create_key(roles, a, a.owner)
    with psycopg.connect(roles.app) as first, psycopg.connect(roles.app) as second:
        first.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        first.execute("select count(*) from tenancy.memberships")  # the snapshot
        with second.transaction():
            authenticate(second, key)  # writes last_used_at: the key's first use
        assert authenticate(first, key)[2] == key_id
        first.rollback()
    with psycopg.connect(roles.superuser) as conn:
        used = one(conn, "select last_used_at from tenancy.api_keys where id = %s", (key_id,))
    assert used is not None


def test_last_used_is_written_at_most_once_a_minute(roles: Roles, make_tenant: Any) -> None:
    a = make_tenant()
    key_id, key = create_key(roles, a, a.owner)
    query = "select xmin::text, last_used_at from tenancy.api_keys where id = %s"
    with psycopg.connect(roles.superuser, autocommit=True) as su:
        with psycopg.connect(roles.app) as conn:
            with conn.transaction():
                authenticate(conn, key)
            first = su.execute(query, (key_id,)).fetchone()
            for _ in range(5):
                with conn.transaction():
                    authenticate(conn, key)
            assert su.execute(query, (key_id,)).fetchone() == first  # no write
            su.execute(
                "update tenancy.api_keys set last_used_at = last_used_at - interval '61 seconds' "
                "where id = %s",
                (key_id,),
            )
            with conn.transaction():
                authenticate(conn, key)
        after = su.execute(query, (key_id,)).fetchone()
    assert first is not None and after is not None
    assert after[0] != first[0] and after[1] >= first[1]  # refreshed once it was a minute old


def test_authentications_race_a_revocation(roles: Roles, make_tenant: Any) -> None:
    """Authentications racing a revoke, under REPEATABLE READ: each one either succeeded before
    the revocation committed or was refused (TN004, or 40001 whose retry is TN004); none that
    starts after the revocation committed succeeds."""
    a = make_tenant()
    key_id, key = create_key(roles, a, a.owner)
    revoked = threading.Event()
    outcomes: list[str] = []
    lock = threading.Lock()

    done = threading.Event()

    def worker() -> None:
        with psycopg.connect(roles.app) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            while not done.is_set():
                seen_revoked = revoked.is_set()
                try:
                    conn.execute("select tenancy.authenticate_api_key(%s)", (key,))
                    outcome = "late-ok" if seen_revoked else "ok"
                except psycopg.Error as exc:
                    outcome = str(exc.sqlstate)
                conn.rollback()
                with lock:
                    outcomes.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    revoke_key(roles, a, a.owner, key_id)
    revoked.set()
    time.sleep(0.3)
    done.set()
    for t in threads:
        t.join()
    assert "late-ok" not in outcomes
    # TN013: the revoked key's repeated failures lock it out (10 by default).
    assert set(outcomes) <= {"ok", "TN004", "40001", "TN013"}
    assert "ok" in outcomes and "TN004" in outcomes


# -- arbitrary input ---------------------------------------------------------------------------

_no_nul = st.text().filter(lambda s: "\x00" not in s)
_shaped = st.text(alphabet=BASE64URL, min_size=60, max_size=70).map(lambda s: "pgtk_" + s)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(candidate=st.one_of(_no_nul, _shaped, st.binary(max_size=200).map(lambda b: b.hex())))
def test_arbitrary_strings_give_documented_refusals(roles: Roles, candidate: str) -> None:
    with psycopg.connect(roles.app) as conn:
        with pytest.raises(psycopg.Error) as excinfo:
            conn.execute("select tenancy.authenticate_api_key(%s)", (candidate,))
        assert excinfo.value.sqlstate == "TN004"
        assert len(candidate) < 20 or candidate[10:] not in str(excinfo.value)
        conn.rollback()
        row = conn.execute(
            "select tenant_id, sqlstate, message from tenancy.try_authenticate_api_key(%s)",
            (candidate,),
        ).fetchone()
        assert row is not None and row[0] is None and row[1] == "TN004"
        assert one(conn, "select tenancy.current_tenant_id()") is None
        conn.rollback()


def test_python_helpers_open_a_key_transaction_and_commit_a_refusals_event(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    key_id, key = create_key(roles, a, a.owner, role="viewer")
    revoked_id, revoked = create_key(roles, a, a.owner)
    revoke_key(roles, a, a.owner, revoked_id)
    with psycopg.connect(roles.app) as conn:
        with api_key_transaction(conn, key) as ctx:
            assert (ctx.tenant_id, ctx.user_id, ctx.role) == (a.id, None, "viewer")
            assert one(conn, "select tenancy.current_api_key_id()") == key_id
            assert visible(conn) == ["a1", "a2"]
        with pytest.raises(AuthenticationRefused) as info, api_key_transaction(conn, revoked):
            pytest.fail("a revoked key opened a transaction")
        assert info.value.sqlstate == "TN004"
        assert revoked not in str(info.value)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with psycopg.connect(roles.superuser) as conn:
        kinds = conn.execute(
            "select kind, sqlstate from tenancy.security_events where api_key_id = %s",
            (str(revoked_id),),
        ).fetchall()
    assert ("authentication.failed", "TN004") in kinds  # committed by the helper
    with (
        ConnectionPool(roles.app, min_size=1, max_size=1, open=True) as pool,
        pool_api_key_transaction(pool, key) as (conn, ctx),
    ):
        assert ctx.tenant_id == a.id
        assert visible(conn) == ["a1", "a2"]
    assert b.id != a.id


async def test_async_key_transaction(roles: Roles, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    _, key = create_key(roles, a, a.owner)
    async with await psycopg.AsyncConnection.connect(roles.app) as conn:
        async with aapi_key_transaction(conn, key) as ctx:
            assert ctx.tenant_id == a.id
            cur = await conn.execute("select name from app.projects order by name")
            assert [r[0] for r in await cur.fetchall()] == ["a1", "a2"]
        with pytest.raises(AuthenticationRefused) as info:
            async with aapi_key_transaction(conn, key[:-1] + ("A" if key[-1] != "A" else "B")):
                pytest.fail("a wrong key opened a transaction")
        assert info.value.sqlstate == "TN004"
    async with (
        AsyncConnectionPool(roles.app, min_size=1, max_size=1, open=False) as pool,
        apool_api_key_transaction(pool, key) as (conn, ctx),
    ):
        assert ctx.tenant_id == a.id
