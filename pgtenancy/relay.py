"""``pgtenancy relay``: deliver the outbox to PostHog, Slack and signed webhooks, at least once.

The database decides what is due: :sql:`tenancy.relay_claim` leases a batch (FOR UPDATE SKIP
LOCKED, round-robin across tenants, only the head of each ordering key) for a few seconds, the
relay sends it, and :sql:`tenancy.relay_complete` records each outcome. Every call is its own
short transaction (autocommit): the relay never holds a snapshot while it waits on the network,
and a relay that dies leaves leases that simply run out. An event is acknowledged only after a
2xx; a crash between the send and the acknowledgement sends it again with the same id (PostHog's
``uuid``, the ``webhook-id``), which the receivers use to drop the copy.

Connect as a login in ``tenancy_service``. PostHog is the platform's project (``--posthog-host``,
``--posthog-key``); Slack endpoints and webhooks are each tenant's, configured in SQL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads

log = logging.getLogger("pgtenancy.relay")

NIL = uuid.UUID(int=0)
#: PostHog's documented limits: a /batch/ request of at most 20 MB, an event of at most 1 MB.
POSTHOG_MAX_REQUEST_BYTES = 20 * 1024 * 1024
POSTHOG_MAX_EVENT_BYTES = 1024 * 1024
#: Events older than this go in batches marked historical_migration (PostHog's threshold).
POSTHOG_HISTORICAL_AFTER = timedelta(hours=48)
#: How much of a receiver's answer the relay reads (its status, headers and the start of its
#: body, for the error it records): a receiver cannot make it read more.
MAX_ANSWER_BYTES = 64 * 1024


@dataclass
class RelayConfig:
    """How a relay runs; every field has a command-line option."""

    database_url: str
    posthog_host: str | None = None
    posthog_key: str | None = None
    name: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )
    lease_seconds: int = 30
    analytics_batch: int = 1000
    analytics_per_tenant: int = 200
    connector_batch: int = 500
    connector_per_tenant: int = 20
    analytics_per_key: int = 50
    connector_per_key: int = 10
    posthog_max_bytes: int = 5 * 1024 * 1024
    timeout: float = 10.0
    concurrency: int = 64
    max_attempts: int = 12
    slack_per_second: float = 1.0
    allow_private_network: bool = False
    idle_sleep: float = 0.5
    maintain_every: float = 60.0


@dataclass
class Outcome:
    """What happened to one leased delivery (the arguments of tenancy.relay_complete)."""

    row: dict[str, Any]
    outcome: str
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None


@dataclass
class BatchReport:
    claimed: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcomes: Iterable[Outcome]) -> None:
        for o in outcomes:
            self.counts[o.outcome] = self.counts.get(o.outcome, 0) + 1


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not str.isdigit alone: it takes '²'
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks ``webhook-signature`` header: ``v1,<base64 HMAC-SHA256>`` per secret.

    Each ``whsec_`` secret is the base64 of the key; the signed content is
    ``{msg_id}.{timestamp}.{body}``. During a rotation two secrets are valid and the header holds
    both signatures, space-separated: a receiver that knows either accepts the message.
    """
    signed = f"{msg_id}.{timestamp}.".encode() + body
    parts = []
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        parts.append("v1," + base64.b64encode(digest).decode())
    return " ".join(parts)


def classify(status: int) -> str:
    """The outcome of an HTTP status: delivered (2xx), gone (410), else retry."""
    if 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"
    return "retry"


