"""Outbox benchmark: enqueue cost in the application's transaction, relay throughput to a local
receiver, each against a baseline measured in the same run.

One fresh database (``pgtenancy_bench_outbox``, rebuilt on every run, dropped at the end): the
outbox's daily partitions made first (``tenancy.maintain_outbox()`` by the service login), then
1,000 tenants, each with an owner and one webhook endpoint (``tenancy.configure_webhook``,
filter ``bench.*``, a ``whsec_`` secret of its own) on a local receiver, and a plain table
``bench.business`` (no row level security, no trigger, not partitioned) for the baseline. The
receiver runs in a process of its own: an asyncio HTTP/1.1 server answering 200 to ``POST
/batch/`` (PostHog) and ``POST /hooks/<n>`` (tenant n's webhook); it counts events, duplicates and
per-key order violations, and checks one webhook signature in 20 with the ``standardwebhooks``
library. Measured, in this order:

1. **Enqueue**, as a ``tenancy_app`` login after ``tenancy.authenticate`` (a random tenant per
   transaction): transactions of N calls of ``tenancy.track_event`` (an analytics event: one row
   in ``analytics_events``, one in ``deliveries``) and of ``tenancy.log_connector_event`` (the
   tenant's one webhook matches: one row in ``connector_events``, one in ``deliveries``), each
   against the same transaction doing N plain ``INSERT``s of an equally sized row into
   ``bench.business`` (the application's own write). Two ways:

   * server side: one ``DO`` block per transaction loops N = 200 calls; µs per call by the
     client's clock around the ``DO`` statement and in backend CPU time (``/proc/<pid>/schedstat``);
   * client side: psycopg pipeline mode, ``BEGIN; authenticate; N statements; COMMIT`` in one
     round trip, N = 100 and N = 1, each paired with the same tenant's transaction without the
     statements (in turn first); µs per event = median of (with - without) / N. Every tenant's
     token is authenticated once first, so the verified-token cache holds them all.

   Kinds alternate within each round; medians of the rounds. Target: <= 15 µs per event.
   Then where the time goes (superuser, ``SET ROLE tenancy_owner`` as the functions run, inside
   one transaction rolled back at the end): backend CPU per call of each piece in a ``DO`` loop,
   net of the empty loop: ``context_user_slot()``, ``uuid_v7()``, an empty ``SECURITY DEFINER``
   function with ``SET search_path``, ``track_event`` without its ``INSERT``s (made from its
   definition in this database only), each ``INSERT`` into the partitioned tables with and
   without the statement trigger ``tenancy_require_context``, the same row into an unpartitioned
   copy, both rows in one statement, 100 events' rows in one statement, and the two enqueue
   functions with the outbox tables' triggers dropped or skipped by a ``WHEN`` clause.
2. **Relay** (``pgtenancy.relay.Relay(...).run(once=True)`` in this process, as a
   ``tenancy_service`` login, ``allow_private_network``, its defaults otherwise; the time of its
   claim, send and complete steps and the CPU time of the relay, its backend and the receiver are
   printed), after the ceilings without the database: the same requests from a bare asyncio
   client (the receiver's own) and through aiohttp configured as the relay configures it.
   (a) 100 analytics events per tenant (10 distinct ids each, enqueued by ``track_event`` in one
   transaction per tenant) to PostHog ``/batch/``, events/s (target >= 5,000); the same again
   with a REPEATABLE READ transaction holding its snapshot from before the events are enqueued
   until the relay is done (held xmin); (b) 20 connector events per tenant (4 ordering keys) to
   the tenants' webhooks, deliveries/s (target >= 1,000). Every event must reach the receiver
   exactly once and nothing stay pending; webhooks keep each key's order and verify.

``BENCH_OUTBOX_SCALE`` (``--scale``) scales the relay's event counts: 1 is 100,000 analytics and
20,000 webhook events; the default, 0.1, keeps ``make bench`` within a few minutes (at 1 the
relay as it is takes over 20: docs/benchmarks.md).

Usage: python bench/outbox.py [--scale 0.1] [--rounds 3] [--only enqueue|relay] [--keep]
Uses ``$DATABASE_URL``'s server, else the throwaway cluster; not part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import machine  # noqa: E402  (bench/run.py)

from pgtenancy import testing  # noqa: E402
from pgtenancy.migrate import migrate  # noqa: E402
from pgtenancy.relay import Relay, RelayConfig, sign  # noqa: E402
from pgtenancy.testing import as_login, cluster  # noqa: E402
from pgtenancy.testing.tokens import tenant_token  # noqa: E402

DB = "pgtenancy_bench_outbox"
APP_LOGIN = "bench_outbox_app"
SERVICE_LOGIN = "bench_outbox_service"
SECRET = "bench-outbox-secret-" + "0123456789abcdef" * 3
TENANTS = 1000
ANALYTICS_EVENTS = 100_000
WEBHOOK_EVENTS = 20_000
ANALYTICS_KEYS = 10  # distinct ids per tenant
WEBHOOK_KEYS = 4  # ordering keys per tenant
VERIFY_EVERY = 20  # the receiver checks one webhook signature in this many
NIL = "00000000-0000-0000-0000-000000000000"
POSTHOG_KEY = "phc_bench"
SETTINGS = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "shared_buffers",
    "wal_level",
)

# The application's own write: a plain table, no row level security, no trigger, no partitions,
# its rows the size of an outbox event's (kind, name, key, data standing for event, distinct id,
# ordering key, properties; or connector, action, ordering key, payload).
BUSINESS_SQL = """
create schema bench;
create table bench.tenants (
    n integer primary key,
    tenant_id uuid not null,
    user_id text not null
);
create table bench.business (
    tenant_id uuid not null,
    id uuid not null,
    occurred_at timestamptz not null,
    actor text,
    kind text not null,
    name text not null,
    key text not null,
    data jsonb not null,
    primary key (tenant_id, id)
);
-- The outbox tables' rows in ordinary tables with the same keys and indexes, for the profile.
create table bench.analytics_copy (like tenancy.analytics_events including all);
create table bench.deliveries_copy (like tenancy.deliveries including all);
-- The floor of a call to track_event: an empty function of the same kind.
create function bench.noop_definer(p_event text, p_distinct_id text, p_properties jsonb)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$ begin return null; end $$;
"""

ANALYTICS_PROPS = {"path": "/app/items", "plan": "pro", "region": "eu", "items": 12}
ANALYTICS_PROPS_SQL = "'" + json.dumps(ANALYTICS_PROPS) + "'::jsonb"
CONNECTOR_PAYLOAD_SQL = "jsonb_build_object('order', i, 'amount', 1999, 'currency', 'EUR')"


def say(text: str) -> None:
    print(text, flush=True)


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def secret_of(n: int) -> str:
    """Tenant n's webhook signing secret (32 bytes), known to the receiver too."""
    digest = hashlib.sha256(f"bench-outbox-{n}".encode()).digest()
    return "whsec_" + base64.b64encode(digest).decode()


