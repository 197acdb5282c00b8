"""pgtenancy.router on two real clusters: routing, the directory cache, fences, a live switch."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
import pytest
from conftest import JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, new_user_id, token_for
from placement_support import Pair, Servers, drop_pair, make_pair
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgtenancy import tenant_transaction, testing
from pgtenancy.router import (
    AsyncRouter,
    PlacementFenced,
    RetryableRouting,
    Router,
    RoutingError,
    RoutingTimeout,
    TenantMoved,
    UnknownPlacement,
    UnknownTenant,
)

POOL = {"min_size": 1, "max_size": 4}
BASE = "router.test"

FENCE_PENDING = "select pid from tenancy.fence_pending(%s)"
INSERT_DOCUMENT = (
    "insert into app.documents (project_id, title)"
    " select p.id, %s from app.projects as p where p.name = 'main'"
    " returning inet_server_port()"
)
WHERE = (
    "select inet_server_port(), current_database(),"
    " array(select p.name from app.projects as p order by p.name)"
)


def tcp(url: str) -> str:
    """The same login over TCP on 127.0.0.1 (inet_server_port() is NULL on a Unix socket)."""
    params = conninfo_to_dict(url)
    params["host"] = "127.0.0.1"
    return make_conninfo("", **params)


def sql(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement in autocommit and return its rows (none for a statement without)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def in_context(url: str, tenant: uuid.UUID, query: str, *params: Any) -> None:
    with psycopg.connect(url) as conn, tenant_transaction(conn, tenant):
        conn.execute(query, params or None)


@dataclass(frozen=True)
class Fence:
    """A fence on home: ``at`` its time (``fenced_at``, taken inside its transaction),
    ``committed_by`` a time after its commit, ``watched`` the transactions running then."""

    at: datetime
    committed_by: datetime
    watched: list[str]


@dataclass
class World:
    """Two tenants, ``h`` placed on home and ``d`` on dedicated, and a directory login on home.

    Home is the directory: it lists both tenants, ``d`` with placement ``dedicated`` (epoch 1)
    and fenced there, as a move would leave it. Each tenant has one project only its own server
    holds: ``main`` (and ``only-on-home`` / ``only-on-dedicated``).
    """

    pair: Pair
    directory: str
    directory_role: str
    home_port: int
    dedicated_port: int
    home_db: str
    dedicated_db: str
    h: uuid.UUID
    h_slug: str
    d: uuid.UUID
    d_slug: str
    d_owner: str
    routers: list[Router] = field(default_factory=list)

    def placements(self) -> dict[str, str]:
        return {"home": tcp(self.pair.service_home), "dedicated": tcp(self.pair.service_dedicated)}

    def router(self, **kwargs: Any) -> Router:
        kwargs.setdefault("pool_kwargs", POOL)
        router = Router(self.directory, kwargs.pop("placements", self.placements()), **kwargs)
        self.routers.append(router)
        return router

    def arouter(self, **kwargs: Any) -> AsyncRouter:
        kwargs.setdefault("pool_kwargs", POOL)
        return AsyncRouter(self.directory, kwargs.pop("placements", self.placements()), **kwargs)

    def copy_to_dedicated(self, tenant: uuid.UUID, slug: str) -> None:
        """The tenant's row and projects on dedicated, fenced there: what a move copies before
        its flip (the projects copied as the superuser, as replication applies them)."""
        sql(
            self.pair.admin_dedicated,
            "select tenancy.create_tenant(%s, 'Moved', p_id => %s)",
            slug,
            tenant,
        )
        sql(self.pair.admin_dedicated, "select tenancy.fence_tenant(%s, 'move in')", tenant)
        rows = sql(
            self.pair.home,
            "select id, name, created_at from app.projects where tenant_id = %s",
            tenant,
        )
        with psycopg.connect(self.pair.dedicated, autocommit=True) as conn:
            conn.execute("set session_replication_role = replica")
            for pid, name, created in rows:
                conn.execute(
                    "insert into app.projects (tenant_id, id, name, created_at)"
                    " overriding system value values (%s, %s, %s, %s)",
                    (tenant, pid, name, created),
                )

    def fence_home(self, tenant: uuid.UUID, complete: bool = True) -> Fence:
        """Fence the tenant's writes on home, as a move does; with ``complete``, return once the
        transactions running at the fence's commit (which may still write) have ended."""
        with psycopg.connect(self.pair.admin_home, autocommit=True) as conn:
            row = conn.execute(
                "select tenancy.fence_tenant(%s, 'move to dedicated')", (tenant,)
            ).fetchone()
            assert row is not None
            # The fence has committed: these transactions are the ones that may still write.
            after = conn.execute("select clock_timestamp(), tenancy.fence_transactions()")
            fence = Fence(row[0], *(after.fetchone() or ()))
            while complete and conn.execute(
                "select count(*) from tenancy.fence_pending(%s)", (fence.watched,)
            ).fetchone() != (0,):
                time.sleep(0.005)
        return fence

    def flip(self, tenant: uuid.UUID) -> None:
        """The move's flip: placement dedicated on home (the directory) and on dedicated, then
        the fence lifted on dedicated."""
        sql(self.pair.admin_home, "select tenancy.set_tenant_placement(%s, 'dedicated')", tenant)
        sql(
            self.pair.admin_dedicated,
            "select tenancy.set_tenant_placement(%s, 'dedicated')",
            tenant,
        )
        sql(self.pair.admin_dedicated, "select tenancy.unfence_tenant(%s)", tenant)

    def documents(self, url: str, tenant: uuid.UUID) -> dict[str, datetime]:
        """Title → created_at of the tenant's documents on one side, read as the superuser."""
        rows = sql(url, "select title, created_at from app.documents where tenant_id = %s", tenant)
        return {title: created for title, created in rows}