class TokenBucket:
    """At most ``rate`` sends per second, one at a time; a 429 pauses it for Retry-After."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    def wait_time(self) -> float:
        return max(0.0, self.next_at - time.monotonic())

    async def acquire(self) -> None:
        async with self.lock:
            delay = self.wait_time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.next_at = time.monotonic() + self.interval

    def pause(self, seconds: float) -> None:
        self.next_at = max(self.next_at, time.monotonic() + seconds)


class Undecodable:
    """A json or jsonb value that Python's json module cannot read (nested deeper than the
    recursion limit, an integer of more than 4,300 digits): its delivery is dead-lettered
    instead of the whole claim failing, again and again once its lease runs out."""

    def __init__(self, error: str) -> None:
        self.error = error


def _loads(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        return Undecodable(f"{type(exc).__name__}: {exc}"[:200])


@dataclass
class Answer:
    """A receiver's answer: its status, its headers and at most MAX_ANSWER_BYTES of its body,
    as UTF-8 (whatever charset it claims: a charset such as zlib cannot decode text)."""

    status_code: int
    headers: Mapping[str, str]
    text: str


class SendError(Exception):
    """A request that got no answer: a URL the client refuses, a connection or TLS failure,
    a timeout."""


async def post(
    client: aiohttp.ClientSession,
    url: str,
    timeout: float,
    body: bytes,
    headers: Mapping[str, str],
) -> Answer:
    """POST and read the answer within ``timeout`` seconds in all, at most MAX_ANSWER_BYTES of
    its body, undecompressed: a receiver can neither hold the relay (a body trickled a byte at a
    time) nor fill its memory (a body of gigabytes, or a small one that inflates). Redirects are
    not followed. Raises SendError."""

    async def exchange() -> Answer:
        async with client.post(url, data=body, headers=headers, allow_redirects=False) as response:
            raw = bytearray()
            async for chunk in response.content.iter_chunked(MAX_ANSWER_BYTES):
                raw += chunk
                if len(raw) >= MAX_ANSWER_BYTES:
                    break
            text = bytes(raw[:MAX_ANSWER_BYTES]).decode("utf-8", "replace")
            return Answer(response.status, response.headers, text)

    try:
        return await asyncio.wait_for(exchange(), timeout)
    except TimeoutError as exc:
        raise SendError(f"TimeoutError: no complete answer within {timeout} s") from exc
    except (aiohttp.ClientError, ValueError, OSError, UnicodeError) as exc:
        # ValueError: a URL the client cannot parse (a port past 65535, an odd IPv4 form).
        raise SendError(f"{type(exc).__name__}: {exc}") from exc


def _address_allowed(host: str, allow_private: bool) -> bool:
    """Whether every address of ``host`` is public (loopback and private networks only when
    allowed): a tenant's webhook URL must not reach into the platform's own network."""
    if allow_private:
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except ValueError:
        return False  # not a name a resolver takes (an empty or a 64-character label)
    except OSError:
        return True  # unresolvable: the send fails and is retried like any network error
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            return False
    return True


class Relay:
    """One relay process: claim, send, record, until stopped (or drained with ``once``)."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.stopping = asyncio.Event()
        self.buckets: dict[uuid.UUID, TokenBucket] = {}
        self.endpoints: dict[uuid.UUID, tuple[float, dict[str, Any] | None]] = {}
        self.after_tenant: dict[bool, uuid.UUID | None] = {True: None, False: None}
        self.last_maintain = 0.0
        self.totals: dict[str, int] = {}
        self.failures = 0
        self.unrecorded: list[Outcome] = []

    # -- the database ------------------------------------------------------------------------

    async def claim(
        self, conn: psycopg.AsyncConnection[Any], analytics: bool
    ) -> list[dict[str, Any]]:
        c = self.config
        limit, per_tenant, per_key = (
            (c.analytics_batch, c.analytics_per_tenant, c.analytics_per_key)
            if analytics
            else (c.connector_batch, c.connector_per_tenant, c.connector_per_key)
        )
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "select * from tenancy.relay_claim(%s, %s, %s, %s, %s, %s, %s)",
                (
                    c.name,
                    analytics,
                    limit,
                    per_tenant,
                    c.lease_seconds,
                    self.after_tenant[analytics],
                    per_key,
                ),
            )
            rows = await cur.fetchall()
        # Each key's events in event order, whatever order the claim returned them in.
        rows.sort(
            key=lambda r: (r["tenant_id"], r["destination_id"], r["ordering_key"], r["event_id"])
        )
        if rows:
            # Round-robin: the next claim starts after the last tenant this one reached.
            self.after_tenant[analytics] = max(r["tenant_id"] for r in rows)
        else:
            self.after_tenant[analytics] = None
        return rows

    async def complete(self, conn: psycopg.AsyncConnection[Any], outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        cols: list[list[Any]] = [[] for _ in range(8)]
        for o in outcomes:
            r = o.row
            for i, value in enumerate(
                (
                    r["tenant_id"],
                    r["event_id"],
                    r["destination_id"],
                    r["occurred_at"],
                    o.outcome,
                    o.status,
                    o.error,
                    o.retry_after,
                )
            ):
                cols[i].append(value)
        await conn.execute(
            "select tenancy.relay_complete(%s, %s::uuid[], %s::uuid[], %s::uuid[], "
            "%s::timestamptz[], %s::text[], %s::integer[], %s::text[], %s::numeric[], %s)",
            (self.config.name, *cols, self.config.max_attempts),
        )

    async def maintain(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            async with conn.cursor() as cur:
                await cur.execute("select action, partition_name from tenancy.maintain_outbox()")
                for action, name in await cur.fetchall():
                    log.info("relay %s: partition %s %s", self.config.name, name, action)
        except psycopg.Error as exc:
            log.warning("relay %s: maintain_outbox failed: %s", self.config.name, exc)
        self.last_maintain = time.monotonic()

    async def endpoint_rows(
        self, conn: psycopg.AsyncConnection[Any], ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, Any] | None]:
        """Endpoint URLs and secrets, re-read at most every 5 seconds (rotations, disables)."""
        now = time.monotonic()
        wanted = set(ids)
        stale = [i for i in wanted if i not in self.endpoints or now - self.endpoints[i][0] > 5]
        if stale:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute("select * from tenancy.relay_endpoints(%s::uuid[])", (stale,))
                found = {r["endpoint_id"]: r for r in await cur.fetchall()}
            for i in stale:
                self.endpoints[i] = (now, found.get(i))
        return {i: self.endpoints[i][1] for i in wanted}

    # -- sending -----------------------------------------------------------------------------

    def posthog_event(self, row: dict[str, Any]) -> dict[str, Any]:
        p = row["payload"]
        properties = dict(p.get("properties") or {})
        if p["event"] != "$groupidentify":
            # The tenant is the event's group, whatever the application put there.
            for key in [k for k in properties if k.startswith("$group")]:
                del properties[key]
            properties["$groups"] = {"tenant": str(row["tenant_id"])}
        properties.setdefault("$lib", "pgtenancy-relay")
        return {
            "event": p["event"],
            "distinct_id": p["distinct_id"],
            "properties": properties,
            "uuid": str(row["event_id"]),
            "timestamp": row["occurred_at"].isoformat(),
        }

    async def send_posthog(
        self, client: aiohttp.ClientSession, rows: list[dict[str, Any]]
    ) -> list[Outcome]:
        c = self.config
        if not c.posthog_host or not c.posthog_key:
            return [
                Outcome(r, "defer", error="no PostHog project configured", retry_after=60)
                for r in rows
            ]
        limit = min(c.posthog_max_bytes, POSTHOG_MAX_REQUEST_BYTES)
        cutoff = datetime.now(UTC) - POSTHOG_HISTORICAL_AFTER
        outcomes: list[Outcome] = []
        batches: list[tuple[bool, list[tuple[dict[str, Any], bytes]]]] = []
        current: dict[bool, list[tuple[dict[str, Any], bytes]]] = {True: [], False: []}
        size: dict[bool, int] = {True: 0, False: 0}
        for row in rows:
            try:
                encoded = json.dumps(self.posthog_event(row), separators=(",", ":")).encode()
            except (ValueError, RecursionError) as exc:
                outcomes.append(Outcome(row, "dead", error=f"cannot encode the event: {exc}"[:500]))
                continue
            if len(encoded) > POSTHOG_MAX_EVENT_BYTES:
                outcomes.append(
                    Outcome(
                        row,
                        "dead",
                        error=f"event of {len(encoded)} bytes: PostHog takes at most 1 MB",
                    )
                )
                continue
            historical = row["occurred_at"] < cutoff
            if current[historical] and size[historical] + len(encoded) + 200 > limit:
                batches.append((historical, current[historical]))
                current[historical], size[historical] = [], 0
            current[historical].append((row, encoded))
            size[historical] += len(encoded) + 1
        batches.extend((h, b) for h, b in current.items() if b)
        url = c.posthog_host.rstrip("/") + "/batch/"
        for historical, batch in batches:
            body = (
                b'{"api_key":'
                + json.dumps(c.posthog_key).encode()
                + (b',"historical_migration":true' if historical else b"")
                + b',"batch":['
                + b",".join(e for _, e in batch)
                + b"]}"
            )
            batch_rows = [r for r, _ in batch]
            try:
                response = await post(
                    client, url, c.timeout, body, {"Content-Type": "application/json"}
                )
            except SendError as exc:
                outcomes.extend(
                    Outcome(r, "retry", error=f"PostHog: {type(exc).__name__}: {exc}"[:500])
                    for r in batch_rows
                )
                continue
            kind = classify(response.status_code)
            if kind == "gone":
                kind = "retry"  # the platform's project is not a tenant's endpoint to disable
            outcomes.extend(
                Outcome(
                    r,
                    kind,
                    status=response.status_code,
                    error=None
                    if kind == "delivered"
                    else f"PostHog answered {response.status_code}: {response.text[:200]}",
                    retry_after=retry_after_seconds(response.headers.get("retry-after"))
                    if kind == "retry"
                    else None,
                )
                for r in batch_rows
            )
        return outcomes

    async def send_connectors(
        self,
        conn: psycopg.AsyncConnection[Any],
        client: aiohttp.ClientSession,
        rows: list[dict[str, Any]],
    ) -> list[Outcome]:
        endpoints = await self.endpoint_rows(conn, {r["destination_id"] for r in rows})
        semaphore = asyncio.Semaphore(self.config.concurrency)
        # One sequence per endpoint and ordering key, sent in event order; sequences run side by
        # side (up to --concurrency requests at once).
        sequences: dict[tuple[uuid.UUID, str], list[dict[str, Any]]] = {}
        for r in sorted(rows, key=lambda r: r["event_id"]):
            sequences.setdefault((r["destination_id"], r["ordering_key"]), []).append(r)
        allowed_hosts: dict[str, bool] = {}

        async def one_sequence(
            endpoint_id: uuid.UUID, items: list[dict[str, Any]]
        ) -> list[Outcome]:
            ep = endpoints.get(endpoint_id)
            if ep is None:
                return [Outcome(r, "dead", error="endpoint removed") for r in items]
            if not ep["enabled"]:
                return [Outcome(r, "dead", error="endpoint disabled") for r in items]
            host = urlsplit(ep["url"]).hostname or ""
            if host not in allowed_hosts:
                allowed_hosts[host] = await asyncio.to_thread(
                    _address_allowed, host, self.config.allow_private_network
                )
            if not allowed_hosts[host]:
                error = f"endpoint host {host} is not on a public network"
                return [Outcome(r, "dead", error=error) for r in items]
            results: list[Outcome] = []
            for i, r in enumerate(items):
                async with semaphore:
                    try:
                        if ep["kind"] == "slack":
                            outcome = await self.send_slack(client, ep, r)
                        else:
                            outcome = await self.send_webhook(client, ep, r)
                    except Exception as exc:  # noqa: BLE001 (one delivery's failure)
                        # A URL no HTTP client takes (a port above 65535, a host of digits
                        # that is no IPv4 address) fails this delivery, never the relay.
                        error = f"{type(exc).__name__}: {exc}"[:500]
                        outcome = Outcome(r, "retry", error=error)
                results.append(outcome)
                if outcome.outcome != "delivered":
                    # A later event of the key must not overtake this one: not attempted.
                    results.extend(Outcome(later, "defer") for later in items[i + 1 :])
                    break
            return results

        groups = await asyncio.gather(
            *(one_sequence(endpoint, items) for (endpoint, _), items in sequences.items())
        )
        return [o for g in groups for o in g]

    async def send_slack(
        self, client: aiohttp.ClientSession, ep: dict[str, Any], row: dict[str, Any]
    ) -> Outcome:
        bucket = self.buckets.setdefault(
            ep["endpoint_id"], TokenBucket(self.config.slack_per_second)
        )
        wait = bucket.wait_time()
        if wait > self.config.lease_seconds / 2:
            return Outcome(row, "defer", retry_after=wait)
        await bucket.acquire()
        text = row["payload"]["payload"].get("text", "")
        try:
            response = await post(
                client,
                ep["url"],
                self.config.timeout,
                json.dumps({"text": text}).encode(),
                {"Content-Type": "application/json"},
            )
        except SendError as exc:
            return Outcome(row, "retry", error=f"Slack: {type(exc).__name__}: {exc}"[:500])
        kind = classify(response.status_code)
        retry_after = None
        if response.status_code == 429:
            retry_after = retry_after_seconds(response.headers.get("retry-after")) or 1.0
            bucket.pause(retry_after)
        return Outcome(
            row,
            kind,
            status=response.status_code,
            error=None
            if kind == "delivered"
            else f"Slack answered {response.status_code}: {response.text[:200]}",
            retry_after=retry_after,
        )

    async def send_webhook(
        self, client: aiohttp.ClientSession, ep: dict[str, Any], row: dict[str, Any]
    ) -> Outcome:
        p = row["payload"]
        try:
            body = json.dumps(
                {
                    "type": f"{p['connector']}.{p['action']}",
                    "timestamp": row["occurred_at"].isoformat(),
                    "tenant_id": str(row["tenant_id"]),
                    "data": p["payload"],
                },
                separators=(",", ":"),
            ).encode()
        except (ValueError, RecursionError) as exc:
            return Outcome(row, "dead", error=f"cannot encode the event: {exc}"[:500])
        msg_id = str(row["event_id"])
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(ep["signing_secrets"], msg_id, ts, body),
            "User-Agent": "pgtenancy-relay",
        }
        try:
            response = await post(client, ep["url"], self.config.timeout, body, headers)
        except SendError as exc:
            return Outcome(row, "retry", error=f"{type(exc).__name__}: {exc}"[:500])
        kind = classify(response.status_code)
        return Outcome(
            row,
            kind,
            status=response.status_code,
            error=None
            if kind == "delivered"
            else f"answered {response.status_code}: {response.text[:200]}",
            retry_after=retry_after_seconds(response.headers.get("retry-after"))
            if kind == "retry"
            else None,
        )

    # -- the loop ----------------------------------------------------------------------------

    async def round(self, conn: psycopg.AsyncConnection[Any], client: aiohttp.ClientSession) -> int:
        """One claim-send-record pass over analytics then connectors; how many were claimed."""
        claimed = 0
        for analytics in (True, False):
            if analytics and not (self.config.posthog_host and self.config.posthog_key):
                continue
            started = time.monotonic()
            rows = await self.claim(conn, analytics)
            if not rows:
                continue
            claimed += len(rows)
            outcomes = [
                Outcome(r, "dead", error=f"the relay cannot read the event: {r['payload'].error}")
                for r in rows
                if isinstance(r["payload"], Undecodable)
            ]
            readable = [r for r in rows if not isinstance(r["payload"], Undecodable)]
            if readable and analytics:
                outcomes += await self.send_posthog(client, readable)
            elif readable:
                outcomes += await self.send_connectors(conn, client, readable)
            try:
                await self.complete(conn, outcomes)
            except psycopg.OperationalError:
                # Recorded after reconnecting: relay_complete only changes deliveries still
                # leased to this relay, so a late record is safe, and it saves re-sending them.
                self.unrecorded.extend(outcomes)
                raise
            report = BatchReport(len(rows))
            report.add(outcomes)
            for k, v in report.counts.items():
                self.totals[k] = self.totals.get(k, 0) + v
            log.info(
                "relay %s: %s batch of %d in %.0f ms: %s",
                self.config.name,
                "analytics" if analytics else "connector",
                len(rows),
                (time.monotonic() - started) * 1000,
                ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())),
            )
        return claimed

    async def run(self, once: bool = False) -> dict[str, int]:
        """Relay until stopped (SIGTERM, SIGINT), or with ``once`` until nothing is due."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Not available outside the main thread (a relay run by a test, say).
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        connector = aiohttp.TCPConnector(limit=self.config.concurrency * 2)
        async with aiohttp.ClientSession(
            connector=connector,
            # Answers are read raw (post): asked for uncompressed, and never inflated.
            auto_decompress=False,
            headers={"Accept-Encoding": "identity", "User-Agent": "pgtenancy-relay"},
        ) as client:
            while not self.stopping.is_set():
                try:
                    done = await self._connected(client, once)
                except psycopg.OperationalError as exc:
                    # The server restarted or the network dropped: what was leased and not
                    # recorded is claimed again when its lease runs out (same ids, so receivers
                    # can drop the copy). Reconnect with a growing pause.
                    self.failures += 1
                    if once and self.failures > 10:
                        raise
                    pause = min(5.0, 0.25 * 2**self.failures)
                    log.warning(
                        "relay %s: database connection lost (%s); reconnecting in %.1f s",
                        self.config.name,
                        (str(exc).strip().splitlines() or [type(exc).__name__])[0],
                        pause,
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stopping.wait(), pause)
                    continue
                if done:
                    break
        return self.totals

    async def _connected(self, client: aiohttp.ClientSession, once: bool) -> bool:
        """Relay over one connection; True when finished (stopped, or drained with ``once``)."""
        async with await psycopg.AsyncConnection.connect(
            self.config.database_url, autocommit=True
        ) as conn:
            set_json_loads(_loads, conn)  # an unreadable event is dead-lettered, not fatal
            self.failures = 0
            if self.unrecorded:
                await self.complete(conn, self.unrecorded)
                self.unrecorded = []
            await self.maintain(conn)
            while not self.stopping.is_set():
                if time.monotonic() - self.last_maintain > self.config.maintain_every:
                    await self.maintain(conn)
                claimed = await self.round(conn, client)
                if claimed:
                    continue
                if once:
                    return True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), self.config.idle_sleep)
        return True


def status(database_url: str) -> list[dict[str, Any]]:
    """The rows of tenancy.relay_status: the backlog across tenants."""
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        conn.cursor(row_factory=dict_row) as cur,
    ):
        cur.execute("select * from tenancy.relay_status order by source, kind")
        return cur.fetchall()