def cpu_seconds(pid: int) -> float | None:
    """CPU time of a local backend (Linux), None when it cannot be read (a remote server)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


# -- the receiver (a process of its own) -------------------------------------------------------

UUID_RE = re.compile(rb'"uuid":"([0-9a-f-]{36})"')
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"status":1}'


@dataclass
class ReceiverStats:
    batch_requests: int = 0
    batch_events: int = 0
    batch_duplicates: int = 0
    hook_requests: int = 0
    hook_duplicates: int = 0
    order_violations: int = 0
    verified: int = 0
    verify_failures: int = 0
    verifier: str = ""
    seen: set[bytes] = field(default_factory=set)
    last_seq: dict[tuple[str, str], int] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not isinstance(v, set | dict)} | {
            "distinct": len(self.seen)
        }


class Receiver(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, bodies by Content-Length (what aiohttp and httpx send)."""

    def __init__(self, stats: ReceiverStats, verify: Callable[[int, bytes, dict[str, str]], bool]):
        self.stats = stats
        self.verify = verify
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            method, path, _ = lines[0].split(" ", 2)
            assert self.transport is not None
            self.transport.write(self.handle(method, path, headers, body))

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        s = self.stats
        if method == "GET" and path == "/stats":
            out = json.dumps(s.public()).encode()
            return (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(out)).encode()
                + b"\r\n\r\n"
                + out
            )
        if method == "POST" and path == "/reset":
            self.stats.__init__(verifier=s.verifier)  # type: ignore[misc]
            return OK
        if method == "POST" and path == "/batch/":
            s.batch_requests += 1
            for m in UUID_RE.finditer(body):
                s.batch_events += 1
                if m.group(1) in s.seen:
                    s.batch_duplicates += 1
                s.seen.add(m.group(1))
            return OK
        if method == "POST" and path.startswith("/hooks/"):
            s.hook_requests += 1
            msg_id = headers.get("webhook-id", "").encode()
            if msg_id in s.seen:
                s.hook_duplicates += 1
            s.seen.add(msg_id)
            data = json.loads(body)["data"]
            order = (path, str(data.get("key")))
            seq = int(data.get("seq", 0))
            if seq < s.last_seq.get(order, -1):
                s.order_violations += 1
            s.last_seq[order] = seq
            if s.hook_requests % VERIFY_EVERY == 1:
                if self.verify(int(path.rsplit("/", 1)[1]), body, headers):
                    s.verified += 1
                else:
                    s.verify_failures += 1
            return OK
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def serve(pipe: multiprocessing.connection.Connection) -> None:
    """The receiver's process: bind a free loopback port, send it up the pipe, serve forever."""
    stats = ReceiverStats()
    verifiers: dict[int, Any] = {}
    try:
        from standardwebhooks.webhooks import Webhook

        stats.verifier = "standardwebhooks"

        def verify(n: int, body: bytes, headers: dict[str, str]) -> bool:
            if n not in verifiers:
                verifiers[n] = Webhook(secret_of(n))
            try:
                verifiers[n].verify(body, headers)
            except Exception:
                return False
            return True
    except ImportError:  # the benchmark still runs; the report says nothing was verified

        def verify(n: int, body: bytes, headers: dict[str, str]) -> bool:
            return False

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Receiver(stats, verify), "127.0.0.1", 0, backlog=1024
        )
        pipe.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


class ReceiverProcess:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        self.process = ctx.Process(target=serve, args=(child,), daemon=True)
        self.process.start()
        self.port = parent.recv()
        self.base = f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.base + "/stats").json()  # type: ignore[no-any-return]

    def reset(self) -> None:
        httpx.post(self.base + "/reset").raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)


# -- the database ------------------------------------------------------------------------------


def prepare(receiver: ReceiverProcess) -> str:
    base = cluster.database_url()
    url = testing.with_dbname(base, DB)
    with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(DB)))
    started = time.perf_counter()
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for login, role in ((APP_LOGIN, "tenancy_app"), (SERVICE_LOGIN, "tenancy_service")):
            if not conn.execute("select 1 from pg_roles where rolname = %s", (login,)).fetchone():
                conn.execute(f"create role {login} login in role {role}")
        conn.execute("set role tenancy_admin")
        conn.execute("select tenancy.configure_jwt(%s)", (SECRET,))
        conn.execute("reset role")
    # Today's partitions (and three days ahead) before any event is written, made as the relay
    # makes them.
    with psycopg.connect(as_login(url, SERVICE_LOGIN), autocommit=True) as service:
        made = service.execute("select count(*) from tenancy.maintain_outbox()").fetchone()[0]  # type: ignore[index]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BUSINESS_SQL)
        conn.execute(
            "insert into tenancy.tenants (id, slug, name) "
            "select gen_random_uuid(), 'bench-' || n, 'Bench ' || n from generate_series(1, %s) n",
            (TENANTS,),
        )
        conn.execute(
            "insert into bench.tenants (n, tenant_id, user_id) "
            "select substr(slug, 7)::int, id, 'owner-' || substr(slug, 7) from tenancy.tenants "
            "where slug like 'bench-%%'"
        )
        conn.execute(
            "insert into tenancy.memberships (tenant_id, user_id, role) "
            "select tenant_id, user_id, 'owner' from bench.tenants"
        )
        # One webhook endpoint per tenant, configured by its owner, on the receiver.
        tenants = conn.execute("select n, tenant_id, user_id from bench.tenants order by n")
        with conn.transaction(), conn.cursor() as cur:
            for n, tenant, user in tenants.fetchall():
                cur.execute("select from tenancy.set_context(%s, %s)", (tenant, user))
                cur.execute(
                    "select from tenancy.configure_webhook('orders', %s, '{bench.*}', %s)",
                    (f"{receiver.base}/hooks/{n}", secret_of(n)),
                )
        conn.execute(f"grant usage on schema bench to {APP_LOGIN}")
        conn.execute(f"grant select on bench.tenants to {APP_LOGIN}")
        conn.execute(f"grant insert on bench.business to {APP_LOGIN}")
        conn.execute("grant usage on schema bench to tenancy_owner")
        conn.execute("grant insert on bench.analytics_copy, bench.deliveries_copy to tenancy_owner")
        # The tenants' $groupidentify events (written by the tenants' trigger) are not part of
        # what is measured.
        truncate_outbox(conn)
        row = conn.execute(
            "select (select count(*) from tenancy.connector_endpoints), "
            "(select count(*) from pg_inherits "
            " where inhparent = 'tenancy.deliveries'::regclass)"
        ).fetchone()
        assert row == (TENANTS, 5), row
    say(
        f"built {DB} in {time.perf_counter() - started:.0f} s: {TENANTS:,} tenants, each with a "
        f"webhook endpoint; {made} daily partitions made by tenancy.maintain_outbox()"
    )
    return url