def _create_tenant(admin: str, slug: str, tenant: uuid.UUID, owner: str | None = None) -> None:
    sql(
        admin,
        "select tenancy.create_tenant(%s, %s, %s, p_id => %s)",
        slug,
        slug.capitalize(),
        owner,
        tenant,
    )


@pytest.fixture(scope="module")
def shared_pair(servers: Servers) -> Iterator[Pair]:
    """One pair of databases for the module (placement_support's ``pair``, made once: each
    pair costs seconds); every test makes tenants of its own in it."""
    made = make_pair(servers)
    for admin in (made.admin_home, made.admin_dedicated):
        sql(admin, "select tenancy.configure_domains(%s)", [BASE])
        sql(admin, "select tenancy.configure_jwt(%s, %s, %s)", JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE)
    try:
        yield made
    finally:
        drop_pair(made)


@pytest.fixture
def world(shared_pair: Pair) -> Iterator[World]:
    pair = shared_pair
    suffix = uuid.uuid4().hex[:8]
    role = f"p_dir_{suffix}"
    sql(pair.home, f"create role {role} login in role tenancy_service")
    h, d = uuid.uuid4(), uuid.uuid4()
    h_slug, d_slug = f"h-{suffix}", f"d-{suffix}"
    d_owner = new_user_id()
    _create_tenant(pair.admin_home, h_slug, h)
    in_context(
        pair.service_home,
        h,
        "insert into app.projects (name) values ('main'), ('only-on-home')",
    )
    _create_tenant(pair.admin_dedicated, d_slug, d, d_owner)
    in_context(
        pair.service_dedicated,
        d,
        "insert into app.projects (name) values ('main'), ('only-on-dedicated')",
    )
    _create_tenant(pair.admin_home, d_slug, d, d_owner)
    sql(pair.admin_home, "select tenancy.set_tenant_placement(%s, 'dedicated')", d)
    sql(pair.admin_home, "select tenancy.fence_tenant(%s, 'placed on dedicated')", d)
    home, dedicated = conninfo_to_dict(pair.home), conninfo_to_dict(pair.dedicated)
    made = World(
        pair=pair,
        directory=tcp(testing.as_login(pair.home, role)),
        directory_role=role,
        home_port=int(str(home["port"])),
        dedicated_port=int(str(dedicated["port"])),
        home_db=str(home["dbname"]),
        dedicated_db=str(dedicated["dbname"]),
        h=h,
        h_slug=h_slug,
        d=d,
        d_slug=d_slug,
        d_owner=d_owner,
    )
    try:
        yield made
    finally:
        for router in made.routers:
            router.close()


