"""``pgtenancy relay`` under faults: every committed event delivered, none of a rolled-back one.

A writer thread commits connector events (to each tenant's signed webhook) and analytics events
(to PostHog), and rolls some transactions back, while relays run as ``pgtenancy relay``
subprocesses and something breaks: a relay killed with SIGKILL and another taking over, two
relays side by side, receivers failing then recovering, PostgreSQL restarted (a private cluster
of this test's own), and a transaction holding the xmin horizon for a whole run. Each test then
checks, against the database and what the receivers accepted: every committed event arrived,
none of a rolled-back transaction did, duplicates only carry the same id and body, and events
of one ordering key first arrived in event order. Duplicate rates and throughput are printed
(``pytest -s``).
"""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from receivers import PostHog, Reply, Webhooks
from relay_support import Outbox, RelayProcess, log_event, track_event, wait_until

from pgtenancy import tenant_transaction, testing
from pgtenancy.relay import Relay
from pgtenancy.testing import cluster


@pytest.fixture(scope="module")
def outbox_db(pgtenancy_make_database: Callable[[], str]) -> Outbox:
    return Outbox.create(pgtenancy_make_database(), "faults")


@pytest.fixture
def outbox(outbox_db: Outbox) -> Outbox:
    outbox_db.reset()
    return outbox_db


@pytest.fixture
def posthog() -> Iterator[PostHog]:
    server = PostHog()
    yield server
    server.close()


@pytest.fixture
def hooks() -> Iterator[Webhooks]:
    server = Webhooks()
    yield server
    server.close()


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[Callable[..., RelayProcess]]:
    """Starts ``pgtenancy relay`` subprocesses; any still running at the end is killed."""
    started: list[RelayProcess] = []

    def start(outbox: Outbox, *args: str, posthog: str | None = None) -> RelayProcess:
        log = tmp_path / f"relay-{len(started)}.log"
        process = RelayProcess(outbox.relay_args(*args, posthog=posthog), log)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.alive():
            process.kill()


def tenants_with_webhooks(outbox: Outbox, hooks: Webhooks, n: int) -> list[uuid.UUID]:
    tenants = []
    for i in range(n):
        tenant = outbox.tenant()
        _, secret = outbox.webhook(tenant, f"{hooks.url}/t{i}")
        hooks.secrets.append(secret)
        tenants.append(tenant)
    return tenants


class Rollback(Exception):
    """Raised inside a tenant transaction to roll it back."""


@dataclass
class Writer:
    """Commits transactions of 1 to 3 connector events (ordering keys k0..k3) and an analytics
    event each; every ``rollback_every``-th one is rolled back. Reconnects when the database
    goes away: a transaction cut short then is uncertain (committed or not), and only the
    database can tell."""

    url: str
    tenants: list[uuid.UUID]
    transactions: int
    pause: float = 0.01
    rollback_every: int = 5
    committed: set[uuid.UUID] = field(default_factory=set)
    rolled_back: set[uuid.UUID] = field(default_factory=set)
    uncertain: set[uuid.UUID] = field(default_factory=set)
    reconnects: int = 0

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.done = threading.Event()

    def start(self) -> Writer:
        self.thread.start()
        return self

    def join(self, timeout: float = 120) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the writer did not finish"

    def run(self) -> None:
        rng = random.Random(12)
        conn: psycopg.Connection[Any] | None = None
        try:
            for i in range(self.transactions):
                ids: list[uuid.UUID] = []
                try:
                    if conn is None:
                        conn = psycopg.connect(self.url)
                    with tenant_transaction(conn, self.tenants[i % len(self.tenants)]):
                        for _ in range(1 + i % 3):
                            key = f"k{rng.randrange(4)}"
                            ids.append(log_event(conn, {"key": key, "txn": i}, key))
                        ids.append(track_event(conn, "writer", f"user-{i % 7}", {"txn": i}))
                        if i % self.rollback_every == self.rollback_every - 1:
                            raise Rollback
                except Rollback:
                    self.rolled_back.update(ids)
                except psycopg.OperationalError:
                    self.uncertain.update(ids)
                    self.reconnects += 1
                    if conn is not None:
                        conn.close()
                    conn = None
                    time.sleep(0.2)
                else:
                    self.committed.update(ids)
                time.sleep(self.pause)
        finally:
            if conn is not None:
                conn.close()
            self.done.set()