def truncate_outbox(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "truncate tenancy.analytics_events, tenancy.connector_events, tenancy.deliveries, "
        "bench.business"
    )
    conn.execute(
        "vacuum (analyze) tenancy.analytics_events, tenancy.connector_events, "
        "tenancy.deliveries, bench.business"
    )


def in_default_partitions(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "select (select count(*) from tenancy.analytics_events_default) "
        "+ (select count(*) from tenancy.connector_events_default) "
        "+ (select count(*) from tenancy.deliveries_default)"
    ).fetchone()
    assert row is not None
    return int(row[0])


# -- 1. enqueue --------------------------------------------------------------------------------

KINDS = ("business, analytics-sized", "track_event", "business, connector-sized",
         "log_connector_event")  # fmt: skip

# The loop body of each kind in a DO block ({tenant} and {user}: the transaction's).
SERVER_BODY = {
    "business, analytics-sized": (
        "insert into bench.business (tenant_id, id, occurred_at, actor, kind, name, key, data) "
        "values ('{tenant}', gen_random_uuid(), now(), '{user}', 'page_view', 'user-' || (i % 10), "
        f"'user-' || (i % 10), {ANALYTICS_PROPS_SQL});"
    ),
    "track_event": (
        f"perform tenancy.track_event('page_view', 'user-' || (i % 10), {ANALYTICS_PROPS_SQL});"
    ),
    "business, connector-sized": (
        "insert into bench.business (tenant_id, id, occurred_at, actor, kind, name, key, data) "
        "values ('{tenant}', gen_random_uuid(), now(), '{user}', 'bench', 'order_paid', "
        f"'order-' || (i % 10), {CONNECTOR_PAYLOAD_SQL});"
    ),
    "log_connector_event": (
        "perform tenancy.log_connector_event('bench', 'order_paid', "
        f"{CONNECTOR_PAYLOAD_SQL}, 'order-' || (i % 10));"
    ),
}

BUSINESS_INSERT = (
    "insert into bench.business (tenant_id, id, occurred_at, actor, kind, name, key, data) "
    "values (%s, gen_random_uuid(), now(), %s, %s, %s, %s, %s)"
)


def client_statement(kind: str, tenant: str, user: str, i: int) -> tuple[str, tuple[Any, ...]]:
    if kind == "track_event":
        return (
            "select tenancy.track_event(%s, %s, %s)",
            ("page_view", f"user-{i % 10}", Jsonb(ANALYTICS_PROPS)),
        )
    if kind == "log_connector_event":
        return (
            "select tenancy.log_connector_event(%s, %s, %s, %s)",
            ("bench", "order_paid", Jsonb(connector_payload(i)), f"order-{i % 10}"),
        )
    if kind == "business, analytics-sized":
        return (
            BUSINESS_INSERT,
            (tenant, user, "page_view", f"user-{i % 10}", f"user-{i % 10}", Jsonb(ANALYTICS_PROPS)),
        )
    return (
        BUSINESS_INSERT,
        (tenant, user, "bench", "order_paid", f"order-{i % 10}", Jsonb(connector_payload(i))),
    )


def connector_payload(i: int) -> dict[str, Any]:
    return {"order": i, "amount": 1999, "currency": "EUR"}


@dataclass
class Who:
    tenant: str
    user: str
    token: str


def tenants_with_tokens(url: str) -> list[Who]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("select tenant_id, user_id from bench.tenants order by n").fetchall()
    return [Who(str(t), u, tenant_token(SECRET, t, u, ttl=7200)) for t, u in rows]


def server_side(
    conn: psycopg.Connection[Any], who: list[Who], rng: random.Random, kind: str, n: int,
    transactions: int,
) -> tuple[float, float | None]:  # fmt: skip
    """µs per call by the clock around the DO statements and in backend CPU."""
    clock = 0.0
    cpu: float | None = 0.0
    for _ in range(transactions):
        w = rng.choice(who)
        body = SERVER_BODY[kind].replace("{tenant}", w.tenant).replace("{user}", w.user)
        with conn.transaction():
            row = conn.execute(
                "select pg_backend_pid() from tenancy.authenticate(%s)", (w.token,)
            ).fetchone()
            assert row is not None
            c0 = cpu_seconds(row[0])
            t0 = time.perf_counter()
            conn.execute(f"do $$ begin for i in 1..{n} loop {body} end loop; end $$")
            clock += time.perf_counter() - t0
            c1 = cpu_seconds(row[0])
            cpu = None if cpu is None or c0 is None or c1 is None else cpu + c1 - c0
    calls = n * transactions
    return clock / calls * 1e6, None if cpu is None else cpu / calls * 1e6


def pipelined(conn: psycopg.Connection[Any], w: Who, kind: str, n: int) -> float:
    """Seconds of one transaction BEGIN; authenticate; n statements of kind; COMMIT, sent in
    pipeline mode (one round trip)."""
    stmts = [client_statement(kind, w.tenant, w.user, i) for i in range(n)]
    t0 = time.perf_counter()
    with conn.pipeline(), conn.transaction(), conn.cursor() as cur:
        cur.execute("select from tenancy.authenticate(%s)", (w.token,))
        if stmts:
            cur.executemany(stmts[0][0], [p for _, p in stmts])
    return time.perf_counter() - t0