def where(conn: psycopg.Connection[Any]) -> tuple[int, str, list[str]]:
    row = conn.execute(WHERE).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def insert(marker: str) -> Callable[[psycopg.Connection[Any]], int]:
    def fn(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(INSERT_DOCUMENT, (marker,)).fetchone()
        assert row is not None, "no project 'main' here"
        port: int = row[0]
        return port

    return fn


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# -- routing ---------------------------------------------------------------------------------


def test_tenants_of_both_placements_reach_their_own_server(world: World) -> None:
    router = world.router()
    with router.transaction(world.h) as conn:
        assert where(conn) == (world.home_port, world.home_db, ["main", "only-on-home"])
    with router.transaction(world.d) as conn:
        assert where(conn) == (
            world.dedicated_port,
            world.dedicated_db,
            ["main", "only-on-dedicated"],
        )
    # Each side holds only its own tenant's rows: routed anywhere else, they would be missing.
    assert sql(
        world.pair.dedicated, "select count(*) from app.projects where tenant_id = %s", world.h
    ) == [(0,)]
    assert sql(
        world.pair.home, "select count(*) from app.projects where tenant_id = %s", world.d
    ) == [(0,)]
    entry = router.placement(world.d)
    assert (entry.placement, entry.alias, entry.epoch, entry.fenced) == (
        "dedicated",
        "dedicated",
        1,
        True,
    )
    assert router.placement(world.h).placement == "home"
    assert router.stats.directory_reads == 2


def test_a_host_names_the_tenant_and_the_tenant_its_placement(world: World) -> None:
    router = world.router(
        placements={"home": tcp(world.pair.app_home), "dedicated": tcp(world.pair.app_dedicated)}
    )
    host = f"{world.d_slug}.{BASE}:443"
    assert router.tenant_for_host(host) == world.d
    token = token_for(world.d, world.d_owner)
    with router.authenticated_transaction(token, host) as conn:
        row = conn.execute("select tenancy.current_tenant_id(), inet_server_port()").fetchone()
        assert row == (world.d, world.dedicated_port)
    with router.authenticated_transaction(token) as conn:  # routed by the token's claim
        row = conn.execute("select tenancy.current_tenant_id(), inet_server_port()").fetchone()
        assert row == (world.d, world.dedicated_port)
    assert router.stats.host_lookups == 1  # the second time from the cache
    with pytest.raises(UnknownTenant, match="no active tenant at host 'nobody.router.test'"):
        router.tenant_for_host(f"nobody.{BASE}")
    with pytest.raises(psycopg.Error) as info:
        router.tenant_for_host("not a host")
    assert info.value.sqlstate == "TN010"


def test_unknown_tenants_placements_and_suspended_tenants(world: World) -> None:
    router = world.router()
    stranger = uuid.uuid4()
    missing = f"tenant {stranger} is not in the directory"
    with pytest.raises(UnknownTenant, match=missing), router.transaction(stranger):
        pass
    with pytest.raises(UnknownTenant):
        router.run(stranger, insert("never"))
    with pytest.raises(ValueError, match="tenant_id must be a UUID"):
        router.transaction("nope")

    # A suspended tenant is routed, and its placement refuses it as set_context does.
    sql(world.pair.admin_dedicated, "select tenancy.suspend_tenant(%s)", world.d)
    with (
        psycopg.connect(world.pair.service_dedicated) as conn,
        pytest.raises(psycopg.Error) as direct,
        tenant_transaction(conn, world.d),
    ):
        pass
    with pytest.raises(psycopg.Error) as routed, router.transaction(world.d):
        pass
    assert routed.value.sqlstate == direct.value.sqlstate == "TN002"
    assert type(routed.value) is type(direct.value)

    partial = world.router(placements={"home": tcp(world.pair.service_home)})
    with pytest.raises(UnknownPlacement, match="alias 'dedicated'"), partial.transaction(world.d):
        pass
    with partial.transaction(world.h) as conn:
        assert where(conn)[0] == world.home_port


# -- the directory cache ---------------------------------------------------------------------


def test_a_cached_entry_sends_no_query_to_the_directory(world: World) -> None:
    router = world.router(ttl=60)
    with router.transaction(world.h) as conn:
        assert where(conn)[0] == world.home_port
    assert router.stats.directory_reads == 1
    # The directory's login may no longer read it: any query to the directory now fails ...
    sql(world.pair.home, f"revoke tenancy_service from {world.directory_role}")
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            router.placement(world.h, refresh=True)
        # ... and the next requests still succeed, from the cache (the entry older than
        # fence_recheck: a context of this unfenced tenant must not send it to the directory).
        time.sleep(0.15)
        for _ in range(3):
            with router.transaction(world.h) as conn:
                assert where(conn)[0] == world.home_port
        assert router.stats.directory_reads == 1
        assert router.stats.cache_hits == 3
    finally:
        sql(world.pair.home, f"grant tenancy_service to {world.directory_role}")


def test_the_cache_is_bounded_and_can_be_emptied(world: World) -> None:
    router = world.router(ttl=60, cache_size=1)
    for tenant in (world.h, world.d, world.h, world.h):
        router.placement(tenant)
    assert (router.stats.directory_reads, router.stats.cache_hits) == (3, 1)  # h pushed d out
    router.invalidate(world.h)
    router.placement(world.h)
    assert router.stats.directory_reads == 4


def test_an_expired_entry_is_read_again_and_a_higher_epoch_wins(world: World) -> None:
    ttl = 1.5
    router = world.router(ttl=ttl)
    world.copy_to_dedicated(world.h, world.h_slug)
    with router.transaction(world.h) as conn:
        assert where(conn)[0] == world.home_port
    read_at = time.monotonic()
    world.flip(world.h)  # a placement change without a fence: only the TTL notices it
    with router.transaction(world.h) as conn:
        assert where(conn)[0] == world.home_port  # cached
    assert time.monotonic() - read_at < ttl, "too slow to see the cached entry"
    time.sleep(max(read_at + ttl - time.monotonic(), 0) + 0.05)
    with router.transaction(world.h) as conn:
        assert where(conn)[0] == world.dedicated_port
    assert router.placement(world.h).epoch == 1
    assert router.stats.directory_reads == 2


def test_a_fence_makes_the_router_read_the_directory_again(world: World) -> None:
    router = world.router(ttl=60, check_fence=False)
    with router.transaction(world.h) as conn:
        assert where(conn)[0] == world.home_port
    world.copy_to_dedicated(world.h, world.h_slug)
    world.fence_home(world.h)
    world.flip(world.h)
    # The cache still says home: the write there is refused (TN021), the entry forgotten, the
    # directory read again and the write made on dedicated.
    assert router.run(world.h, insert("after-the-move")) == world.dedicated_port
    stats = router.stats
    assert (stats.fenced, stats.retries, stats.directory_reads) == (1, 1, 2)
    assert "after-the-move" in world.documents(world.pair.dedicated, world.h)
    assert "after-the-move" not in world.documents(world.pair.home, world.h)


def test_a_stale_entry_does_not_read_frozen_rows(world: World) -> None:
    """Reads continue on a fenced placement: the fence check sends them to the new one."""
    router = world.router(ttl=60)
    unchecked = world.router(ttl=60, check_fence=False)
    for each in (router, unchecked):
        with each.transaction(world.h) as conn:
            assert where(conn)[0] == world.home_port
    world.copy_to_dedicated(world.h, world.h_slug)
    world.fence_home(world.h)
    world.flip(world.h)
    in_context(
        world.pair.service_dedicated,
        world.h,
        "insert into app.projects (name) values ('made-on-dedicated')",
    )
    time.sleep(0.1)  # fence_recheck: the entry is older than that
    with pytest.raises(TenantMoved) as info, router.transaction(world.h):
        pytest.fail("the block ran on the old placement")
    assert isinstance(info.value, RetryableRouting)
    assert (info.value.placement, info.value.current.placement) == ("home", "dedicated")
    with router.transaction(world.h) as conn:
        port, _, names = where(conn)
        assert (port, "made-on-dedicated" in names) == (world.dedicated_port, True)
    assert router.run(world.h, lambda conn: where(conn)[0]) == world.dedicated_port
    assert router.stats.moved == 1
    # Without the check, the stale entry reads home's rows, frozen at the fence.
    with unchecked.transaction(world.h) as conn:
        port, _, names = where(conn)
        assert (port, "made-on-dedicated" in names) == (world.home_port, False)


# -- retries ---------------------------------------------------------------------------------


def test_run_gives_up_while_the_tenant_stays_fenced(world: World) -> None:
    router = world.router()
    router.placement(world.h)
    world.fence_home(world.h)
    started = time.monotonic()
    with pytest.raises(RoutingTimeout) as info:
        router.run(world.h, insert("never"), wait=0.6)
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 5.0  # the deadline, and one last attempt
    assert info.value.attempts > 1
    assert isinstance(info.value.__cause__, PlacementFenced)
    assert f"tenant {world.h}: gave up after" in str(info.value)
    with pytest.raises(RoutingTimeout) as once:
        router.run(world.h, insert("never"), attempts=1)
    assert once.value.attempts == 1
    assert "never" not in world.documents(world.pair.home, world.h)

    def swallow(conn: psycopg.Connection[Any]) -> str:
        with contextlib.suppress(psycopg.Error):  # psycopg rolls the failed transaction back
            conn.execute(INSERT_DOCUMENT, ("swallowed",))
        return "done"

    with pytest.raises(RoutingError, match="caught a database error") as swallowed:
        router.run(world.h, swallow)
    assert not isinstance(swallowed.value, RoutingTimeout)
    # The same write goes through once the fence is lifted (no move: same placement).
    sql(world.pair.admin_home, "select tenancy.unfence_tenant(%s)", world.h)
    assert router.run(world.h, insert("after-unfence")) == world.home_port


def test_run_retries_a_deadlock(world: World) -> None:
    router = world.router()
    in_context(
        world.pair.service_home, world.h, "insert into app.projects (name) values ('a'), ('b')"
    )
    barrier = threading.Barrier(2, timeout=10)
    calls = {"ab": 0, "ba": 0}
    results: dict[str, object] = {}

    def work(first: str, second: str) -> None:
        def fn(conn: psycopg.Connection[Any]) -> int:
            calls[first + second] += 1
            conn.execute("update app.projects set name = name where name = %s", (first,))
            if calls[first + second] == 1:
                barrier.wait()
            conn.execute("update app.projects set name = name where name = %s", (second,))
            return calls[first + second]

        try:
            results[first + second] = router.run(world.h, fn)
        except Exception as exc:  # reported below
            results[first + second] = exc

    threads = [threading.Thread(target=work, args=pair_) for pair_ in (("a", "b"), ("b", "a"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(isinstance(v, int) for v in results.values()), results
    assert sorted(results.values()) == [1, 2]  # type: ignore[type-var]  # the victim ran twice
    assert router.stats.retries == 1


# -- pinned transactions and the live switch -------------------------------------------------


def test_a_transaction_open_at_the_fence_finishes_on_home_and_the_fence_waits_for_it(
    world: World,
) -> None:
    router = world.router()
    with router.transaction(world.h) as conn:
        row = conn.execute("select inet_server_port(), pg_backend_pid()").fetchone()
        assert row is not None and row[0] == world.home_port
        fence = world.fence_home(world.h, complete=False)
        pending = [p for (p,) in sql(world.pair.admin_home, FENCE_PENDING, fence.watched)]
        assert row[1] in pending  # the move waits for this transaction
        # Its context was set before the fence: it may still write, and it writes on home.
        written = conn.execute(INSERT_DOCUMENT, ("open-at-fence",)).fetchone()
        assert written == (world.home_port,)
    assert row[1] not in [p for (p,) in sql(world.pair.admin_home, FENCE_PENDING, fence.watched)]
    assert world.documents(world.pair.home, world.h)["open-at-fence"] < fence.at
    assert router.stats.fenced == 0
    # A transaction that begins after the fence reads on home and writes nothing there.
    with pytest.raises(PlacementFenced), router.transaction(world.h) as conn:
        assert where(conn)[0] == world.home_port
        conn.execute(INSERT_DOCUMENT, ("after-fence",))
    assert "after-fence" not in world.documents(world.pair.home, world.h)


def test_a_transaction_fenced_mid_way_fails_retryably_and_stays_on_home(world: World) -> None:
    router = world.router(ttl=60)
    router.placement(world.h)
    world.fence_home(world.h)  # the move has started; the directory still says home
    with pytest.raises(PlacementFenced) as info, router.transaction(world.h) as conn:
        assert where(conn) == (world.home_port, world.home_db, ["main", "only-on-home"])
        world.copy_to_dedicated(world.h, world.h_slug)
        world.flip(world.h)  # the move completes while the transaction is open
        conn.execute(INSERT_DOCUMENT, ("pinned",))
        pytest.fail("a fenced write was accepted")
    exc = info.value
    assert isinstance(exc, RetryableRouting)
    assert (exc.placement, exc.entry.epoch) == ("home", 0)
    assert (exc.recorded_placement, exc.recorded_epoch) == ("dedicated", 1)  # home's DETAIL
    assert isinstance(exc.__cause__, psycopg.Error) and exc.__cause__.sqlstate == "TN021"
    assert "pinned" not in world.documents(world.pair.home, world.h)
    assert "pinned" not in world.documents(world.pair.dedicated, world.h)
    reads = router.stats.directory_reads
    assert router.placement(world.h).placement == "dedicated"  # forgotten and read again
    assert router.stats.directory_reads == reads + 1


@dataclass
class Writer:
    committed: list[tuple[int, str, int]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def count(self, port: int) -> int:
        return sum(1 for c in self.committed if c[2] == port)


def check_switch(world: World, writer: Writer, fence: Fence, home_at_fence: int) -> None:
    assert not writer.errors, writer.errors
    home = world.documents(world.pair.home, world.h)
    dedicated = world.documents(world.pair.dedicated, world.h)
    believed = {marker for _, marker, _ in writer.committed}
    # Every write the writer believes committed exists on exactly one side, and nothing else.
    assert not (set(home) & set(dedicated))
    assert set(home) | set(dedicated) == believed
    for _, marker, port in writer.committed:
        assert marker in (home if port == world.home_port else dedicated)
    # No write landed on home after the fence; every write after it is on dedicated.
    assert len(home) == home_at_fence
    # A transaction that began before the fence committed may write on home (its context was
    # set unfenced); fenced_at is read inside the fence's transaction, a little before its
    # commit, so home's rows are compared with a time after the commit.
    assert max(home.values()) < fence.committed_by
    assert fence.at < min(dedicated.values())
    ports = [port for _, _, port in sorted(writer.committed)]
    switch = ports.index(world.dedicated_port)
    assert set(ports[:switch]) == {world.home_port}
    assert set(ports[switch:]) == {world.dedicated_port}


def test_a_live_switch_under_a_writer(world: World) -> None:
    router = world.router(ttl=60)
    writer = Writer()

    def write() -> None:
        i = 0
        while not writer.stop.is_set():
            i += 1
            marker = f"w-{i:06d}"
            try:
                port = router.run(world.h, insert(marker), attempts=50, wait=20)
            except BaseException as exc:  # the assertion reports it
                writer.errors.append(exc)
                return
            writer.committed.append((i, marker, port))

    thread = threading.Thread(target=write)
    thread.start()
    try:
        wait_for(lambda: writer.count(world.home_port) >= 20, what="writes on home")
        world.copy_to_dedicated(world.h, world.h_slug)
        fence = world.fence_home(world.h)
        home_at_fence = len(world.documents(world.pair.home, world.h))
        time.sleep(0.3)  # the writer meets the fence
        world.flip(world.h)
        wait_for(lambda: writer.count(world.dedicated_port) >= 20, what="writes on dedicated")
    finally:
        writer.stop.set()
        thread.join(30)
    check_switch(world, writer, fence, home_at_fence)
    assert router.stats.fenced >= 1
    assert router.stats.retries >= 1


# -- asynchronous ----------------------------------------------------------------------------


async def awhere(conn: psycopg.AsyncConnection[Any]) -> tuple[int, str, list[str]]:
    row = await (await conn.execute(WHERE)).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def ainsert(marker: str) -> Callable[[psycopg.AsyncConnection[Any]], Any]:
    async def fn(conn: psycopg.AsyncConnection[Any]) -> int:
        row = await (await conn.execute(INSERT_DOCUMENT, (marker,))).fetchone()
        assert row is not None, "no project 'main' here"
        port: int = row[0]
        return port

    return fn


async def test_async_routing_by_tenant_and_host_and_the_cache(world: World) -> None:
    async with world.arouter(ttl=60) as router:
        async with router.transaction(world.h) as conn:
            assert await awhere(conn) == (world.home_port, world.home_db, ["main", "only-on-home"])
        tenant = await router.tenant_for_host(f"{world.d_slug}.{BASE}")
        assert tenant == world.d
        async with router.transaction(tenant) as conn:
            assert (await awhere(conn))[0] == world.dedicated_port
        for _ in range(2):
            async with router.transaction(world.d) as conn:
                assert (await awhere(conn))[0] == world.dedicated_port
        assert (router.stats.directory_reads, router.stats.cache_hits) == (2, 2)
        with pytest.raises(UnknownTenant):
            async with router.transaction(uuid.uuid4()):
                pass


async def test_async_fenced_mid_way_then_run_on_the_new_placement(world: World) -> None:
    async with world.arouter(ttl=60) as router:
        await router.placement(world.h)
        await asyncio.to_thread(world.fence_home, world.h)
        with pytest.raises(PlacementFenced) as info:
            async with router.transaction(world.h) as conn:
                assert (await awhere(conn))[0] == world.home_port
                await asyncio.to_thread(world.copy_to_dedicated, world.h, world.h_slug)
                await asyncio.to_thread(world.flip, world.h)
                await conn.execute(INSERT_DOCUMENT, ("pinned",))
        assert info.value.placement == "home"
        assert await router.run(world.h, ainsert("retried")) == world.dedicated_port
        home = await asyncio.to_thread(world.documents, world.pair.home, world.h)
        dedicated = await asyncio.to_thread(world.documents, world.pair.dedicated, world.h)
        assert ("pinned" in home, "pinned" in dedicated, "retried" in dedicated) == (
            False,
            False,
            True,
        )


async def test_async_run_gives_up_while_fenced(world: World) -> None:
    async with world.arouter() as router:
        await asyncio.to_thread(world.fence_home, world.h)
        with pytest.raises(RoutingTimeout) as info:
            await router.run(world.h, ainsert("never"), wait=0.4)
        assert isinstance(info.value.__cause__, PlacementFenced)


async def test_async_live_switch_under_a_writer(world: World) -> None:
    writer = Writer()
    async with world.arouter(ttl=60) as router:

        async def write() -> None:
            i = 0
            while not writer.stop.is_set():
                i += 1
                marker = f"w-{i:06d}"
                try:
                    port = await router.run(world.h, ainsert(marker), attempts=50, wait=20)
                except BaseException as exc:  # the assertion reports it
                    writer.errors.append(exc)
                    return
                writer.committed.append((i, marker, port))

        async def until(check: Callable[[], bool], what: str) -> None:
            deadline = time.monotonic() + 20
            while not check():
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                await asyncio.sleep(0.01)

        task = asyncio.create_task(write())
        try:
            await until(lambda: writer.count(world.home_port) >= 20, "writes on home")
            await asyncio.to_thread(world.copy_to_dedicated, world.h, world.h_slug)
            fence = await asyncio.to_thread(world.fence_home, world.h)
            home_at_fence = len(await asyncio.to_thread(world.documents, world.pair.home, world.h))
            await asyncio.sleep(0.3)
            await asyncio.to_thread(world.flip, world.h)
            await until(lambda: writer.count(world.dedicated_port) >= 20, "writes on dedicated")
        finally:
            writer.stop.set()
            await asyncio.wait_for(task, 30)
        assert router.stats.fenced >= 1
        assert router.stats.retries >= 1
    check_switch(world, writer, fence, home_at_fence)