@dataclass
class Delivered:
    distinct: int
    received: int

    @property
    def duplicates(self) -> int:
        return self.received - self.distinct

    @property
    def rate(self) -> float:
        return self.duplicates / self.distinct if self.distinct else 0.0


def check_at_least_once(
    outbox: Outbox, hooks: Webhooks, posthog: PostHog, writer: Writer
) -> tuple[Delivered, Delivered]:
    """Every committed event delivered exactly as stored, none rolled back; per-key order."""
    connector = {
        r["id"]: (str(r["tenant_id"]), r["ordering_key"])
        for r in outbox.rows("select id, tenant_id, ordering_key from tenancy.connector_events")
    }
    tracked = outbox.rows("select id, event from tenancy.analytics_events")
    analytics = {r["id"] for r in tracked}
    identify = {r["id"] for r in tracked if r["event"] == "$groupidentify"}
    stored = set(connector) | analytics
    assert writer.committed <= stored
    assert not writer.rolled_back & stored
    # Besides the tenants' $groupidentify, what is stored was written by the writer, and
    # committed unless the transaction was cut short (then only the database knew).
    assert stored - identify <= writer.committed | writer.uncertain
    undelivered = "select count(*) from tenancy.deliveries where delivered_at is null"
    assert outbox.value(undelivered) == 0  # none pending, none dead

    # Webhooks: each event once or more, always with the same id and body, never another's.
    bodies: dict[uuid.UUID, bytes] = {}
    first_arrivals: dict[tuple[str, str], list[uuid.UUID]] = {}
    accepted = hooks.accepted()
    for request in accepted:
        event = uuid.UUID(request.webhook_id)
        assert event in connector, f"delivered {event}, which no committed transaction wrote"
        assert request.json["tenant_id"] == connector[event][0]
        if event in bodies:
            assert request.body == bodies[event]
        else:
            bodies[event] = request.body
            first_arrivals.setdefault(connector[event], []).append(event)
    assert set(bodies) == set(connector)
    for key, ids in first_arrivals.items():
        assert ids == sorted(ids), f"events of {key} arrived out of order"
    # PostHog: the outbox id is the uuid, a re-send is the same event.
    sent: dict[str, dict[str, Any]] = {}
    batched = posthog.events()
    for item in batched:
        assert uuid.UUID(item["uuid"]) in analytics
        assert sent.setdefault(item["uuid"], item) == item
    assert {uuid.UUID(u) for u in sent} == analytics
    return Delivered(len(bodies), len(accepted)), Delivered(len(sent), len(batched))


def drained(outbox: Outbox, writer: Writer) -> Callable[[], bool]:
    return lambda: writer.done.is_set() and outbox.pending() == 0


def test_a_killed_relays_work_is_taken_over_within_its_lease(
    outbox: Outbox,
    hooks: Webhooks,
    posthog: PostHog,
    relays: Callable[..., RelayProcess],
) -> None:
    tenants = tenants_with_webhooks(outbox, hooks, 3)
    hooks.default = Reply(200, delay=0.005)
    first = relays(outbox, "--lease", "2", "--name", "first", posthog=posthog.url)
    writer = Writer(outbox.service, tenants, transactions=150).start()

    wait_until(lambda: len(hooks.accepted()) >= 40, 30, "the first relay's deliveries")
    # Requests in flight when the relay dies: the receivers take them, the relay never learns.
    hooks.default = posthog.default = Reply(200, delay=0.3)
    time.sleep(0.15)
    first.kill()
    killed_at = time.monotonic()
    hooks.default, posthog.default = Reply(200, delay=0.005), Reply(200)
    leased = outbox.value(
        "select count(*) from tenancy.deliveries where leased_by = 'first' and lease_until > now()"
    )
    second = relays(outbox, "--lease", "2", "--name", "second", posthog=posthog.url)
    writer.join()
    took = wait_until(drained(outbox, writer), 60, "every committed event delivered")
    assert second.terminate() == 0, second.output()

    webhooks, analytics = check_at_least_once(outbox, hooks, posthog, writer)
    print(
        f"\nkill -9: {len(writer.committed)} events committed, {len(writer.rolled_back)} rolled "
        f"back; {leased} deliveries leased by the killed relay; drained "
        f"{time.monotonic() - killed_at:.1f} s after the kill ({took:.1f} s after the writer); "
        f"webhook duplicates {webhooks.duplicates}/{webhooks.distinct} ({webhooks.rate:.1%}), "
        f"PostHog duplicates {analytics.duplicates}/{analytics.distinct} ({analytics.rate:.1%})"
    )