def client_side(
    conn: psycopg.Connection[Any], who: list[Who], rng: random.Random, kind: str, n: int,
    transactions: int,
) -> float:  # fmt: skip
    """µs per statement: the median over pairs of transactions, each pair the same tenant's
    transaction with n statements and without any (in turn first), of (with - without) / n."""
    diffs = []
    for t in range(transactions):
        w = rng.choice(who)
        if t % 2:
            empty = pipelined(conn, w, "none", 0)
            diffs.append((pipelined(conn, w, kind, n) - empty) / n)
        else:
            full = pipelined(conn, w, kind, n)
            diffs.append((full - pipelined(conn, w, "none", 0)) / n)
    return statistics.median(diffs) * 1e6


@dataclass
class EnqueueResult:
    server_clock: dict[str, list[float]] = field(default_factory=dict)
    server_cpu: dict[str, list[float]] = field(default_factory=dict)
    client_many: dict[str, list[float]] = field(default_factory=dict)
    client_one: dict[str, list[float]] = field(default_factory=dict)


def enqueue(url: str, who: list[Who], rounds: int) -> EnqueueResult:
    rng = random.Random(12)
    res = EnqueueResult()
    server_n, server_t = 200, 5
    many_n, many_t, one_t = 100, 10, 200
    with psycopg.connect(as_login(url, APP_LOGIN)) as conn:
        conn.prepare_threshold = 0  # every statement prepared, as a pooled application's would be
        say(f"warm-up: every tenant's token authenticated once (load average {load()})")
        for w in who:  # the verified-token cache then holds every token
            pipelined(conn, w, "none", 0)
        for kind in KINDS:
            server_side(conn, who, rng, kind, server_n, 2)
            client_side(conn, who, rng, kind, many_n, 3)
        for r in range(rounds):
            for kind in KINDS:
                clock, cpu = server_side(conn, who, rng, kind, server_n, server_t)
                res.server_clock.setdefault(kind, []).append(clock)
                if cpu is not None:
                    res.server_cpu.setdefault(kind, []).append(cpu)
            for kind in KINDS:
                us = client_side(conn, who, rng, kind, many_n, many_t)
                res.client_many.setdefault(kind, []).append(us)
                us = client_side(conn, who, rng, kind, 1, one_t)
                res.client_one.setdefault(kind, []).append(us)
            say(
                f"enqueue round {r + 1}: server side µs per call "
                + ", ".join(f"{k} {res.server_clock[k][-1]:.1f}" for k in KINDS)
                + f" (load average {load()})"
            )
    return res


# Pieces of the enqueue path, each the body of a DO loop run as tenancy_owner (as the enqueue
# functions run) with the context set: (label, body, how the outbox tables' statement trigger
# tenancy_require_context is: "on" as generated, "off" dropped, "when" with a WHEN clause that
# skips it for tenancy_owner).
ANALYTICS_ROW = (
    "insert into tenancy.analytics_events (tenant_id, id, occurred_at, actor, event, "
    "distinct_id, ordering_key, properties) values ('{tenant}', gen_random_uuid(), now(), "
    f"'{{user}}', 'page_view', 'user-1', 'user-1', {ANALYTICS_PROPS_SQL});"
)
DELIVERY_ROW = (
    "insert into tenancy.deliveries (tenant_id, event_id, destination_id, source, "
    "occurred_at, ordering_key, next_attempt_at) values ('{tenant}', gen_random_uuid(), "
    f"'{NIL}', 'analytics', now(), 'user-1', now());"
)
BOTH_ROWS = (
    "with e as (insert into tenancy.analytics_events (tenant_id, id, occurred_at, actor, event, "
    "distinct_id, ordering_key, properties) values ('{tenant}', gen_random_uuid(), now(), "
    f"'{{user}}', 'page_view', 'user-1', 'user-1', {ANALYTICS_PROPS_SQL}) "
    "returning tenant_id, id, occurred_at, ordering_key) "
    "insert into tenancy.deliveries (tenant_id, event_id, destination_id, source, occurred_at, "
    f"ordering_key, next_attempt_at) select e.tenant_id, e.id, '{NIL}', 'analytics', "
    "e.occurred_at, e.ordering_key, now() from e;"
)
BATCH = 100
BATCH_ROWS = (
    "with e as (insert into tenancy.analytics_events (tenant_id, id, occurred_at, actor, event, "
    "distinct_id, ordering_key, properties) select '{tenant}', tenancy.uuid_v7(), now(), "
    f"'{{user}}', 'page_view', 'user-' || (g % 10), 'user-' || (g % 10), {ANALYTICS_PROPS_SQL} "
    f"from generate_series(1, {BATCH}) as g returning tenant_id, id, occurred_at, ordering_key) "
    "insert into tenancy.deliveries (tenant_id, event_id, destination_id, source, occurred_at, "
    f"ordering_key, next_attempt_at) select e.tenant_id, e.id, '{NIL}', 'analytics', "
    "e.occurred_at, e.ordering_key, now() from e;"
)
PIECES: list[tuple[str, str, str]] = [
    ("empty loop (subtracted from the others)", "null;", "on"),
    ("`tenancy.context_user_slot()`", "perform tenancy.context_user_slot();", "on"),
    ("`tenancy.uuid_v7()`", "perform tenancy.uuid_v7();", "on"),
    ("`gen_random_uuid()` (in each `INSERT` below)", "perform gen_random_uuid();", "on"),
    (
        "an empty `SECURITY DEFINER` function with `SET search_path`",
        f"perform bench.noop_definer('page_view', 'user-1', {ANALYTICS_PROPS_SQL});",
        "on",
    ),
    (
        "`track_event` without its two `INSERT`s (call, context, id, checks)",
        f"perform bench.track_event_checks('page_view', 'user-1', {ANALYTICS_PROPS_SQL});",
        "on",
    ),
    ("`INSERT` into `analytics_events` (partitioned; statement trigger)", ANALYTICS_ROW, "on"),
    ("the same without the statement trigger", ANALYTICS_ROW, "off"),
    (
        "the same row into an unpartitioned copy (same indexes, no RLS, no trigger)",
        ANALYTICS_ROW.replace("tenancy.analytics_events", "bench.analytics_copy"),
        "on",
    ),
    ("`INSERT` into `deliveries` (partitioned; statement trigger)", DELIVERY_ROW, "on"),
    ("the same without the statement trigger", DELIVERY_ROW, "off"),
    (
        "the same row into an unpartitioned copy (same indexes, no RLS, no trigger)",
        DELIVERY_ROW.replace("tenancy.deliveries", "bench.deliveries_copy"),
        "on",
    ),
    ("both rows in one statement (`WITH … INSERT … RETURNING`; triggers)", BOTH_ROWS, "on"),
    (
        f"{BATCH} events' rows in one such statement (`uuid_v7()` ids), per event",
        BATCH_ROWS,
        "on",
    ),
    ("`track_event`", SERVER_BODY["track_event"], "on"),
    ("`track_event` without the statement triggers", SERVER_BODY["track_event"], "off"),
    (
        "`track_event`, the triggers skipped by `WHEN (current_user <> 'tenancy_owner')`",
        SERVER_BODY["track_event"],
        "when",
    ),
    (
        "`tenancy.enqueue_connector_event` called directly (its two `INSERT`s, the endpoint match)",
        "perform tenancy.enqueue_connector_event('{tenant}', 'bench', 'order_paid', "
        f"{CONNECTOR_PAYLOAD_SQL}, 'order-1', '{{user}}');",
        "on",
    ),
    ("`log_connector_event`", SERVER_BODY["log_connector_event"], "on"),
    (
        "`log_connector_event` without the statement triggers",
        SERVER_BODY["log_connector_event"],
        "off",
    ),
    (
        "`log_connector_event`, the triggers skipped by the `WHEN` clause",
        SERVER_BODY["log_connector_event"],
        "when",
    ),
]

