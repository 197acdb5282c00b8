"""Usage metering under concurrency: a hard cap is exact with 32 clients, in every isolation level.

32 application sessions (each its own connection, an owner's or a member's context per
transaction, as an application runs) send 3,200 usage events of value 1 with enforcement to
one customer capped at 500: exactly 500 are recorded and 2,700 refused, the counter says 500,
the log holds those 500 events and no event id twice. Under REPEATABLE READ and SERIALIZABLE
the counter's row makes concurrent writers fail with 40001, which the client retries as an
application must; the retries are counted and the totals stay exact. The same again with an
idempotency key per attempt, each attempt raced by two sessions and re-sent after its
response is "lost": every re-send is a duplicate carrying the first outcome. Holds
(reserve_usage) raced the same way never hold more than the cap.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from conftest import Roles, Tenant, add_member, token_for
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pgtenancy import authenticated_transaction

CLIENTS = 32
ATTEMPTS = 3_200
CAP = 500
METER = "api_calls"
CUSTOMER = "cust-1"
TIMEOUT = 300.0
MAX_RETRIES = 1_000  # per call: a livelock fails the test instead of hanging it

READ_COMMITTED = psycopg.IsolationLevel.READ_COMMITTED
REPEATABLE_READ = psycopg.IsolationLevel.REPEATABLE_READ
SERIALIZABLE = psycopg.IsolationLevel.SERIALIZABLE

every_isolation_level = pytest.mark.parametrize(
    "isolation",
    [READ_COMMITTED, REPEATABLE_READ, SERIALIZABLE],
    ids=["read-committed", "repeatable-read", "serializable"],
)

TRACK = (
    "select outcome, event_id, used, cap, remaining, first_outcome"
    " from tenancy.track_usage(%s, %s, 1, p_idempotency_key => %s, p_enforce => true)"
)
RESERVE = "select reservation_id, allowed, used, reserved from tenancy.reserve_usage(%s, %s, 1)"
COMMIT_HOLD = "select outcome, event_id from tenancy.commit_reservation(%s)"
RELEASE_HOLD = "select tenancy.release_reservation(%s)"

Row = dict[str, Any]


@dataclass
class Capped:
    """A tenant with a sum meter and one customer on a tier capping it (hard)."""

    tenant: Tenant
    owner_token: str
    member_token: str
    customer: str = CUSTOMER
    meter: str = METER

    def tokens(self) -> list[str]:
        """An owner's and a member's context: clients alternate between them."""
        return [self.owner_token, self.member_token]


@contextmanager
def as_owner(roles: Roles, tenant: Tenant) -> Iterator[psycopg.Connection[Any]]:
    """One transaction of the application login in the tenant owner's context."""
    with (
        psycopg.connect(roles.app, row_factory=dict_row) as conn,
        authenticated_transaction(conn, token_for(tenant.id, tenant.owner, ttl=3600)),
    ):
        yield conn


def capped_customer(roles: Roles, tenant: Tenant, cap: int) -> Capped:
    """Meter api_calls and customer cust-1 on tier 'capped' (a hard cap of ``cap``)."""
    member = add_member(roles, tenant, "member")
    with as_owner(roles, tenant) as conn:
        conn.execute("select tenancy.create_meter(%s, 'API calls')", (METER,))
        conn.execute(
            "select tenancy.create_tier('capped', 10, %s, '{api_access}')", (Jsonb({METER: cap}),)
        )
        conn.execute("select tenancy.subscribe(%s, 'capped')", (CUSTOMER,))
    return Capped(
        tenant=tenant,
        owner_token=token_for(tenant.id, tenant.owner, ttl=3600),
        member_token=token_for(tenant.id, member, ttl=3600),
    )


@pytest.fixture
def capped(roles: Roles, make_tenant: Callable[[], Tenant]) -> Capped:
    return capped_customer(roles, make_tenant(), CAP)


