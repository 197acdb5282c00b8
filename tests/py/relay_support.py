"""The database side of the relay tests: an outbox database, its logins, and relays to run.

Each test module has a database of its own, emptied of events, deliveries and endpoints before
each test (``Outbox.reset``), so one test's backlog, endpoints and leases never reach another's
relay. Tenants are created by a
``tenancy_admin`` login and events enqueued by a ``tenancy_service`` login in a tenant context,
the way an application does; the relay connects as the service login. The superuser only
inspects delivery state and moves schedules (``make_due``) where a test must not wait hours.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pgtenancy import tenant_transaction, testing
from pgtenancy.relay import Relay, RelayConfig

PGTENANCY = Path(sys.executable).with_name("pgtenancy")
POSTHOG_KEY = "phc_relay_tests"


def ensure_logins(superuser_url: str, service: str, admin: str) -> None:
    """Login roles (cluster-wide) in tenancy_service and tenancy_admin, made once."""
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        for name, group in ((service, "tenancy_service"), (admin, "tenancy_admin")):
            if conn.execute("select from pg_roles where rolname = %s", (name,)).fetchone() is None:
                with conn.transaction():
                    conn.execute("select pg_advisory_xact_lock(hashtext('relay test logins'))")
                    if not conn.execute(
                        "select from pg_roles where rolname = %s", (name,)
                    ).fetchone():
                        conn.execute(f"create role {name} login in role {group}")


@dataclass
class Outbox:
    """A migrated database and the logins that use it."""

    superuser: str
    service: str
    admin: str

    @classmethod
    def create(cls, superuser_url: str, suffix: str = "relaytests") -> Outbox:
        service, admin = f"t_relay_service_{suffix}", f"t_relay_admin_{suffix}"
        ensure_logins(superuser_url, service, admin)
        outbox = cls(
            superuser=superuser_url,
            service=testing.as_login(superuser_url, service),
            admin=testing.as_login(superuser_url, admin),
        )
        # Today's partitions exist, as they do once a relay has run.
        with psycopg.connect(outbox.admin, autocommit=True) as conn:
            conn.execute("select tenancy.maintain_outbox()")
        return outbox

    def reset(self) -> None:
        """Forget every event, delivery and endpoint (tenants stay): the next test starts empty."""
        with psycopg.connect(self.superuser, autocommit=True) as conn:
            conn.execute(
                "truncate tenancy.deliveries, tenancy.analytics_events, tenancy.connector_events,"
                " tenancy.connector_secrets"
            )
            conn.execute("delete from tenancy.connector_endpoints")  # audited: no TRUNCATE

    # -- tenants, endpoints, events ---------------------------------------------------------

    def tenant(self, name: str | None = None) -> uuid.UUID:
        slug = f"r-{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            row = conn.execute(
                "select tenancy.create_tenant(%s, %s, %s)",
                (slug, name or slug.title(), f"auth0|{uuid.uuid4().hex}"),
            ).fetchone()
        assert row is not None
        return uuid.UUID(str(row[0]))

    @contextmanager
    def context(self, tenant: uuid.UUID) -> Iterator[psycopg.Connection[Any]]:
        """A transaction of the service login in ``tenant``'s context (commits on exit)."""
        with psycopg.connect(self.service) as conn, tenant_transaction(conn, tenant):
            yield conn

    def webhook(
        self,
        tenant: uuid.UUID,
        url: str,
        name: str = "hook",
        event_types: Sequence[str] = (),
        secret: str | None = None,
    ) -> tuple[uuid.UUID, str]:
        """A webhook endpoint: its id and its signing secret."""
        with self.context(tenant) as conn:
            row = conn.execute(
                "select endpoint_id, signing_secret from tenancy.configure_webhook(%s, %s, %s, %s)",
                (name, url, list(event_types), secret),
            ).fetchone()
        assert row is not None
        return row[0], secret or row[1]

    def slack(self, tenant: uuid.UUID, url: str, name: str, channel: str | None) -> uuid.UUID:
        with self.context(tenant) as conn:
            row = conn.execute(
                "select tenancy.configure_slack(%s, %s, %s)", (name, url, channel)
            ).fetchone()
        assert row is not None
        return uuid.UUID(str(row[0]))

    def log(
        self,
        tenant: uuid.UUID,
        payload: dict[str, Any] | None = None,
        key: str | None = None,
        connector: str = "crm",
        action: str = "sync",
    ) -> uuid.UUID:
        """One connector event, committed; its id."""
        with self.context(tenant) as conn:
            return log_event(conn, payload or {}, key, connector, action)

    def logs(self, tenant: uuid.UUID, n: int, key: str | None = "k") -> list[uuid.UUID]:
        """``n`` connector events of one key, one transaction each, payload {"seq": i}."""
        return [self.log(tenant, {"seq": i}, key) for i in range(n)]

    def track(
        self, tenant: uuid.UUID, event: str, distinct_id: str, properties: dict[str, Any]
    ) -> uuid.UUID:
        with self.context(tenant) as conn:
            return track_event(conn, event, distinct_id, properties)

    # -- inspection (as the superuser) ------------------------------------------------------

    def rows(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        with (
            psycopg.connect(self.superuser, autocommit=True) as conn,
            conn.cursor(row_factory=dict_row) as cur,
        ):
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []

    def value(self, query: str, params: Any = None) -> Any:
        rows = self.rows(query, params)
        assert len(rows) == 1, rows
        return next(iter(rows[0].values()))

    def delivery(self, event_id: uuid.UUID) -> dict[str, Any]:
        rows = self.rows(
            "select *, extract(epoch from next_attempt_at - now())::float8 as due_in"
            " from tenancy.deliveries where event_id = %s",
            (event_id,),
        )
        assert len(rows) == 1, rows
        return rows[0]

    def pending(self) -> int:
        return int(
            self.value(
                "select count(*) from tenancy.deliveries"
                " where delivered_at is null and dead_at is null"
            )
        )

    def make_due(self) -> int:
        """Every pending delivery due now (the backoff schedule is tested on its own)."""
        with psycopg.connect(self.superuser, autocommit=True) as conn:
            cur = conn.execute(
                "update tenancy.deliveries set next_attempt_at = now()"
                " where delivered_at is null and dead_at is null and next_attempt_at > now()"
            )
            return cur.rowcount

    # -- relays -----------------------------------------------------------------------------

    def config(self, posthog: str | None = None, **changes: Any) -> RelayConfig:
        config = RelayConfig(
            database_url=self.service,
            posthog_host=posthog,
            posthog_key=POSTHOG_KEY if posthog else None,
            allow_private_network=True,
            idle_sleep=0.05,
        )
        for name, value in changes.items():
            assert hasattr(config, name), name
            setattr(config, name, value)
        return config

    def relay_once(self, posthog: str | None = None, **changes: Any) -> dict[str, int]:
        """One ``--once`` run in this process: claims until nothing is due."""
        return asyncio.run(Relay(self.config(posthog, **changes)).run(once=True))

    def relay_args(self, *extra: str, posthog: str | None = None) -> list[str]:
        args = [str(PGTENANCY), "relay", "--database-url", self.service]
        args += ["--allow-private-network", *extra]
        if posthog:
            args += ["--posthog-host", posthog, "--posthog-key", POSTHOG_KEY]
        return args


def log_event(
    conn: psycopg.Connection[Any],
    payload: dict[str, Any],
    key: str | None = None,
    connector: str = "crm",
    action: str = "sync",
) -> uuid.UUID:
    row = conn.execute(
        "select tenancy.log_connector_event(%s, %s, %s::jsonb, %s)",
        (connector, action, json.dumps(payload), key),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def track_event(
    conn: psycopg.Connection[Any], event: str, distinct_id: str, properties: dict[str, Any]
) -> uuid.UUID:
    row = conn.execute(
        "select tenancy.track_event(%s, %s, %s::jsonb)",
        (event, distinct_id, json.dumps(properties)),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


class RelayThread:
    """A long-running relay (``run(once=False)``) on an event loop of its own thread."""

    def __init__(self, config: RelayConfig) -> None:
        self.relay = Relay(config)
        self.loop = asyncio.new_event_loop()
        self.totals: dict[str, int] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.totals = self.loop.run_until_complete(self.relay.run())
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            self.loop.close()

    def stop(self, timeout: float = 30.0) -> dict[str, int]:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.relay.stopping.set)
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the relay did not stop"
        if self.error is not None:
            raise self.error
        return self.totals


class RelayProcess:
    """``pgtenancy relay`` as a subprocess, its log in a file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.out = log.open("w")
        self.proc = subprocess.Popen(
            args, stdout=self.out, stderr=subprocess.STDOUT, env=dict(os.environ)
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.out.close()
        return rc

    def output(self) -> str:
        if not self.out.closed:
            self.out.flush()
        return self.log.read_text()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` until true; the seconds it took. AssertionError after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start