OUTBOX_TABLES = ("analytics_events", "connector_events", "deliveries")


def checks_variant(conn: psycopg.Connection[Any]) -> bool:
    """bench.track_event_checks: tenancy.track_event as installed, without its INSERTs (the
    benchmark's database only); False when its text is not what this expects."""
    row = conn.execute(
        "select pg_get_functiondef('tenancy.track_event(text, text, jsonb)'::regprocedure)"
    ).fetchone()
    assert row is not None
    text, n = re.subn(
        r"insert into tenancy\.\w+ \(.*?\);", "", row[0], flags=re.DOTALL | re.IGNORECASE
    )
    text = text.replace("FUNCTION tenancy.track_event(", "FUNCTION bench.track_event_checks(")
    if n != 2 or "bench.track_event_checks(" not in text:
        return False
    conn.execute(text)
    return True


def set_triggers(conn: psycopg.Connection[Any], mode: str) -> None:
    """The outbox tables' tenancy_require_context trigger: as generated, none, or skipped for
    tenancy_owner by a WHEN clause (inside the profile's transaction, rolled back)."""
    for t in OUTBOX_TABLES:
        conn.execute(f"drop trigger if exists tenancy_require_context on tenancy.{t}")
        if mode == "off":
            continue
        when = " when (current_user operator (pg_catalog.<>) 'tenancy_owner')"
        conn.execute(
            f"create trigger tenancy_require_context before insert or update or delete "
            f"on tenancy.{t} for each statement{when if mode == 'when' else ''} "
            "execute function tenancy.tg_require_context('tenant_id', 'uuid')"
        )


def profile(url: str, who: Who, rounds: int, n: int = 2000) -> dict[int, list[float]]:
    """Backend CPU µs per call of each piece (pieces alternating, one round more first to warm
    up), in one transaction rolled back at the end."""
    out: dict[int, list[float]] = {}
    with psycopg.connect(url) as conn:
        pid = conn.info.backend_pid
        with conn.transaction() as tx:
            have_checks = checks_variant(conn)
            conn.execute("select from tenancy.set_context(%s, %s)", (who.tenant, who.user))
            for r in range(rounds + 1):
                for i, (_, body, triggers) in enumerate(PIECES):
                    if "track_event_checks" in body and not have_checks:
                        continue
                    if triggers != "on":
                        set_triggers(conn, triggers)
                    conn.execute("set local role tenancy_owner")
                    text = body.replace("{tenant}", who.tenant).replace("{user}", who.user)
                    c0 = cpu_seconds(pid)
                    t0 = time.perf_counter()
                    conn.execute(f"do $$ begin for i in 1..{n} loop {text} end loop; end $$")
                    t1 = time.perf_counter()
                    c1 = cpu_seconds(pid)
                    conn.execute("reset role")
                    if triggers != "on":
                        set_triggers(conn, "on")
                    if r:
                        calls = n * (BATCH if body is BATCH_ROWS else 1)
                        us = (c1 - c0 if c0 is not None and c1 is not None else t1 - t0) / calls
                        us *= 1e6
                        out.setdefault(i, []).append(us)
            raise psycopg.Rollback(tx)
    return out


# -- 2. the relay ------------------------------------------------------------------------------

FILL_ANALYTICS = """
do $$
declare
    t record;
begin
    for t in select tenant_id, user_id from bench.tenants order by n loop
        perform tenancy.set_context(t.tenant_id, t.user_id);
        for i in 1..{per} loop
            perform tenancy.track_event(
                'page_view', 'user-' || (i % {keys}),
                jsonb_build_object('path', '/app/items/' || i, 'plan', 'pro', 'seq', i)
            );
        end loop;
        commit;
    end loop;
end $$
"""

FILL_CONNECTOR = """
do $$
declare
    t record;
begin
    for t in select tenant_id, user_id from bench.tenants order by n loop
        perform tenancy.set_context(t.tenant_id, t.user_id);
        for i in 1..{per} loop
            perform tenancy.log_connector_event(
                'bench', 'order_paid',
                jsonb_build_object('key', 'order-' || (i % {keys}), 'seq', i, 'amount', 1999),
                'order-' || (i % {keys})
            );
        end loop;
        commit;
    end loop;
end $$
"""