def call(conn: psycopg.Connection[Any], token: str, query: str, params: Any) -> tuple[Row, int]:
    """``query`` in its own transaction under ``token``'s context, retried on 40001.

    Returns its one row and how many serialisation failures were retried. A retry sends the
    very same call again (the same idempotency key, if any), as an application does.
    """
    retries = 0
    while True:
        try:
            with authenticated_transaction(conn, token):
                row = conn.execute(query, params).fetchone()
            assert row is not None
            return row, retries
        except psycopg.errors.SerializationFailure:
            retries += 1
            if retries > MAX_RETRIES:
                raise


Work = Callable[[psycopg.Connection[Any], int], int]


def run_clients(conninfo: str, isolation: psycopg.IsolationLevel, work: list[Work]) -> int:
    """Run each ``work(conn, client)`` in a thread of its own, with its own connection at
    ``isolation``, all released together; returns the total of the retries they report."""
    barrier = threading.Barrier(len(work))

    def client(index: int) -> int:
        with psycopg.connect(conninfo, row_factory=dict_row) as conn:
            conn.isolation_level = isolation
            barrier.wait(TIMEOUT)
            return work[index](conn, index)

    with ThreadPoolExecutor(len(work)) as pool:
        futures = [pool.submit(client, i) for i in range(len(work))]
        return sum(f.result(timeout=TIMEOUT) for f in futures)


def counter(roles: Roles, setup: Capped) -> Row:
    """The customer's counter of the current period, read as a superuser."""
    with psycopg.connect(roles.superuser, row_factory=dict_row) as conn:
        rows = conn.execute(
            """
            select c.used, c.reserved, c.events
            from tenancy.usage_counters as c
            join tenancy.customers as cu on cu.tenant_id = c.tenant_id and cu.id = c.customer_id
            join tenancy.meters as m on m.tenant_id = c.tenant_id and m.id = c.meter_id
            where c.tenant_id = %s and cu.external_id = %s and m.key = %s
            """,
            (setup.tenant.id, setup.customer, setup.meter),
        ).fetchall()
    assert len(rows) == 1, rows  # one period
    return rows[0]


def logged_events(roles: Roles, setup: Capped) -> list[Row]:
    """The customer's rows in the usage log, read as a superuser."""
    with psycopg.connect(roles.superuser, row_factory=dict_row) as conn:
        return conn.execute(
            """
            select e.id, e.value, e.idempotency_key, e.reservation_id
            from tenancy.usage_events as e
            join tenancy.customers as cu on cu.tenant_id = e.tenant_id and cu.id = e.customer_id
            join tenancy.meters as m on m.tenant_id = e.tenant_id and m.id = e.meter_id
            where e.tenant_id = %s and cu.external_id = %s and m.key = %s
            """,
            (setup.tenant.id, setup.customer, setup.meter),
        ).fetchall()


def idempotency_keys(roles: Roles, setup: Capped) -> dict[str, Row]:
    with psycopg.connect(roles.superuser, row_factory=dict_row) as conn:
        rows = conn.execute(
            """
            select k.key, k.outcome, k.event_id
            from tenancy.usage_idempotency_keys as k
            join tenancy.customers as cu on cu.tenant_id = k.tenant_id and cu.id = k.customer_id
            where k.tenant_id = %s and cu.external_id = %s
            """,
            (setup.tenant.id, setup.customer),
        ).fetchall()
    return {r["key"]: r for r in rows}


def alerts(roles: Roles, setup: Capped) -> list[tuple[Any, Any]]:
    """(threshold, used when it was crossed) of the customer's alerts."""
    with psycopg.connect(roles.superuser) as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                "select threshold, used from tenancy.usage_alerts where tenant_id = %s"
                " order by threshold",
                (setup.tenant.id,),
            )
        ]


def enforcement(roles: Roles, setup: Capped) -> Row:
    """tenancy.check_usage_enforcement for one more unit, in a member's context."""
    with psycopg.connect(roles.app, row_factory=dict_row) as conn:
        row, _ = call(
            conn,
            setup.member_token,
            "select * from tenancy.check_usage_enforcement(%s, %s, 1)",
            (setup.customer, setup.meter),
        )
    return row