def test_two_relays_side_by_side_never_deliver_an_event_twice(
    outbox: Outbox,
    hooks: Webhooks,
    posthog: PostHog,
    relays: Callable[..., RelayProcess],
) -> None:
    tenants = tenants_with_webhooks(outbox, hooks, 4)
    hooks.default = Reply(200, delay=0.005)
    pair = [
        relays(outbox, "--lease", "60", "--name", name, posthog=posthog.url)
        for name in ("left", "right")
    ]
    writer = Writer(outbox.service, tenants, transactions=200, pause=0.005).start()
    writer.join()
    wait_until(drained(outbox, writer), 60, "every committed event delivered")
    outputs = []
    for relay in pair:
        assert relay.terminate() == 0, relay.output()
        outputs.append(relay.output().strip().splitlines()[-1])

    webhooks, analytics = check_at_least_once(outbox, hooks, posthog, writer)
    print(
        f"\ntwo relays: {webhooks.distinct} webhooks, {analytics.distinct} PostHog events, "
        f"no duplicate; {outputs}"
    )
    assert webhooks.duplicates == 0
    assert analytics.duplicates == 0


def test_a_receiver_that_fails_then_recovers_gets_everything(
    outbox: Outbox,
    hooks: Webhooks,
    posthog: PostHog,
    relays: Callable[..., RelayProcess],
) -> None:
    tenants = tenants_with_webhooks(outbox, hooks, 2)
    hooks.default = Reply(500, body=b"down")
    posthog.default = Reply(503, body=b"down")
    relay = relays(outbox, "--lease", "5", posthog=posthog.url)
    writer = Writer(outbox.service, tenants, transactions=60, pause=0.02).start()

    def failed(receiver: Webhooks | PostHog) -> int:
        return sum(1 for r in receiver.received() if r.status >= 500)

    wait_until(lambda: failed(hooks) >= 5 and failed(posthog) >= 1, 30, "failed deliveries")
    time.sleep(1.0)
    hooks.default = posthog.default = Reply(200)
    recovered_at = time.monotonic()
    writer.join()
    wait_until(drained(outbox, writer), 60, "every committed event delivered")
    assert relay.terminate() == 0, relay.output()

    retried = outbox.value(
        "select count(*) from tenancy.deliveries where attempts > 1 and last_status = 200"
    )
    webhooks, analytics = check_at_least_once(outbox, hooks, posthog, writer)
    print(
        f"\nreceivers down: {failed(hooks)} webhook and {failed(posthog)} PostHog answers 5xx, "
        f"{retried} deliveries retried, drained {time.monotonic() - recovered_at:.1f} s after "
        f"recovery; duplicates {webhooks.duplicates} webhooks, {analytics.duplicates} PostHog"
    )
    assert retried >= 5
    assert webhooks.duplicates == 0  # a 5xx is not an acceptance: nothing to send twice


# -- PostgreSQL restarted under a running relay ------------------------------------------------