def fill(url: str, analytics: bool, per_tenant: int) -> float:
    """Enqueue per_tenant events for every tenant (one transaction per tenant, through
    track_event or log_connector_event in a DO loop); events per second."""
    text = (FILL_ANALYTICS if analytics else FILL_CONNECTOR).format(
        per=per_tenant, keys=ANALYTICS_KEYS if analytics else WEBHOOK_KEYS
    )
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute(text)
        seconds = time.perf_counter() - t0
        conn.execute(
            "vacuum (analyze) tenancy.deliveries, tenancy.analytics_events, "
            "tenancy.connector_events"
        )
        assert in_default_partitions(conn) == 0
    return per_tenant * TENANTS / seconds


def posthog_bodies(count: int, per_batch: int) -> list[bytes]:
    """PostHog /batch/ bodies shaped as the relay's (its posthog_event for each row)."""
    relay = Relay(RelayConfig(database_url="", posthog_host="x", posthog_key=POSTHOG_KEY))
    bodies = []
    now = datetime.now(UTC)
    for b in range(count):
        tenant = uuid.uuid4()
        events = [
            json.dumps(
                relay.posthog_event(
                    {
                        "tenant_id": tenant,
                        "event_id": uuid.uuid4(),
                        "occurred_at": now,
                        "payload": {
                            "event": "page_view",
                            "distinct_id": f"user-{i % ANALYTICS_KEYS}",
                            "properties": {"path": f"/app/items/{i}", "plan": "pro", "seq": i},
                            "actor": "owner-1",
                        },
                    }
                ),
                separators=(",", ":"),
            ).encode()
            for i in range(b * per_batch, (b + 1) * per_batch)
        ]
        bodies.append(
            b'{"api_key":' + json.dumps(POSTHOG_KEY).encode() + b',"batch":['
            + b",".join(events) + b"]}"
        )  # fmt: skip
    return bodies


async def raw_ceiling(
    port: int, requests: list[tuple[str, bytes, dict[str, str]]], connections: int
) -> float:
    """Requests per second the receiver itself serves: a bare asyncio client (no HTTP library)
    sending the given requests over ``connections`` keep-alive connections, one request in
    flight on each."""
    encoded = [
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        ).encode()
        + body
        for path, body, headers in requests
    ]
    queue = iter(encoded)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for request in queue:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(encoded) / (time.perf_counter() - t0)


async def posthog_ceiling(base: str, bodies: list[bytes], per_batch: int) -> float:
    """Events per second the receiver takes from aiohttp (the relay's client), one /batch/
    request at a time (as the relay sends them), without the database."""
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as client:
        async with client.post(base + "/batch/", data=bodies[0], headers=headers) as r:
            await r.read()
        t0 = time.perf_counter()
        for body in bodies:
            async with client.post(base + "/batch/", data=body, headers=headers) as r:
                await r.read()
                assert r.status == 200
        return len(bodies) * per_batch / (time.perf_counter() - t0)


def webhook_requests(count: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """Webhook requests shaped, signed and addressed as the relay's, to tenants in turn."""
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        n = i % TENANTS + 1
        body = json.dumps(
            {
                "type": "bench.order_paid",
                "timestamp": now.isoformat(),
                "tenant_id": str(uuid.uuid4()),
                "data": {"key": f"ceiling-{i}", "seq": i, "amount": 1999},
            },
            separators=(",", ":"),
        ).encode()
        msg_id = str(uuid.uuid4())
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign([secret_of(n)], msg_id, ts, body),
            "User-Agent": "pgtenancy-relay",
        }
        out.append((f"/hooks/{n}", body, headers))
    return out


async def webhook_ceiling(
    base: str, requests: list[tuple[str, bytes, dict[str, str]]], concurrency: int
) -> float:
    """Webhook requests per second aiohttp (the relay's client, configured as the relay does)
    gets through to the receiver, up to ``concurrency`` at once, without the database."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(
        client: aiohttp.ClientSession, path: str, body: bytes, headers: dict[str, str]
    ) -> None:
        async with (
            semaphore,
            client.post(base + path, data=body, headers=headers, allow_redirects=False) as r,
        ):
            await r.read()
            assert r.status == 200

    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as client:
        await asyncio.gather(*(one(client, *r) for r in requests[:concurrency]))
        t0 = time.perf_counter()
        await asyncio.gather(*(one(client, *r) for r in requests))
        return len(requests) / (time.perf_counter() - t0)


def process_cpu(pid: int) -> float | None:
    """User and system CPU seconds of a local process (Linux), None when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class TimedRelay(Relay):
    """The relay as shipped, with the time of each step added up (and its backend's pid)."""

    def __init__(self, config: RelayConfig) -> None:
        super().__init__(config)
        self.spent: dict[str, float] = {"claim": 0.0, "send": 0.0, "complete": 0.0}
        self.claims = 0
        self.backend_pid: int | None = None
        self.backend_cpu: list[float | None] = [None, None]  # at the first and the last claim

    async def claim(
        self, conn: psycopg.AsyncConnection[Any], analytics: bool
    ) -> list[dict[str, Any]]:
        if self.backend_pid is None:
            self.backend_pid = conn.info.backend_pid
            self.backend_cpu[0] = cpu_seconds(self.backend_pid)
        t0 = time.perf_counter()
        rows = await super().claim(conn, analytics)
        self.spent["claim"] += time.perf_counter() - t0
        self.claims += 1
        # The last claim finds nothing: the backend's CPU time then is its total.
        self.backend_cpu[1] = cpu_seconds(self.backend_pid)
        return rows

    async def complete(self, conn: psycopg.AsyncConnection[Any], outcomes: list[Any]) -> None:
        t0 = time.perf_counter()
        await super().complete(conn, outcomes)
        self.spent["complete"] += time.perf_counter() - t0

    async def send_posthog(self, client: aiohttp.ClientSession, rows: list[dict[str, Any]]) -> Any:
        t0 = time.perf_counter()
        out = await super().send_posthog(client, rows)
        self.spent["send"] += time.perf_counter() - t0
        return out

    async def send_connectors(
        self,
        conn: psycopg.AsyncConnection[Any],
        client: aiohttp.ClientSession,
        rows: list[dict[str, Any]],
    ) -> Any:
        t0 = time.perf_counter()
        out = await super().send_connectors(conn, client, rows)
        self.spent["send"] += time.perf_counter() - t0
        return out