def assert_capped_exactly(roles: Roles, setup: Capped, recorded: list[Row]) -> None:
    """The 500 recorded events are the counter, the log and the alerts, and nothing else."""
    ids = [r["event_id"] for r in recorded]
    assert None not in ids
    assert len(set(ids)) == CAP, "an event id was returned twice"
    # each recorded event saw the counter after its own increment: 1, 2, ... 500, each once
    assert sorted(r["used"] for r in recorded) == list(range(1, CAP + 1))

    assert counter(roles, setup) == {"used": CAP, "reserved": 0, "events": CAP}
    log = logged_events(roles, setup)
    assert len(log) == CAP
    assert len({e["id"] for e in log}) == CAP, "an event id is in the log twice"
    assert {e["id"] for e in log} == set(ids), "the log and the recorded outcomes differ"
    assert all(e["value"] == 1 for e in log)
    # one alert per threshold crossed, written by the event that crossed it
    assert alerts(roles, setup) == [(Decimal("0.8"), CAP * 4 // 5), (Decimal(1), CAP)]
    check = enforcement(roles, setup)
    assert (check["allowed"], check["used"], check["cap"], check["remaining"]) == (
        False,
        CAP,
        CAP,
        0,
    )


# -- 32 clients, 3,200 attempts, a cap of 500 --------------------------------------------------


@every_isolation_level
def test_hard_cap_is_exact_under_32_concurrent_clients(
    roles: Roles, capped: Capped, isolation: psycopg.IsolationLevel
) -> None:
    per_client = ATTEMPTS // CLIENTS
    results: list[list[Row]] = [[] for _ in range(CLIENTS)]

    def work(conn: psycopg.Connection[Any], client: int) -> int:
        retries = 0
        for attempt in range(per_client):
            token = capped.tokens()[(client + attempt) % 2]
            row, tried = call(conn, token, TRACK, (capped.meter, capped.customer, None))
            results[client].append(row)
            retries += tried
        return retries

    started = time.monotonic()
    retries = run_clients(roles.app, isolation, [work] * CLIENTS)
    elapsed = time.monotonic() - started
    print(f"\n{isolation.name}: {ATTEMPTS} attempts, {retries} retries of 40001, {elapsed:.1f} s")

    rows = [r for client in results for r in client]
    assert len(rows) == ATTEMPTS
    outcomes = Counter(r["outcome"] for r in rows)
    assert outcomes == {"recorded": CAP, "refused": ATTEMPTS - CAP}
    refused = [r for r in rows if r["outcome"] == "refused"]
    assert all(r["event_id"] is None for r in refused)
    assert all((r["used"], r["cap"], r["remaining"]) == (CAP, CAP, 0) for r in refused)
    if isolation == READ_COMMITTED:
        assert retries == 0, "READ COMMITTED re-reads the counter's row: nothing to retry"
    assert_capped_exactly(roles, capped, [r for r in rows if r["outcome"] == "recorded"])


# -- the same with idempotency keys: raced, retried and re-sent after a lost response ----------


@every_isolation_level
def test_retries_with_idempotency_keys_count_once(
    roles: Roles, capped: Capped, isolation: psycopg.IsolationLevel
) -> None:
    """3,200 attempts, each with its own key, each sent twice. Clients c and c + 16 share a
    list of keys and go through it in the same order: the even ones both send (racing each
    other on the key), the odd ones one of them sends, commits and sends again, as if the
    response had been lost. Every key has one first outcome (recorded or refused); its other
    send is a duplicate carrying that outcome and that event id."""
    half = CLIENTS // 2
    per_pair = ATTEMPTS // half
    run = uuid.uuid4().hex[:8]
    keys = [[f"{run}-{pair}-{i}" for i in range(per_pair)] for pair in range(half)]
    sends: list[list[tuple[str, str, Row]]] = [[] for _ in range(CLIENTS)]

    def work(conn: psycopg.Connection[Any], client: int) -> int:
        retries = 0
        for i, key in enumerate(keys[client % half]):
            token = capped.tokens()[(client + i) % 2]
            if i % 2 == 0:
                kinds = ["race"]
            elif (i // 2) % 2 == client // half:
                kinds = ["send", "resend"]  # the first response is lost: the client sends again
            else:
                continue
            for kind in kinds:
                row, tried = call(conn, token, TRACK, (capped.meter, capped.customer, key))
                sends[client].append((key, kind, row))
                retries += tried
        return retries

    started = time.monotonic()
    retries = run_clients(roles.app, isolation, [work] * CLIENTS)
    elapsed = time.monotonic() - started
    total = sum(len(s) for s in sends)
    print(
        f"\n{isolation.name}: {total} sends of {ATTEMPTS} keys, {retries} retries, {elapsed:.1f} s"
    )
    assert total == 2 * ATTEMPTS

    by_key: dict[str, list[tuple[str, Row]]] = {}
    for client in sends:
        for key, kind, row in client:
            by_key.setdefault(key, []).append((kind, row))
    assert len(by_key) == ATTEMPTS
    first: dict[str, Row] = {}
    for key, replies in by_key.items():
        firsts = [row for _, row in replies if row["outcome"] != "duplicate"]
        assert len(replies) == 2 and len(firsts) == 1, (key, replies)
        first[key] = firsts[0]
        assert firsts[0]["outcome"] in {"recorded", "refused"}
        for kind, row in replies:
            if row is firsts[0]:
                continue
            assert row["outcome"] == "duplicate", (key, kind, row)
            assert row["first_outcome"] == firsts[0]["outcome"], (key, kind, row)
            assert row["event_id"] == firsts[0]["event_id"], (key, kind, row)
        # a re-send after the first send committed is always the duplicate
        assert all(row["outcome"] == "duplicate" for kind, row in replies if kind == "resend")

    outcomes = Counter(r["outcome"] for r in first.values())
    assert outcomes == {"recorded": CAP, "refused": ATTEMPTS - CAP}
    if isolation == READ_COMMITTED:
        assert retries == 0
    recorded = [r for r in first.values() if r["outcome"] == "recorded"]
    assert_capped_exactly(roles, capped, recorded)

    # the stored outcome of each key is its first outcome; the log carries the keys it recorded
    stored = idempotency_keys(roles, capped)
    assert set(stored) == set(first)
    for key, row in first.items():
        assert (stored[key]["outcome"], stored[key]["event_id"]) == (
            row["outcome"],
            row["event_id"],
        )
    log = logged_events(roles, capped)
    assert {e["idempotency_key"]: e["id"] for e in log} == {
        key: row["event_id"] for key, row in first.items() if row["outcome"] == "recorded"
    }


# -- holds ----------------------------------------------------------------------------------

HOLD_CAP = 100


@every_isolation_level
def test_concurrent_reservations_never_hold_more_than_the_cap(
    roles: Roles, make_tenant: Callable[[], Tenant], isolation: psycopg.IsolationLevel
) -> None:
    """Phase 1: 32 clients ask for 10 holds of 1 each against a cap of 100: exactly 100 are
    granted. Phase 2: 16 clients settle those holds (half committed as usage, half released)
    while 16 others grab quota (track_usage with enforcement, or reserve_usage) until, once
    every hold is settled, they are refused; a watcher reads the counter throughout. Used plus
    held never exceeds the cap, the grabs equal the releases, and the counter agrees with the
    holds and the log."""
    setup = capped_customer(roles, make_tenant(), HOLD_CAP)
    per_client = 10
    granted: list[list[Row]] = [[] for _ in range(CLIENTS)]

    def reserve(conn: psycopg.Connection[Any], client: int) -> int:
        retries = 0
        for attempt in range(per_client):
            token = setup.tokens()[(client + attempt) % 2]
            row, tried = call(conn, token, RESERVE, (setup.customer, setup.meter))
            retries += tried
            assert row["used"] + row["reserved"] <= HOLD_CAP, row
            if row["allowed"]:
                assert row["reservation_id"] is not None
                granted[client].append(row)
            else:
                assert row["reservation_id"] is None
        return retries

    retries = run_clients(roles.app, isolation, [reserve] * CLIENTS)
    holds = [r["reservation_id"] for client in granted for r in client]
    assert len(holds) == HOLD_CAP and len(set(holds)) == HOLD_CAP
    assert counter(roles, setup) == {"used": 0, "reserved": HOLD_CAP, "events": 0}
    assert held(roles, setup) == (HOLD_CAP, HOLD_CAP)
    check = enforcement(roles, setup)
    assert (check["allowed"], check["reserved"], check["remaining"]) == (False, HOLD_CAP, 0)
    with psycopg.connect(roles.app, row_factory=dict_row) as conn:
        row, _ = call(conn, setup.member_token, TRACK, (setup.meter, setup.customer, None))
    assert row["outcome"] == "refused"

    # phase 2
    settlers = CLIENTS // 2
    settled = threading.Event()
    settlers_left = [settlers]
    lock = threading.Lock()
    tally: Counter[str] = Counter()
    stop_watching = threading.Event()
    seen: list[Decimal] = []

    def settle(conn: psycopg.Connection[Any], client: int) -> int:
        tried_total = 0
        try:
            for i in range(client, len(holds), settlers):
                hold, token = holds[i], setup.tokens()[i % 2]
                if i % 2 == 0:
                    row, tried = call(conn, token, COMMIT_HOLD, (hold,))
                    assert row["outcome"] == "recorded", row
                    kind = "committed"
                else:
                    _, tried = call(conn, token, RELEASE_HOLD, (hold,))
                    kind = "released"
                tried_total += tried
                with lock:
                    tally[kind] += 1
        finally:
            with lock:
                settlers_left[0] -= 1
                if settlers_left[0] == 0:
                    settled.set()
        return tried_total

    def grab(conn: psycopg.Connection[Any], client: int) -> int:
        tried_total = 0
        for i in range(100_000):
            after_settling = settled.is_set()
            token = setup.tokens()[i % 2]
            if client % 2:
                row, tried = call(conn, token, TRACK, (setup.meter, setup.customer, None))
                kind, ok = "tracked", row["outcome"] == "recorded"
            else:
                row, tried = call(conn, token, RESERVE, (setup.customer, setup.meter))
                kind, ok = "reserved", row["allowed"]
            tried_total += tried
            if ok:
                with lock:
                    tally[kind] += 1
            elif after_settling:
                return tried_total  # nothing frees quota any more: it is all in use
        raise AssertionError("the grabs never ran out of quota")

    def watch() -> None:
        with psycopg.connect(roles.superuser, autocommit=True) as conn:
            while not stop_watching.is_set():
                row = conn.execute(
                    "select used + reserved from tenancy.usage_counters where tenant_id = %s",
                    (setup.tenant.id,),
                ).fetchone()
                assert row is not None
                seen.append(row[0])

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        retries += run_clients(roles.app, isolation, [settle] * settlers + [grab] * settlers)
    finally:
        stop_watching.set()
        watcher.join(TIMEOUT)
    print(f"\n{isolation.name}: {dict(tally)}, {retries} retries, {len(seen)} watches")

    assert seen and max(seen) <= HOLD_CAP, "used plus held exceeded the cap"
    assert tally["committed"] == tally["released"] == HOLD_CAP // 2
    assert tally["tracked"] + tally["reserved"] == tally["released"]
    used = tally["committed"] + tally["tracked"]
    assert counter(roles, setup) == {"used": used, "reserved": tally["reserved"], "events": used}
    assert held(roles, setup) == (tally["reserved"], tally["reserved"])
    log = logged_events(roles, setup)
    assert len(log) == used and sum(e["value"] for e in log) == used
    assert len([e for e in log if e["reservation_id"] is not None]) == tally["committed"]
    if isolation == READ_COMMITTED:
        assert retries == 0


def held(roles: Roles, setup: Capped) -> tuple[int, Any]:
    """(number, total amount) of the customer's live holds."""
    with psycopg.connect(roles.superuser) as conn:
        row = conn.execute(
            "select count(*), coalesce(sum(amount), 0) from tenancy.usage_reservations"
            " where tenant_id = %s and state = 'held'",
            (setup.tenant.id,),
        ).fetchone()
    assert row is not None
    return row[0], row[1]
