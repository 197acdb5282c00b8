"""The Python helpers: each opens a transaction with the tenant set, and the context ends with it.

Every test runs against the session database as the real login roles (tenancy_app for
applications with a JWT, tenancy_service for trusted backends) and reads app.projects, whose
row-level security comes from the example application's generated policies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from typing import Any

import psycopg
import pytest
from conftest import (
    CONTEXT_SQL,
    INSERT_SQL,
    VISIBLE_SQL,
    Roles,
    Tenant,
    add_member,
    context_now,
    seed,
    token_for,
    visible_rows,
)
from psycopg import errors
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool

import pgtenancy
from pgtenancy import (
    ContextError,
    TenantContext,
    aauthenticated_transaction,
    apool_authenticated_transaction,
    apool_tenant_transaction,
    atenant_transaction,
    authenticated_transaction,
    pool_authenticated_transaction,
    pool_tenant_transaction,
    tenant_transaction,
)

NO_CONTEXT = (None, None, None)


def after_block(conn: psycopg.Connection[Any]) -> tuple[tuple[Any, ...], list[Any]]:
    """Context and visible rows in a fresh transaction right after a helper's block."""
    assert conn.info.transaction_status == TransactionStatus.IDLE
    with conn.transaction():
        return context_now(conn), visible_rows(conn)


def stored_rows(roles: Roles, tenant: Tenant) -> list[str]:
    """What is committed for a tenant, read by a trusted backend in its own transaction."""
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, tenant.id):
        return [name for _, name in visible_rows(conn)]


# -- the package -----------------------------------------------------------------------------


def test_package_exports_version_and_helpers() -> None:
    assert pgtenancy.__version__ == "0.2.0.dev0"
    for name in pgtenancy.__all__:
        assert hasattr(pgtenancy, name)
    assert issubclass(ContextError, RuntimeError)


def test_tenant_context_is_frozen() -> None:
    ctx = TenantContext(tenant_id=uuid.uuid4(), user_id=None, role="service")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.role = "owner"  # type: ignore[misc]


# -- tenant_transaction (trusted backends) ---------------------------------------------------