@dataclass
class RelayRun:
    seconds: float
    delivered: int
    totals: dict[str, int]
    received: dict[str, Any]
    claims: int
    spent: dict[str, float]
    cpu: dict[str, float | None]

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds

    def steps(self) -> str:
        parts = [f"{k} {v:.1f} s" for k, v in self.spent.items()]
        cpu = [f"{k} {v:.1f} s" for k, v in self.cpu.items() if v is not None]
        return (
            f"{self.claims} claims; " + ", ".join(parts)
            + (f"; CPU: {', '.join(cpu)}" if cpu else "")
        )  # fmt: skip


def relay_once(url: str, receiver: ReceiverProcess, analytics: bool, expected: int) -> RelayRun:
    receiver.reset()
    config = RelayConfig(
        database_url=as_login(url, SERVICE_LOGIN),
        posthog_host=receiver.base if analytics else None,
        posthog_key=POSTHOG_KEY if analytics else None,
        allow_private_network=True,
        name=f"bench-{'analytics' if analytics else 'webhooks'}",
    )
    relay = TimedRelay(config)
    assert receiver.process.pid is not None
    rx0 = process_cpu(receiver.process.pid)
    me0 = time.process_time()
    t0 = time.perf_counter()
    totals = asyncio.run(relay.run(once=True))
    seconds = time.perf_counter() - t0
    me1 = time.process_time()
    rx1 = process_cpu(receiver.process.pid)
    received = receiver.stats()
    delivered = totals.get("delivered", 0)
    with psycopg.connect(url) as conn:
        pending = conn.execute(
            "select count(*) from tenancy.deliveries where delivered_at is null"
        ).fetchone()[0]  # type: ignore[index]
    assert delivered == expected and pending == 0, (totals, expected, pending)
    if analytics:
        assert received["batch_events"] - received["batch_duplicates"] == expected, received
    else:
        assert received["hook_requests"] - received["hook_duplicates"] == expected, received
        assert received["order_violations"] == 0 and received["verify_failures"] == 0, received
    cpu = {
        "relay process": me1 - me0,
        "its backend": None
        if relay.backend_cpu[0] is None or relay.backend_cpu[1] is None
        else relay.backend_cpu[1] - relay.backend_cpu[0],
        "receiver": None if rx0 is None or rx1 is None else rx1 - rx0,
    }
    return RelayRun(seconds, delivered, totals, received, relay.claims, relay.spent, cpu)