@pytest.fixture
def private_cluster() -> Iterator[cluster.Cluster]:
    """A PostgreSQL cluster of this test's own, which it may restart."""
    root = Path(tempfile.mkdtemp(prefix="pgt-relay-"))
    server = cluster.Cluster(root)
    try:
        yield server.ensure()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def restart(server: cluster.Cluster) -> None:
    pg_ctl = str(cluster._bindir() / "pg_ctl")
    subprocess.run(
        server._cmd([pg_ctl, "-D", str(server.data), "-l", str(server.log), "-m", "fast"])
        + ["-w", "restart"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
        timeout=60,
    )


def test_a_postgres_restart_loses_nothing(
    private_cluster: cluster.Cluster,
    hooks: Webhooks,
    posthog: PostHog,
    relays: Callable[..., RelayProcess],
) -> None:
    url = testing.create_test_database(
        private_cluster.url(), testing.Template(sources=(), extensions=())
    )
    outbox = Outbox.create(url, "restart")
    tenants = tenants_with_webhooks(outbox, hooks, 2)
    relay = relays(outbox, "--lease", "2", posthog=posthog.url)
    writer = Writer(outbox.service, tenants, transactions=120, pause=0.02).start()

    wait_until(lambda: len(hooks.accepted()) >= 20, 30, "deliveries before the restart")
    restart(private_cluster)
    time.sleep(1.0)
    exited = None if relay.alive() else (relay.proc.returncode, relay.output().strip()[-300:])
    if exited:
        relay = relays(outbox, "--lease", "2", posthog=posthog.url)
    writer.join()
    wait_until(drained(outbox, writer), 60, "every committed event delivered")
    assert relay.terminate() == 0, relay.output()

    webhooks, analytics = check_at_least_once(outbox, hooks, posthog, writer)
    print(
        f"\nPostgreSQL restart: {len(writer.committed)} committed, {len(writer.uncertain)} "
        f"uncertain (cut by the restart), writer reconnects {writer.reconnects}; duplicates "
        f"{webhooks.duplicates}/{webhooks.distinct} webhooks, "
        f"{analytics.duplicates}/{analytics.distinct} PostHog; relay exited: {exited}"
    )
    assert exited is None, f"the relay exited when PostgreSQL restarted: {exited}"


# -- a transaction holding the xmin horizon ----------------------------------------------------


def flow(outbox: Outbox, posthog: PostHog, tenants: int, per_tenant: int) -> tuple[float, float]:
    """Enqueue ``tenants`` × ``per_tenant`` analytics events (transactions of 200), then drain
    them to PostHog with one relay: events per second of each."""
    ids = [outbox.tenant() for _ in range(tenants)]
    start = time.monotonic()
    with psycopg.connect(outbox.service) as conn:
        for tenant in ids:
            for chunk in range(0, per_tenant, 200):
                with tenant_transaction(conn, tenant), conn.cursor() as cur:
                    cur.executemany(
                        "select tenancy.track_event('load', %s, '{}')",
                        [(f"user-{n % 40}",) for n in range(chunk, chunk + 200)],
                    )
    enqueued = time.monotonic() - start
    # Both runs relay with statistics of the day's partitions, whatever autovacuum did so far:
    # what differs between them is the held xmin alone.
    outbox.rows("analyze tenancy.deliveries, tenancy.analytics_events")
    before = len(posthog.events())
    start = time.monotonic()
    asyncio.run(Relay(outbox.config(posthog.url)).run(once=True))
    relayed = time.monotonic() - start
    assert outbox.pending() == 0
    assert len(posthog.events()) - before == tenants * (per_tenant + 1)  # + $groupidentify
    return tenants * per_tenant / enqueued, tenants * per_tenant / relayed


def test_a_held_xmin_does_not_collapse_enqueue_or_relay(outbox: Outbox, posthog: PostHog) -> None:
    tenants, per_tenant = 10, 2000
    enqueue_free, relay_free = flow(outbox, posthog, tenants, per_tenant)
    outbox.rows("vacuum tenancy.deliveries, tenancy.analytics_events")

    with psycopg.connect(outbox.superuser) as held:
        held.execute("set transaction isolation level repeatable read")
        held.execute("select count(*) from tenancy.tenants")  # the snapshot: xmin held from here
        pid = held.info.backend_pid
        xmin_age = "select age(backend_xmin) from pg_stat_activity where pid = %s"
        assert outbox.value(xmin_age, (pid,)) is not None
        enqueue_held, relay_held = flow(outbox, posthog, tenants, per_tenant)
        age = outbox.value(xmin_age, (pid,))
        dead = outbox.value(
            "select sum(n_dead_tup) from pg_stat_user_tables where relname like 'deliveries%%'"
        )
        held.rollback()

    print(
        f"\n{tenants * per_tenant} events, enqueue / relay to PostHog, events per second: "
        f"{enqueue_free:,.0f} / {relay_free:,.0f} without a held xmin, "
        f"{enqueue_held:,.0f} / {relay_held:,.0f} with one held (xmin age {age} transactions, "
        f"{dead} dead delivery tuples it keeps)"
    )
    assert enqueue_held >= enqueue_free / 4
    assert relay_held >= relay_free / 4