def test_tenant_transaction_sets_service_context(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    with psycopg.connect(roles.service) as conn:
        with tenant_transaction(conn, a.id) as ctx:
            assert ctx == TenantContext(tenant_id=a.id, user_id=None, role="service")
            assert conn.info.transaction_status == TransactionStatus.INTRANS
            assert context_now(conn) == (a.id, None, "service")
            conn.execute(INSERT_SQL, ("a3",))
            assert visible_rows(conn) == [(a.id, "a1"), (a.id, "a2"), (a.id, "a3")]
        # After the block: committed, and nothing of the context is left on the connection.
        assert after_block(conn) == (NO_CONTEXT, [])
    assert stored_rows(roles, a) == ["a1", "a2", "a3"]


def test_tenant_transaction_with_user_takes_the_member_role(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    viewer = add_member(roles, a, "viewer")
    with psycopg.connect(roles.service) as conn:
        with tenant_transaction(conn, str(a.id), str(a.owner)) as ctx:
            assert ctx == TenantContext(tenant_id=a.id, user_id=a.owner, role="owner")
            assert context_now(conn) == (a.id, a.owner, "owner")
        with tenant_transaction(conn, a.id, viewer) as ctx:
            assert ctx == TenantContext(tenant_id=a.id, user_id=viewer, role="viewer")
            assert [name for _, name in visible_rows(conn)] == ["a1", "a2"]
        assert after_block(conn) == (NO_CONTEXT, [])


def test_tenant_transaction_refuses_a_non_member(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    with psycopg.connect(roles.service) as conn:
        # B's owner is not a member of A: the database's TN003 reaches the caller unchanged.
        with pytest.raises(psycopg.Error) as info, tenant_transaction(conn, a.id, b.owner):
            pytest.fail("the block must not run")
        assert info.value.sqlstate == "TN003"
        assert str(b.owner) in str(info.value)
        assert after_block(conn) == (NO_CONTEXT, [])
        # The rightful owner gets in on the same connection.
        with tenant_transaction(conn, a.id, a.owner) as ctx:
            assert ctx.role == "owner"


def test_app_role_cannot_use_set_context(roles: Roles, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    with psycopg.connect(roles.app) as conn:
        with pytest.raises(errors.InsufficientPrivilege), tenant_transaction(conn, a.id):
            pytest.fail("the block must not run")
        assert after_block(conn) == (NO_CONTEXT, [])
        with authenticated_transaction(conn, token_for(a.id, a.owner)) as ctx:
            assert ctx.tenant_id == a.id


def test_malformed_ids_are_rejected_before_touching_the_connection(roles: Roles) -> None:
    with psycopg.connect(roles.service) as conn:
        with pytest.raises(ValueError, match="tenant_id must be a UUID"):
            tenant_transaction(conn, "not-a-uuid")
        with pytest.raises(TypeError, match="user_id must be a str"):
            tenant_transaction(conn, uuid.uuid4(), 12345)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="token must be a str"):
            authenticated_transaction(conn, b"bytes")  # type: ignore[arg-type]
        assert conn.info.transaction_status == TransactionStatus.IDLE


def test_user_ids_are_text_checked_by_the_database(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    with psycopg.connect(roles.service) as conn:
        # A control character: 22023 naming the value, nothing set, the connection usable.
        with (
            pytest.raises(
                psycopg.errors.InvalidParameterValue, match=r"invalid user id 'bell\x07'"
            ),
            tenant_transaction(conn, a.id, "bell\x07"),
        ):
            pass
        assert conn.info.transaction_status == TransactionStatus.IDLE
        # The owner's id as the identity provider wrote it ('auth0|…'): its context.
        with tenant_transaction(conn, a.id, a.owner) as ctx:
            assert a.owner.startswith("auth0|")
            assert ctx == TenantContext(tenant_id=a.id, user_id=a.owner, role="owner")


# -- authenticated_transaction (applications) ------------------------------------------------


def test_authenticated_transaction_sets_context_and_writes_as_the_tenant(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    with psycopg.connect(roles.app) as conn:
        with authenticated_transaction(conn, token_for(a.id, a.owner)) as ctx:
            assert ctx == TenantContext(tenant_id=a.id, user_id=a.owner, role="owner")
            assert context_now(conn) == (a.id, a.owner, "owner")
            conn.execute(INSERT_SQL, ("a-new",))
            rows = visible_rows(conn)
            assert rows == [(a.id, "a-new"), (a.id, "a1"), (a.id, "a2")]
        assert after_block(conn) == (NO_CONTEXT, [])
    assert stored_rows(roles, a) == ["a-new", "a1", "a2"]
    assert stored_rows(roles, b) == ["b1", "b2", "b3"]


def test_token_for_a_never_shows_b(roles: Roles, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    with psycopg.connect(roles.app) as conn:
        with authenticated_transaction(conn, token_for(a.id, a.owner)):
            assert visible_rows(conn) == [(a.id, "a1"), (a.id, "a2")]
            by_id = conn.execute(
                "select count(*) from app.projects where tenant_id = %s", (b.id,)
            ).fetchone()
            assert by_id == (0,)
            # Writing a row for B is refused by the policy's WITH CHECK.
            with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
                conn.execute(
                    "insert into app.projects (tenant_id, name) values (%s, 'smuggled')", (b.id,)
                )
        with authenticated_transaction(conn, token_for(b.id, b.owner)):
            assert visible_rows(conn) == [(b.id, "b1"), (b.id, "b2"), (b.id, "b3")]
    assert stored_rows(roles, b) == ["b1", "b2", "b3"]


def test_database_errors_propagate_unchanged(
    roles: Roles, tenants: tuple[Tenant, Tenant], make_tenant: Any
) -> None:
    a, b = tenants
    suspended = make_tenant()
    with psycopg.connect(roles.admin, autocommit=True) as admin:
        admin.execute("select tenancy.suspend_tenant(%s)", (suspended.id,))
    cases = [
        (token_for(a.id, b.owner), "TN003"),  # not a member
        (token_for(a.id, a.owner, ttl=-60), "TN004"),  # expired
        (token_for(a.id, a.owner) + "x", "TN004"),  # bad signature
        (token_for(suspended.id, suspended.owner), "TN002"),  # tenant not active
    ]
    with psycopg.connect(roles.app) as conn:
        for token, sqlstate in cases:
            with pytest.raises(psycopg.Error) as info, authenticated_transaction(conn, token):
                pytest.fail("the block must not run")
            assert info.value.sqlstate == sqlstate, info.value
            assert after_block(conn) == (NO_CONTEXT, [])
        # Paired: a valid token on the same connection works.
        with authenticated_transaction(conn, token_for(a.id, a.owner)):
            assert [name for _, name in visible_rows(conn)] == ["a1", "a2"]


def test_policy_violation_inside_the_block_propagates_and_rolls_back(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    viewer = add_member(roles, a, "viewer")
    with psycopg.connect(roles.app) as conn:
        with (
            pytest.raises(errors.InsufficientPrivilege),
            authenticated_transaction(conn, token_for(a.id, viewer)) as ctx,
        ):
            assert ctx.role == "viewer"
            assert [name for _, name in visible_rows(conn)] == ["a1", "a2"]  # viewers read
            conn.execute(INSERT_SQL, ("by-viewer",))  # but may not write
        assert after_block(conn) == (NO_CONTEXT, [])
        # The owner writes on the same connection.
        with authenticated_transaction(conn, token_for(a.id, a.owner)):
            conn.execute(INSERT_SQL, ("by-owner",))
    assert stored_rows(roles, a) == ["a1", "a2", "by-owner"]


def test_failing_block_rolls_back_and_leaves_no_context(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants

    class Boom(Exception):
        pass

    with psycopg.connect(roles.app) as conn:
        with pytest.raises(Boom), authenticated_transaction(conn, token_for(a.id, a.owner)):
            conn.execute(INSERT_SQL, ("doomed",))
            assert "doomed" in [name for _, name in visible_rows(conn)]
            raise Boom
        assert after_block(conn) == (NO_CONTEXT, [])
        with authenticated_transaction(conn, token_for(a.id, a.owner)):
            assert [name for _, name in visible_rows(conn)] == ["a1", "a2"]
    assert stored_rows(roles, a) == ["a1", "a2"]


def test_no_context_outside_the_block_in_autocommit_mode(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    with psycopg.connect(roles.app, autocommit=True) as conn:
        with authenticated_transaction(conn, token_for(a.id, a.owner)):
            assert conn.info.transaction_status == TransactionStatus.INTRANS
            assert len(visible_rows(conn)) == 2
        assert conn.info.transaction_status == TransactionStatus.IDLE
        assert context_now(conn) == NO_CONTEXT
        assert visible_rows(conn) == []
        # Writing with no context is refused (TN001), and nothing is written.
        with pytest.raises(psycopg.Error) as info:
            conn.execute(INSERT_SQL, ("orphan",))
        assert info.value.sqlstate == "TN001"
    assert stored_rows(roles, a) == ["a1", "a2"]


# -- refusal: the helper must own the transaction --------------------------------------------


def test_refuses_an_implicit_transaction(roles: Roles, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    token = token_for(a.id, a.owner)
    with psycopg.connect(roles.app) as conn:  # autocommit off
        conn.execute("select 1")
        assert conn.info.transaction_status == TransactionStatus.INTRANS
        with (
            pytest.raises(ContextError, match="already inside a transaction"),
            authenticated_transaction(conn, token),
        ):
            pytest.fail("the block must not run")
        # Nothing was set in the outer transaction, which is still usable.
        assert context_now(conn) == NO_CONTEXT
        assert visible_rows(conn) == []
        conn.rollback()
        # Paired: once the caller has ended its transaction, the helper works.
        with authenticated_transaction(conn, token):
            assert len(visible_rows(conn)) == 2


def test_refuses_an_open_transaction_block(roles: Roles, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    token = token_for(a.id, a.owner)
    with psycopg.connect(roles.app, autocommit=True) as conn:
        with conn.transaction():
            with pytest.raises(ContextError), authenticated_transaction(conn, token):
                pytest.fail("the block must not run")
            assert context_now(conn) == NO_CONTEXT
        conn.execute("begin")
        with pytest.raises(ContextError), authenticated_transaction(conn, token):
            pytest.fail("the block must not run")
        conn.execute("rollback")
        with authenticated_transaction(conn, token):
            assert len(visible_rows(conn)) == 2


def test_refuses_nesting(roles: Roles, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    with psycopg.connect(roles.service) as conn:
        with tenant_transaction(conn, a.id):
            with pytest.raises(ContextError), tenant_transaction(conn, b.id):
                pytest.fail("the block must not run")
            # Still A's transaction, A's rows.
            assert context_now(conn) == (a.id, None, "service")
            assert [name for _, name in visible_rows(conn)] == ["a1", "a2"]
        assert after_block(conn) == (NO_CONTEXT, [])


def test_refuses_a_failed_transaction_and_a_closed_connection(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    token = token_for(a.id, a.owner)
    conn = psycopg.connect(roles.app)
    with pytest.raises(errors.DivisionByZero):
        conn.execute("select 1 / 0")
    assert conn.info.transaction_status == TransactionStatus.INERROR
    with pytest.raises(ContextError, match="has failed"), authenticated_transaction(conn, token):
        pytest.fail("the block must not run")
    conn.rollback()
    with authenticated_transaction(conn, token):
        assert len(visible_rows(conn)) == 2
    conn.close()
    with pytest.raises(ContextError, match="closed"), authenticated_transaction(conn, token):
        pytest.fail("the block must not run")


# -- pools -----------------------------------------------------------------------------------


def test_pool_authenticated_transaction_leaves_nothing_for_the_next_borrower(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    with ConnectionPool(roles.app, min_size=1, max_size=1, open=True) as pool:
        with pool_authenticated_transaction(pool, token_for(a.id, a.owner)) as (conn, ctx):
            assert ctx == TenantContext(tenant_id=a.id, user_id=a.owner, role="owner")
            assert context_now(conn) == (a.id, a.owner, "owner")
            conn.execute(INSERT_SQL, ("pooled",))
            assert [name for _, name in visible_rows(conn)] == ["a1", "a2", "pooled"]
            pid = conn.info.backend_pid
        with pool.connection() as conn:
            assert conn.info.backend_pid == pid  # the very same server connection
            assert context_now(conn) == NO_CONTEXT
            assert visible_rows(conn) == []
    assert stored_rows(roles, a) == ["a1", "a2", "pooled"]


def test_pool_tenant_transaction_and_failure(roles: Roles, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    with ConnectionPool(roles.service, min_size=1, max_size=1, open=True) as pool:
        with pool_tenant_transaction(pool, b.id) as (conn, ctx):
            assert ctx == TenantContext(tenant_id=b.id, user_id=None, role="service")
            assert [name for _, name in visible_rows(conn)] == ["b1", "b2", "b3"]
        with (
            pytest.raises(errors.UniqueViolation),
            pool_tenant_transaction(pool, a.id) as (
                conn,
                _,
            ),
        ):
            conn.execute(INSERT_SQL, ("a-first",))
            conn.execute(INSERT_SQL, ("a1",))  # duplicate name: 23505 rolls everything back
        with pool.connection() as conn:
            assert context_now(conn) == NO_CONTEXT
            assert visible_rows(conn) == []
        with pool_tenant_transaction(pool, a.id, a.owner) as (conn, ctx):
            assert ctx.role == "owner"
            assert [name for _, name in visible_rows(conn)] == ["a1", "a2"]


def test_threads_on_a_pool_each_see_only_their_own_rows(roles: Roles, make_tenant: Any) -> None:
    workers, rounds = 8, 5
    tenants = [make_tenant() for _ in range(workers)]
    for i, tenant in enumerate(tenants):
        seed(roles, tenant, [f"seed-{i}-{k}" for k in range(i)])  # tenant i starts with i rows
    failures: list[BaseException] = []
    start = threading.Barrier(workers)

    def work(i: int, tenant: Tenant, pool: ConnectionPool[Any]) -> None:
        try:
            start.wait()
            token = token_for(tenant.id, tenant.owner)
            for r in range(rounds):
                with pool_authenticated_transaction(pool, token) as (conn, ctx):
                    assert ctx.tenant_id == tenant.id
                    conn.execute(INSERT_SQL, (f"row-{i}-{r}",))
                    rows = visible_rows(conn)
                    assert len(rows) == i + r + 1
                    assert {tid for tid, _ in rows} == {tenant.id}
                with pool_authenticated_transaction(pool, token) as (conn, _):
                    assert context_now(conn) == (tenant.id, tenant.owner, "owner")
                    assert len(visible_rows(conn)) == i + r + 1
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    with ConnectionPool(roles.app, min_size=3, max_size=3, open=True) as pool:
        threads = [threading.Thread(target=work, args=(i, t, pool)) for i, t in enumerate(tenants)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        # Every pooled connection is clean afterwards.
        for _ in range(3):
            with pool.connection() as conn:
                assert context_now(conn) == NO_CONTEXT
                assert visible_rows(conn) == []
    for i, tenant in enumerate(tenants):
        names = stored_rows(roles, tenant)
        assert len(names) == i + rounds
        assert all(name.split("-")[1] == str(i) for name in names)


# -- asynchronous ----------------------------------------------------------------------------


async def acontext_now(conn: psycopg.AsyncConnection[Any]) -> tuple[Any, ...]:
    cur = await conn.execute(CONTEXT_SQL)
    row = await cur.fetchone()
    assert row is not None
    return tuple(row)


async def avisible(conn: psycopg.AsyncConnection[Any]) -> list[tuple[uuid.UUID, str]]:
    cur = await conn.execute(VISIBLE_SQL)
    return [(r[0], r[1]) for r in await cur.fetchall()]


async def aafter_block(conn: psycopg.AsyncConnection[Any]) -> tuple[tuple[Any, ...], list[Any]]:
    assert conn.info.transaction_status == TransactionStatus.IDLE
    async with conn.transaction():
        return await acontext_now(conn), await avisible(conn)


async def test_async_connection_helpers(roles: Roles, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    async with await psycopg.AsyncConnection.connect(roles.app) as conn:
        async with aauthenticated_transaction(conn, token_for(a.id, a.owner)) as ctx:
            assert ctx == TenantContext(tenant_id=a.id, user_id=a.owner, role="owner")
            assert await acontext_now(conn) == (a.id, a.owner, "owner")
            await conn.execute(INSERT_SQL, ("async-a",))
            assert [n for _, n in await avisible(conn)] == ["a1", "a2", "async-a"]
        assert await aafter_block(conn) == (NO_CONTEXT, [])
        # A failing block rolls back and leaves nothing.
        with pytest.raises(errors.UniqueViolation):
            async with aauthenticated_transaction(conn, token_for(b.id, b.owner)):
                await conn.execute(INSERT_SQL, ("async-b",))
                await conn.execute(INSERT_SQL, ("b1",))
        assert await aafter_block(conn) == (NO_CONTEXT, [])
        # Database errors come through unchanged.
        with pytest.raises(psycopg.Error) as info:
            async with aauthenticated_transaction(conn, token_for(a.id, b.owner)):
                pytest.fail("the block must not run")
        assert info.value.sqlstate == "TN003"
        # Refusal inside someone else's transaction.
        async with conn.transaction():
            with pytest.raises(ContextError):
                async with aauthenticated_transaction(conn, token_for(a.id, a.owner)):
                    pytest.fail("the block must not run")
    async with await psycopg.AsyncConnection.connect(roles.service) as conn:
        async with atenant_transaction(conn, b.id) as ctx:
            assert ctx == TenantContext(tenant_id=b.id, user_id=None, role="service")
            assert [n for _, n in await avisible(conn)] == ["b1", "b2", "b3"]
        async with atenant_transaction(conn, a.id, a.owner) as ctx:
            assert ctx.role == "owner"
            assert [n for _, n in await avisible(conn)] == ["a1", "a2", "async-a"]
        assert await aafter_block(conn) == (NO_CONTEXT, [])
    assert stored_rows(roles, b) == ["b1", "b2", "b3"]


async def test_async_pool_leaves_nothing_for_the_next_borrower(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    async with AsyncConnectionPool(roles.app, min_size=1, max_size=1, open=False) as pool:
        async with apool_authenticated_transaction(pool, token_for(a.id, a.owner)) as (conn, ctx):
            assert ctx.tenant_id == a.id
            assert [n for _, n in await avisible(conn)] == ["a1", "a2"]
            pid = conn.info.backend_pid
        async with pool.connection() as conn:
            assert conn.info.backend_pid == pid
            assert await acontext_now(conn) == NO_CONTEXT
            assert await avisible(conn) == []
    async with AsyncConnectionPool(roles.service, min_size=1, max_size=1, open=False) as pool:
        async with apool_tenant_transaction(pool, b.id) as (conn, ctx):
            assert ctx == TenantContext(tenant_id=b.id, user_id=None, role="service")
            assert [n for _, n in await avisible(conn)] == ["b1", "b2", "b3"]
            pid = conn.info.backend_pid
        async with pool.connection() as conn:
            assert conn.info.backend_pid == pid
            assert await acontext_now(conn) == NO_CONTEXT
            assert await avisible(conn) == []


async def test_async_tasks_on_a_pool_each_see_only_their_own_rows(
    roles: Roles, make_tenant: Any
) -> None:
    workers, rounds = 8, 5
    tenants = [make_tenant() for _ in range(workers)]
    for i, tenant in enumerate(tenants):
        seed(roles, tenant, [f"seed-{i}-{k}" for k in range(i)])

    async def work(i: int, tenant: Tenant, pool: AsyncConnectionPool[Any]) -> None:
        token = token_for(tenant.id, tenant.owner)
        for r in range(rounds):
            async with apool_authenticated_transaction(pool, token) as (conn, ctx):
                assert ctx.tenant_id == tenant.id
                await conn.execute(INSERT_SQL, (f"row-{i}-{r}",))
                await asyncio.sleep(0)  # let the other tasks interleave
                rows = await avisible(conn)
                assert len(rows) == i + r + 1
                assert {tid for tid, _ in rows} == {tenant.id}

    async with AsyncConnectionPool(roles.app, min_size=3, max_size=3, open=False) as pool:
        await asyncio.gather(*(work(i, t, pool) for i, t in enumerate(tenants)))
        for _ in range(3):
            async with pool.connection() as conn:
                assert await acontext_now(conn) == NO_CONTEXT
                assert await avisible(conn) == []
    for i, tenant in enumerate(tenants):
        names = stored_rows(roles, tenant)
        assert len(names) == i + rounds
        assert all(name.split("-")[1] == str(i) for name in names)