def xmin_age(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(
        "select max(age(backend_xmin)) from pg_stat_activity "
        "where datname = current_database() and pid <> pg_backend_pid()"
    ).fetchone()
    return f"the held snapshot's xmin {row[0]} transactions old at the end" if row else ""


def dead_tuples(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "select coalesce(sum(n_dead_tup), 0) from pg_stat_user_tables "
        "where relname like 'deliveries%%'"
    ).fetchone()
    return int(row[0]) if row else 0


@dataclass
class RelayReport:
    ceilings: dict[str, float]
    fills: dict[str, float]
    runs: dict[str, RelayRun]
    held: str
    held_dead: int


def relay(url: str, receiver: ReceiverProcess, scale: float) -> RelayReport:
    per_analytics = max(1, round(ANALYTICS_EVENTS * scale / TENANTS))
    per_webhook = max(1, round(WEBHOOK_EVENTS * scale / TENANTS))
    say(f"2. relay: ceilings without the database (load average {load()})")
    bodies = posthog_bodies(max(5, per_analytics // 2), 1000)
    batch = [("/batch/", body, {"Content-Type": "application/json"}) for body in bodies]
    ceilings = {
        "posthog receiver": asyncio.run(raw_ceiling(receiver.port, batch, 1)) * 1000,
        "posthog client": asyncio.run(posthog_ceiling(receiver.base, bodies, 1000)),
    }
    hooks = webhook_requests(max(1000, per_webhook * 250))
    ceilings["webhook receiver"] = asyncio.run(raw_ceiling(receiver.port, hooks, 64))
    ceilings["webhook client"] = asyncio.run(webhook_ceiling(receiver.base, hooks, 64))
    receiver.reset()
    say(
        f"   PostHog /batch/: the receiver {ceilings['posthog receiver']:,.0f} events/s, "
        f"through aiohttp {ceilings['posthog client']:,.0f}; webhooks: the receiver "
        f"{ceilings['webhook receiver']:,.0f} requests/s, through aiohttp "
        f"{ceilings['webhook client']:,.0f}"
    )
    fills: dict[str, float] = {}
    runs: dict[str, RelayRun] = {}

    fills["a"] = fill(url, True, per_analytics)
    runs["a"] = relay_once(url, receiver, True, per_analytics * TENANTS)
    say(
        f"   (a) {runs['a'].delivered:,} analytics events in {runs['a'].seconds:.1f} s: "
        f"{runs['a'].rate:,.0f} events/s (enqueued at {fills['a']:,.0f} events/s; "
        f"{runs['a'].steps()}; load average {load()})"
    )

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum tenancy.deliveries, tenancy.analytics_events")
    with psycopg.connect(url) as holder, psycopg.connect(url, autocommit=True) as watch:
        holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        holder.execute("select count(*) from tenancy.tenants")  # the snapshot is taken
        fills["held"] = fill(url, True, per_analytics)
        runs["held"] = relay_once(url, receiver, True, per_analytics * TENANTS)
        held = xmin_age(watch)
        held_dead = dead_tuples(watch)
        holder.rollback()
    say(
        f"   (a) held xmin: {runs['held'].delivered:,} in {runs['held'].seconds:.1f} s: "
        f"{runs['held'].rate:,.0f} events/s (enqueued at {fills['held']:,.0f} events/s; "
        f"{runs['held'].steps()}; {held}; load average {load()})"
    )

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum tenancy.deliveries, tenancy.analytics_events")
    fills["b"] = fill(url, False, per_webhook)
    runs["b"] = relay_once(url, receiver, False, per_webhook * TENANTS)
    say(
        f"   (b) {runs['b'].delivered:,} webhook deliveries in {runs['b'].seconds:.1f} s: "
        f"{runs['b'].rate:,.0f} deliveries/s (enqueued at {fills['b']:,.0f} events/s; "
        f"{runs['b'].steps()}; load average {load()})"
    )
    return RelayReport(ceilings, fills, runs, held, held_dead)


# -- the report --------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float], digits: int = 1) -> str:
    return " ".join(f"{v:.{digits}f}" for v in values)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def print_enqueue(enq: EnqueueResult, prof: dict[int, list[float]]) -> None:
    print()
    print("Enqueue, µs per event (median of rounds; rounds in parentheses)")
    print()
    print("| transaction of N calls | server side, clock | server side, CPU | "
          "client, pipeline, N = 100 | client, pipeline, N = 1 |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind in KINDS:
        cpu = enq.server_cpu.get(kind)
        print(
            f"| {kind} | {med(enq.server_clock[kind]):.1f} ({spread(enq.server_clock[kind])}) | "
            + (f"{med(cpu):.1f} ({spread(cpu)})" if cpu else "n/a")
            + f" | {med(enq.client_many[kind]):.1f} ({spread(enq.client_many[kind])}) | "
            f"{med(enq.client_one[kind]):.1f} ({spread(enq.client_one[kind])}) |"
        )
    print()
    print(
        "| enqueue ÷ business write | server side, clock | server side, CPU | client, N = 100 "
        "| client, N = 1 | target <= 15 µs per event (server side) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for kind, base in (
        ("track_event", "business, analytics-sized"),
        ("log_connector_event", "business, connector-sized"),
    ):
        ratios = []
        for table in (enq.server_clock, enq.server_cpu, enq.client_many, enq.client_one):
            if kind in table and base in table:
                ratios.append(f"{med(table[kind]) / med(table[base]):.2f}")
            else:
                ratios.append("n/a")
        us = med(enq.server_clock[kind])
        print(f"| {kind} | {' | '.join(ratios)} | {verdict(us <= 15)} ({us:.1f} µs) |")
    print()
    print("Where an event's time goes: backend CPU µs per call in a DO loop, net of the empty loop")
    print()
    print("| piece | µs per call | rounds |")
    print("| --- | ---: | --- |")
    floor = med(prof[0])
    for i, (label, body, _) in enumerate(PIECES):
        if i not in prof:
            print(f"| {label} | n/a | |")
            continue
        net = [v - floor for v in prof[i]] if i and body is not BATCH_ROWS else prof[i]
        print(f"| {label} | {med(net):.1f} | {spread(net)} |")


def print_relay(rep: RelayReport) -> None:
    a, held, b = rep.runs["a"], rep.runs["held"], rep.runs["b"]
    c = rep.ceilings
    print()
    print("Relay (ceilings: the same requests without the database, from a bare asyncio client")
    print("and through aiohttp; ratio: relay ÷ the receiver's ceiling)")
    print()
    print("| measure | receiver | aiohttp | relay | ratio | target | |")
    print("| --- | ---: | ---: | ---: | ---: | --- | --- |")
    for label, run, kind, target in (
        (f"(a) PostHog /batch/, {a.delivered:,} events of {TENANTS:,} tenants, events/s", a,
         "posthog", 5000),
        ("(a) the same, a REPEATABLE READ snapshot held throughout", held, "posthog", 5000),
        (f"(b) webhooks, {b.delivered:,} deliveries to {TENANTS:,} endpoints, deliveries/s", b,
         "webhook", 1000),
    ):  # fmt: skip
        print(
            f"| {label} | {c[kind + ' receiver']:,.0f} | {c[kind + ' client']:,.0f} | "
            f"{run.rate:,.0f} | {run.rate / c[kind + ' receiver']:.3f} | >= {target:,} | "
            f"{verdict(run.rate >= target)} |"
        )
    print()
    for name, run in (("(a)", a), ("(a) held xmin", held), ("(b)", b)):
        print(f"{name}: {run.seconds:.1f} s, {run.steps()}")
    print(
        f"(enqueued before each run, one transaction per tenant: (a) {rep.fills['a']:,.0f}, "
        f"held xmin {rep.fills['held']:,.0f}, (b) {rep.fills['b']:,.0f} events/s. Held: "
        f"{rep.held}; {rep.held_dead:,} dead tuples in deliveries at the end. Receiver: (a) "
        f"{a.received['batch_requests']} requests, {a.received['batch_duplicates']} duplicates; "
        f"(b) {b.received['hook_duplicates']} duplicates, {b.received['order_violations']} "
        f"per-key order violations, {b.received['verified']} signatures verified with "
        f"{b.received['verifier'] or 'nothing (standardwebhooks not installed)'}, "
        f"{b.received['verify_failures']} failed)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument(
        "--scale",
        type=float,
        default=float(os.environ.get("BENCH_OUTBOX_SCALE", "0.1")),
        help="multiplies the relay's event counts, 100,000 analytics and 20,000 webhook events "
        "(default 0.1, $BENCH_OUTBOX_SCALE)",
    )
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the enqueue measurements")
    ap.add_argument("--keep", action="store_true", help=f"keep database {DB} afterwards")
    ap.add_argument(
        "--only", choices=("enqueue", "relay"), help="run one of the two measurements only"
    )
    args = ap.parse_args()

    started = time.perf_counter()
    receiver = ReceiverProcess()
    try:
        url = prepare(receiver)
        with psycopg.connect(url) as conn:
            settings = {s: conn.execute(f"show {s}").fetchone()[0] for s in SETTINGS}  # type: ignore[index]
        say(f"machine: {machine()}; load average {load()}")
        say("server: " + ", ".join(f"{k} = {v}" for k, v in settings.items()))
        if args.only != "relay":
            say(f"1. enqueue: {args.rounds} rounds, kinds alternating")
            enq = enqueue(url, tenants_with_tokens(url), args.rounds)
            say("   where the time goes (backend CPU, SET ROLE tenancy_owner, rolled back)")
            prof = profile(url, tenants_with_tokens(url)[0], args.rounds)
            with psycopg.connect(url, autocommit=True) as conn:
                assert in_default_partitions(conn) == 0
                truncate_outbox(conn)
        if args.only != "enqueue":
            rep = relay(url, receiver, args.scale)
    finally:
        receiver.stop()

    if args.only != "relay":
        print_enqueue(enq, prof)
    if args.only != "enqueue":
        print_relay(rep)
    print()
    print(f"({time.perf_counter() - started:.0f} s in all; load average {load()})")

    if not args.keep:
        base = cluster.database_url()
        with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(DB)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
