"""Route each tenant's transactions to the database that holds its rows (its placement).

A :class:`Router` (or :class:`AsyncRouter`) knows two things: the *directory*, a database where
``tenancy.tenant_placement`` says which placement holds a tenant (a login in ``tenancy_service``),
and a mapping from each placement's connection alias (``tenancy.placements.alias``) to a
connection string. It keeps one psycopg_pool pool per placement, created on first use, and a
bounded cache of directory entries that expire after ``ttl`` seconds.

A transaction is pinned to the placement chosen when it starts: :meth:`Router.transaction` opens
it with :func:`pgtenancy.pool_tenant_transaction` (or the authenticated helpers) on that
placement's pool and never moves it. When a tenant is being moved, its old placement fences its
writes (``TN021``); the router turns that error into :class:`PlacementFenced`, a
:class:`RetryableRouting`, and forgets the cached entry. :meth:`Router.run` runs a function in
such a transaction and retries it: after a fence it polls the directory until the placement's
epoch changes (or, now and then, tries again in case the fence was lifted), after a
serialization failure or a deadlock it backs off, and it gives up with :class:`RoutingTimeout`
after ``attempts`` calls or ``wait`` seconds.

Reads continue on a fenced placement, so a router whose cache still names the old placement
after the move would read rows frozen at the fence. With ``check_fence`` (the default) every
transaction asks, right after its context is set, whether the tenant's writes are fenced there;
if they are, the router re-reads the directory (at most every ``fence_recheck`` seconds per
tenant) and, when the directory names another placement, raises :class:`TenantMoved` before
the block runs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar
from uuid import UUID

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from .context import (
    TenantContext,
    apool_authenticated_transaction,
    apool_tenant_transaction,
    areset_session,
    pool_authenticated_transaction,
    pool_tenant_transaction,
    reset_session,
)
from .context import _as_uuid as _checked_uuid

__all__ = [
    "AsyncRouter",
    "PlacementFenced",
    "Router",
    "RouterStats",
    "RetryableRouting",
    "RoutingError",
    "RoutingTimeout",
    "TenantMoved",
    "TenantPlacement",
    "UnknownPlacement",
    "UnknownTenant",
]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_LOOKUP = (
    "select tenant_id, placement, alias, region, state, epoch, fenced, status"
    " from tenancy.tenant_placement(%s)"
)
_RESOLVE = "select tenancy.resolve_tenant(%s)"
# Whether the context just set is of a tenant whose writes are fenced on this database, as the
# write trigger decides it.
_FENCED = "select tenancy.context_fenced()"
_FENCE_DETAIL = re.compile(r"placement (?P<placement>\S+), epoch (?P<epoch>\d+)")
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock

_DEFAULT_POOL: dict[str, Any] = {"min_size": 1, "max_size": 10}
_DEFAULT_DIRECTORY_POOL: dict[str, Any] = {"min_size": 1, "max_size": 4}

# run(): after a fence, the directory is polled every _POLL_FIRST seconds, doubling up to
# _POLL_MAX; the transaction is tried again when the directory shows another epoch or
# placement, or when the attempt's probe interval (_PROBE_FIRST doubling up to _PROBE_MAX) has
# passed (the fence may have been lifted without a move). After 40001 / 40P01: _BACKOFF_FIRST
# doubling up to _BACKOFF_MAX, with jitter.
_POLL_FIRST = 0.005
_POLL_MAX = 0.1
_PROBE_FIRST = 0.05
_PROBE_MAX = 2.0
_BACKOFF_FIRST = 0.01
_BACKOFF_MAX = 0.5


# -- errors ------------------------------------------------------------------------------------


class RoutingError(Exception):
    """The router cannot send the tenant's transaction anywhere, or has given up."""


class UnknownTenant(RoutingError, LookupError):
    """The directory has no such tenant, or no active tenant is at the host."""

    def __init__(self, message: str, *, tenant_id: UUID | None = None, host: str | None = None):
        super().__init__(message)
        self.tenant_id = tenant_id
        self.host = host


class UnknownPlacement(RoutingError, LookupError):
    """The directory names a placement alias the router has no connection string for."""

    def __init__(self, entry: TenantPlacement):
        super().__init__(
            f"tenant {entry.tenant_id} is in placement {entry.placement} (alias {entry.alias!r}),"
            " which this router has no connection string for: add the alias to its placements"
        )
        self.entry = entry


class RetryableRouting(RoutingError):
    """The transaction was refused or stopped because the tenant is moving or has moved.

    Nothing it did was committed. Run it again from the start: the router has forgotten the
    stale entry and will look the tenant up again (:meth:`Router.run` does this for you).
    ``entry`` is the directory entry the transaction was routed by.
    """

    def __init__(self, message: str, entry: TenantPlacement):
        super().__init__(message)
        self.entry = entry

    @property
    def tenant_id(self) -> UUID:
        return self.entry.tenant_id

    @property
    def placement(self) -> str:
        """The placement the transaction ran on."""
        return self.entry.placement


class PlacementFenced(RetryableRouting):
    """A write was refused with ``TN021``: the tenant's writes are fenced on this placement.

    ``recorded_placement`` and ``recorded_epoch`` are the tenant's placement and epoch as the
    fenced database records them (the error's DETAIL), ``None`` when it did not say.
    ``__cause__`` is the database error.
    """

    sqlstate = "TN021"

    def __init__(
        self,
        message: str,
        entry: TenantPlacement,
        recorded_placement: str | None,
        recorded_epoch: int | None,
    ):
        super().__init__(message, entry)
        self.recorded_placement = recorded_placement
        self.recorded_epoch = recorded_epoch


class TenantMoved(RetryableRouting):
    """The tenant's writes are fenced on the placement the cache named and the directory now
    names another one (``current``): raised before the block ran."""

    def __init__(self, message: str, entry: TenantPlacement, current: TenantPlacement):
        super().__init__(message, entry)
        self.current = current


class RoutingTimeout(RoutingError):
    """:meth:`Router.run` gave up: ``attempts`` calls made or ``wait`` seconds passed while the
    tenant stayed fenced (or kept failing to serialize). ``__cause__`` is the last error."""

    def __init__(self, tenant_id: UUID, attempts: int, elapsed: float, last: BaseException):
        super().__init__(
            f"tenant {tenant_id}: gave up after {attempts} attempt(s) in {elapsed:.2f} s;"
            f" last error: {last}"
        )
        self.tenant_id = tenant_id
        self.attempts = attempts
        self.elapsed = elapsed
        self.last = last


# -- the directory cache -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantPlacement:
    """A tenant's entry in the directory (``tenancy.tenant_placement``).

    ``epoch`` is bumped by the directory each time the tenant's placement changes. ``fenced``
    says whether the tenant's writes are fenced *on the directory's database* (which is the
    tenant's placement only when the directory is that placement). ``status``: active,
    suspended or deleted; the router routes every status and lets the placement refuse.
    """

    tenant_id: UUID
    placement: str
    alias: str
    region: str | None
    state: str
    epoch: int
    fenced: bool
    status: str


@dataclass(frozen=True, slots=True)
class RouterStats:
    """Counters since the router was created (a snapshot: :attr:`Router.stats`).

    ``directory_reads``: ``tenant_placement`` queries sent to the directory; ``host_lookups``:
    ``resolve_tenant`` queries; ``cache_hits``: tenant lookups answered from the cache;
    ``fenced`` / ``moved``: :class:`PlacementFenced` / :class:`TenantMoved` raised; ``retries``:
    transactions :meth:`Router.run` ran again.
    """

    directory_reads: int = 0
    host_lookups: int = 0
    cache_hits: int = 0
    fenced: int = 0
    moved: int = 0
    retries: int = 0


class _Cache(Generic[K, V]):
    """A bounded mapping whose entries expire ``ttl`` seconds after they were stored (LRU)."""

    def __init__(self, size: int, ttl: float):
        self._size = size
        self._ttl = ttl
        self._items: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> tuple[V, float] | None:
        """The value and when it was stored (``time.monotonic``), or None when absent or old."""
        now = time.monotonic()
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if now - item[1] >= self._ttl:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item

    def put(self, key: K, value: V, keep: Callable[[V], bool] | None = None) -> None:
        """Store ``value``, unless ``keep(current)`` says the current fresh entry wins."""
        now = time.monotonic()
        with self._lock:
            current = self._items.get(key)
            if (
                current is not None
                and keep is not None
                and now - current[1] < self._ttl
                and keep(current[0])
            ):
                return
            self._items[key] = (value, now)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def discard(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _as_uuid(value: UUID | str) -> UUID:
    return _checked_uuid(value, "tenant_id")


def _token_tenant(token: str) -> UUID:
    """The ``tenant_id`` claim of a JWT, read without verifying it: only to choose where to send
    the token (the placement's ``tenancy.authenticate`` verifies it)."""
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, got {type(token).__name__}")
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not a JWT")
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        claim = payload["tenant_id"]
        return _as_uuid(claim)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ValueError(
            "the token carries no tenant_id claim to route by: pass host= or tenant_id="
        ) from exc


def _fence_detail(exc: psycopg.Error) -> tuple[str | None, int | None]:
    match = _FENCE_DETAIL.search(exc.diag.message_detail or "")
    if match is None:
        return None, None
    return match["placement"], int(match["epoch"])


def _require_not_failed(conn: Connection[Any] | AsyncConnection[Any], tenant_id: UUID) -> None:
    """run(): a function that caught a database error and returned leaves a failed transaction,
    which psycopg rolls back without a word; its caller must not believe it committed."""
    if conn.info.transaction_status == TransactionStatus.INERROR:
        raise RoutingError(
            f"tenant {tenant_id}: the function returned with its transaction failed (it caught a"
            " database error without raising it again): nothing was committed"
        )


class _Core:
    """What the synchronous and asynchronous routers share: settings, cache, counters, errors."""

    def __init__(
        self,
        directory: str,
        placements: Mapping[str, str],
        *,
        cache_size: int,
        ttl: float,
        check_fence: bool,
        fence_recheck: float,
        pool_kwargs: Mapping[str, Any] | None,
        directory_pool_kwargs: Mapping[str, Any] | None,
    ):
        if not isinstance(directory, str):
            raise TypeError("directory must be a connection string")
        if not isinstance(placements, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in placements.items()
        ):
            raise TypeError("placements must map each alias (str) to a connection string (str)")
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        if fence_recheck < 0:
            raise ValueError("fence_recheck must not be negative")
        self._directory_url = directory
        self._conninfo = dict(placements)
        self._check_fence = check_fence
        self._fence_recheck = fence_recheck
        self._pool_kwargs = {**_DEFAULT_POOL, **(pool_kwargs or {})}
        self._directory_pool_kwargs = {**_DEFAULT_DIRECTORY_POOL, **(directory_pool_kwargs or {})}
        self._tenants: _Cache[UUID, TenantPlacement] = _Cache(cache_size, ttl)
        self._hosts: _Cache[str, UUID] = _Cache(cache_size, ttl)
        self._stats_lock = threading.Lock()
        self._stats = RouterStats()
        self._closed = False

    @property
    def stats(self) -> RouterStats:
        """The router's counters so far."""
        with self._stats_lock:
            return self._stats

    def _count(self, **increments: int) -> None:
        with self._stats_lock:
            self._stats = replace(
                self._stats,
                **{k: getattr(self._stats, k) + v for k, v in increments.items()},
            )

    def invalidate(self, tenant_id: UUID | str | None = None) -> None:
        """Forget the cached entry of a tenant (every entry, hosts too, without one)."""
        if tenant_id is None:
            self._tenants.clear()
            self._hosts.clear()
        else:
            self._tenants.discard(_as_uuid(tenant_id))

    def _require_open(self) -> None:
        if self._closed:
            raise RoutingError("the router is closed")

    def _conninfo_of(self, entry: TenantPlacement) -> str:
        try:
            return self._conninfo[entry.alias]
        except KeyError:
            raise UnknownPlacement(entry) from None

    def _cached(self, tenant_id: UUID) -> tuple[TenantPlacement, float] | None:
        item = self._tenants.get(tenant_id)
        if item is not None:
            self._count(cache_hits=1)
        return item

    def _store(self, tenant_id: UUID, row: tuple[Any, ...] | None) -> TenantPlacement:
        if row is None:
            raise UnknownTenant(f"tenant {tenant_id} is not in the directory", tenant_id=tenant_id)
        entry = TenantPlacement(
            tenant_id=row[0],
            placement=row[1],
            alias=row[2],
            region=row[3],
            state=row[4],
            epoch=int(row[5]),
            fenced=bool(row[6]),
            status=row[7],
        )
        # A read that raced with a newer one does not bring an older epoch back.
        self._tenants.put(tenant_id, entry, keep=lambda current: current.epoch > entry.epoch)
        return entry

    def _host_key(self, host: str) -> str:
        if not isinstance(host, str):
            raise TypeError(f"host must be a str, got {type(host).__name__}")
        return host

    def _host_result(self, host: str, value: UUID | None) -> UUID:
        if value is None:
            raise UnknownTenant(f"no active tenant at host {host!r}", host=host)
        self._hosts.put(host, value)
        return value

    def _fenced(self, entry: TenantPlacement, exc: psycopg.Error) -> PlacementFenced:
        self._tenants.discard(entry.tenant_id)
        self._count(fenced=1)
        placement, epoch = _fence_detail(exc)
        return PlacementFenced(
            f"tenant {entry.tenant_id}: writes are fenced on placement {entry.placement}"
            f" (epoch {entry.epoch} in the router's cache): {exc.diag.message_primary or exc}",
            entry,
            placement,
            epoch,
        )

    def _moved(self, entry: TenantPlacement, current: TenantPlacement) -> TenantMoved | None:
        """:class:`TenantMoved` when the directory names another placement than ``entry``."""
        if current.placement == entry.placement:
            return None
        self._count(moved=1)
        return TenantMoved(
            f"tenant {entry.tenant_id} moved from placement {entry.placement} (epoch"
            f" {entry.epoch}) to {current.placement} (epoch {current.epoch}): its writes are"
            f" fenced on {entry.placement}",
            entry,
            current,
        )

    def _recheck_due(self, stored_at: float) -> bool:
        return time.monotonic() - stored_at >= self._fence_recheck

    @staticmethod
    def _check_run_args(attempts: int, wait: float) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if wait < 0:
            raise ValueError("wait must not be negative")

    @staticmethod
    def _retryable(exc: BaseException) -> bool:
        if isinstance(exc, RetryableRouting):
            return True
        return isinstance(exc, psycopg.Error) and exc.sqlstate in _RETRY_SQLSTATES

    @staticmethod
    def _backoff(attempt: int) -> float:
        base = min(_BACKOFF_FIRST * 2.0 ** (attempt - 1), _BACKOFF_MAX)
        return base * (0.5 + random.random() / 2)

    @staticmethod
    def _probe_after(attempt: int) -> float:
        return min(_PROBE_FIRST * 2.0 ** (attempt - 1), _PROBE_MAX)

    @staticmethod
    def _changed(entry: TenantPlacement, fresh: TenantPlacement) -> bool:
        return fresh.epoch > entry.epoch or fresh.placement != entry.placement


# -- synchronous -------------------------------------------------------------------------------

SyncConn = Connection[TupleRow]


class Router(_Core):
    """Routes tenants' transactions to their placements (psycopg 3, threads).

    ``directory``: connection string of a login in ``tenancy_service`` on the database whose
    ``tenancy.tenant_placement`` is authoritative. ``placements``: each placement's alias
    (``tenancy.placements.alias``) → connection string; the login must be allowed to set the
    context the transactions need (``tenancy_service`` for :meth:`transaction`, ``tenancy_app``
    is enough for :meth:`authenticated_transaction`). ``cache_size`` entries of the directory
    are kept, each for ``ttl`` seconds. ``pool_kwargs`` go to every placement's
    ``psycopg_pool.ConnectionPool`` (defaults: ``min_size=1``, ``max_size=10``,
    ``reset=reset_session``); ``directory_pool_kwargs`` to the directory's (``min_size=1``,
    ``max_size=4``; it runs in autocommit). Thread-safe. Close it with :meth:`close` or use it
    as a context manager.
    """

    def __init__(
        self,
        directory: str,
        placements: Mapping[str, str],
        *,
        cache_size: int = 10_000,
        ttl: float = 30.0,
        check_fence: bool = True,
        fence_recheck: float = 0.1,
        pool_kwargs: Mapping[str, Any] | None = None,
        directory_pool_kwargs: Mapping[str, Any] | None = None,
    ):
        super().__init__(
            directory,
            placements,
            cache_size=cache_size,
            ttl=ttl,
            check_fence=check_fence,
            fence_recheck=fence_recheck,
            pool_kwargs=pool_kwargs,
            directory_pool_kwargs=directory_pool_kwargs,
        )
        self._pools: dict[str, ConnectionPool[SyncConn]] = {}
        self._directory: ConnectionPool[SyncConn] | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pool; the router cannot be used afterwards."""
        with self._lock:
            self._closed = True
            pools = [*self._pools.values(), *([self._directory] if self._directory else [])]
            self._pools.clear()
            self._directory = None
        for pool in pools:
            pool.close()

    def _new_pool(self, conninfo: str, kwargs: Mapping[str, Any]) -> ConnectionPool[SyncConn]:
        pool: ConnectionPool[SyncConn] = ConnectionPool(conninfo, open=False, **kwargs)
        pool.open()
        return pool

    def _directory_pool(self) -> ConnectionPool[SyncConn]:
        with self._lock:
            self._require_open()
            if self._directory is None:
                kwargs = dict(self._directory_pool_kwargs)
                kwargs["kwargs"] = {"autocommit": True, **kwargs.get("kwargs", {})}
                self._directory = self._new_pool(self._directory_url, kwargs)
            return self._directory

    def _pool(self, entry: TenantPlacement) -> ConnectionPool[SyncConn]:
        conninfo = self._conninfo_of(entry)
        with self._lock:
            self._require_open()
            pool = self._pools.get(entry.alias)
            if pool is None:
                kwargs = {"reset": reset_session, **self._pool_kwargs}
                pool = self._pools[entry.alias] = self._new_pool(conninfo, kwargs)
            return pool

    # -- the directory

    def _read(self, tenant_id: UUID) -> TenantPlacement:
        with self._directory_pool().connection() as conn:
            row = conn.execute(_LOOKUP, (tenant_id,)).fetchone()
        self._count(directory_reads=1)
        return self._store(tenant_id, row)

    def _lookup(self, tenant_id: UUID) -> tuple[TenantPlacement, float]:
        item = self._cached(tenant_id)
        if item is not None:
            return item
        entry = self._read(tenant_id)
        return entry, time.monotonic()

    def placement(self, tenant_id: UUID | str, *, refresh: bool = False) -> TenantPlacement:
        """The tenant's directory entry, from the cache unless ``refresh``.

        :class:`UnknownTenant` when the directory has no such tenant.
        """
        self._require_open()
        tid = _as_uuid(tenant_id)
        return self._read(tid) if refresh else self._lookup(tid)[0]

    def tenant_for_host(self, host: str) -> UUID:
        """The tenant at a raw ``Host`` header (``tenancy.resolve_tenant`` on the directory),
        cached like placements. :class:`UnknownTenant` when no active tenant is there; a
        malformed host raises the database's ``TN010``."""
        self._require_open()
        key = self._host_key(host)
        item = self._hosts.get(key)
        if item is not None:
            return item[0]
        with self._directory_pool().connection() as conn:
            row = conn.execute(_RESOLVE, (host,)).fetchone()
        self._count(host_lookups=1)
        return self._host_result(host, row[0] if row else None)

    # -- transactions

    @contextmanager
    def _pinned(
        self,
        tenant_id: UUID,
        opener: Callable[
            [ConnectionPool[SyncConn]], AbstractContextManager[tuple[SyncConn, TenantContext]]
        ],
    ) -> Iterator[SyncConn]:
        self._require_open()
        entry, stored_at = self._lookup(tenant_id)
        pool = self._pool(entry)
        try:
            with opener(pool) as (conn, _ctx):
                if self._check_fence:
                    self._check_moved(conn, entry, stored_at)
                yield conn
        except psycopg.Error as exc:
            if exc.sqlstate == "TN021":
                raise self._fenced(entry, exc) from exc
            raise

    def _check_moved(self, conn: SyncConn, entry: TenantPlacement, stored_at: float) -> None:
        row = conn.execute(_FENCED).fetchone()
        if not (row and row[0]) or not self._recheck_due(stored_at):
            return
        moved = self._moved(entry, self._read(entry.tenant_id))
        if moved is not None:
            raise moved

    def transaction(
        self,
        tenant_id: UUID | str,
        user_id: str | UUID | None = None,
        *,
        metadata: Mapping[str, object] | None = None,
    ) -> AbstractContextManager[SyncConn]:
        """A transaction on the tenant's placement with its context set by
        ``tenancy.set_context`` (:func:`pgtenancy.pool_tenant_transaction`); yields the
        connection. Commits when the block exits, rolls back when it raises.

        The placement is chosen once, when the block starts, and the transaction never
        leaves it. A write refused by the tenant's fence raises :class:`PlacementFenced`
        (retryable; the cached entry is forgotten); with ``check_fence`` a tenant that moved
        away raises :class:`TenantMoved` before the block runs. :class:`UnknownTenant` when the
        directory does not know the tenant; a suspended or deleted tenant raises what
        ``set_context`` raises on its placement (``TN002``).
        """
        tid = _as_uuid(tenant_id)

        def opener(
            pool: ConnectionPool[SyncConn],
        ) -> AbstractContextManager[tuple[SyncConn, TenantContext]]:
            return pool_tenant_transaction(pool, tid, user_id, metadata=metadata)

        return self._pinned(tid, opener)

    @contextmanager
    def authenticated_transaction(
        self,
        token: str,
        host: str | None = None,
        *,
        tenant_id: UUID | str | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> Iterator[SyncConn]:
        """A transaction on the placement of the token's tenant, its context set by
        ``tenancy.authenticate`` there (:func:`pgtenancy.pool_authenticated_transaction`).

        The tenant to route by is the one at ``host`` (looked up in the directory, and
        ``authenticate(token, host)`` checks it again), else ``tenant_id``, else the token's
        ``tenant_id`` claim (read unverified, only to choose the placement). Pinned and
        retryable as :meth:`transaction`.
        """
        if host is not None:
            tid = self.tenant_for_host(host)
        elif tenant_id is not None:
            tid = _as_uuid(tenant_id)
        else:
            tid = _token_tenant(token)

        def opener(
            pool: ConnectionPool[SyncConn],
        ) -> AbstractContextManager[tuple[SyncConn, TenantContext]]:
            return pool_authenticated_transaction(pool, token, host, metadata=metadata)

        with self._pinned(tid, opener) as conn:
            yield conn

    def run(
        self,
        tenant_id: UUID | str,
        fn: Callable[[SyncConn], T],
        *,
        user_id: str | UUID | None = None,
        metadata: Mapping[str, object] | None = None,
        attempts: int = 10,
        wait: float = 10.0,
    ) -> T:
        """Call ``fn(conn)`` in :meth:`transaction` and return what it returns, retrying it on
        the tenant's new placement after a move.

        After :class:`PlacementFenced` the router polls the directory until the tenant's epoch
        or placement changes (trying the same placement again now and then, in case the fence
        was lifted), after :class:`TenantMoved` it retries at once, after a serialization
        failure or a deadlock (``40001``, ``40P01``) it backs off. ``fn`` may run several
        times; only the last call's transaction commits. :class:`RoutingTimeout` after
        ``attempts`` calls or once ``wait`` seconds have passed; other errors propagate.
        """
        self._check_run_args(attempts, wait)
        tid = _as_uuid(tenant_id)
        started = time.monotonic()
        deadline = started + wait
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.transaction(tid, user_id, metadata=metadata) as conn:
                    result = fn(conn)
                    _require_not_failed(conn, tid)
                return result
            except (RetryableRouting, psycopg.Error) as exc:
                if not self._retryable(exc):
                    raise
                if attempt >= attempts or time.monotonic() >= deadline:
                    raise RoutingTimeout(tid, attempt, time.monotonic() - started, exc) from exc
                if isinstance(exc, PlacementFenced):
                    self._await_change(
                        exc.entry, min(deadline, time.monotonic() + self._probe_after(attempt))
                    )
                elif not isinstance(exc, TenantMoved):
                    time.sleep(min(self._backoff(attempt), max(deadline - time.monotonic(), 0)))
            self._count(retries=1)

    def _await_change(self, entry: TenantPlacement, until: float) -> None:
        """Poll the directory until the tenant's entry changes or ``until`` passes."""
        delay = _POLL_FIRST
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(delay, left))
            delay = min(delay * 2, _POLL_MAX)
            if self._changed(entry, self._read(entry.tenant_id)):
                return


# -- asynchronous ------------------------------------------------------------------------------

AsyncConn = AsyncConnection[TupleRow]


class AsyncRouter(_Core):
    """Asynchronous :class:`Router` (psycopg 3 ``AsyncConnection``, psycopg_pool's
    ``AsyncConnectionPool``): the same arguments, ``async with`` and ``await``. Pools are opened
    in the running event loop on first use; close with ``await router.close()``."""

    def __init__(
        self,
        directory: str,
        placements: Mapping[str, str],
        *,
        cache_size: int = 10_000,
        ttl: float = 30.0,
        check_fence: bool = True,
        fence_recheck: float = 0.1,
        pool_kwargs: Mapping[str, Any] | None = None,
        directory_pool_kwargs: Mapping[str, Any] | None = None,
    ):
        super().__init__(
            directory,
            placements,
            cache_size=cache_size,
            ttl=ttl,
            check_fence=check_fence,
            fence_recheck=fence_recheck,
            pool_kwargs=pool_kwargs,
            directory_pool_kwargs=directory_pool_kwargs,
        )
        self._pools: dict[str, AsyncConnectionPool[AsyncConn]] = {}
        self._directory: AsyncConnectionPool[AsyncConn] | None = None
        self._lock: asyncio.Lock | None = None

    async def __aenter__(self) -> AsyncRouter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _the_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def close(self) -> None:
        """Close every pool; the router cannot be used afterwards."""
        async with self._the_lock():
            self._closed = True
            pools = [*self._pools.values(), *([self._directory] if self._directory else [])]
            self._pools.clear()
            self._directory = None
        for pool in pools:
            await pool.close()

    async def _new_pool(
        self, conninfo: str, kwargs: Mapping[str, Any]
    ) -> AsyncConnectionPool[AsyncConn]:
        pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(conninfo, open=False, **kwargs)
        await pool.open()
        return pool

    async def _directory_pool(self) -> AsyncConnectionPool[AsyncConn]:
        async with self._the_lock():
            self._require_open()
            if self._directory is None:
                kwargs = dict(self._directory_pool_kwargs)
                kwargs["kwargs"] = {"autocommit": True, **kwargs.get("kwargs", {})}
                self._directory = await self._new_pool(self._directory_url, kwargs)
            return self._directory

    async def _pool(self, entry: TenantPlacement) -> AsyncConnectionPool[AsyncConn]:
        conninfo = self._conninfo_of(entry)
        async with self._the_lock():
            self._require_open()
            pool = self._pools.get(entry.alias)
            if pool is None:
                kwargs = {"reset": areset_session, **self._pool_kwargs}
                pool = self._pools[entry.alias] = await self._new_pool(conninfo, kwargs)
            return pool

    async def _read(self, tenant_id: UUID) -> TenantPlacement:
        async with (await self._directory_pool()).connection() as conn:
            row = await (await conn.execute(_LOOKUP, (tenant_id,))).fetchone()
        self._count(directory_reads=1)
        return self._store(tenant_id, row)

    async def _lookup(self, tenant_id: UUID) -> tuple[TenantPlacement, float]:
        item = self._cached(tenant_id)
        if item is not None:
            return item
        entry = await self._read(tenant_id)
        return entry, time.monotonic()

    async def placement(self, tenant_id: UUID | str, *, refresh: bool = False) -> TenantPlacement:
        """Asynchronous :meth:`Router.placement`."""
        self._require_open()
        tid = _as_uuid(tenant_id)
        return await self._read(tid) if refresh else (await self._lookup(tid))[0]

    async def tenant_for_host(self, host: str) -> UUID:
        """Asynchronous :meth:`Router.tenant_for_host`."""
        self._require_open()
        key = self._host_key(host)
        item = self._hosts.get(key)
        if item is not None:
            return item[0]
        async with (await self._directory_pool()).connection() as conn:
            row = await (await conn.execute(_RESOLVE, (host,))).fetchone()
        self._count(host_lookups=1)
        return self._host_result(host, row[0] if row else None)

    @asynccontextmanager
    async def _pinned(
        self,
        tenant_id: UUID,
        opener: Callable[
            [AsyncConnectionPool[AsyncConn]],
            AbstractAsyncContextManager[tuple[AsyncConn, TenantContext]],
        ],
    ) -> AsyncIterator[AsyncConn]:
        self._require_open()
        entry, stored_at = await self._lookup(tenant_id)
        pool = await self._pool(entry)
        try:
            async with opener(pool) as (conn, _ctx):
                if self._check_fence:
                    await self._check_moved(conn, entry, stored_at)
                yield conn
        except psycopg.Error as exc:
            if exc.sqlstate == "TN021":
                raise self._fenced(entry, exc) from exc
            raise

    async def _check_moved(self, conn: AsyncConn, entry: TenantPlacement, stored_at: float) -> None:
        row = await (await conn.execute(_FENCED)).fetchone()
        if not (row and row[0]) or not self._recheck_due(stored_at):
            return
        moved = self._moved(entry, await self._read(entry.tenant_id))
        if moved is not None:
            raise moved

    def transaction(
        self,
        tenant_id: UUID | str,
        user_id: str | UUID | None = None,
        *,
        metadata: Mapping[str, object] | None = None,
    ) -> AbstractAsyncContextManager[AsyncConn]:
        """Asynchronous :meth:`Router.transaction`, for ``async with``."""
        tid = _as_uuid(tenant_id)

        def opener(
            pool: AsyncConnectionPool[AsyncConn],
        ) -> AbstractAsyncContextManager[tuple[AsyncConn, TenantContext]]:
            return apool_tenant_transaction(pool, tid, user_id, metadata=metadata)

        return self._pinned(tid, opener)

    @asynccontextmanager
    async def authenticated_transaction(
        self,
        token: str,
        host: str | None = None,
        *,
        tenant_id: UUID | str | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> AsyncIterator[AsyncConn]:
        """Asynchronous :meth:`Router.authenticated_transaction`, for ``async with``."""
        if host is not None:
            tid = await self.tenant_for_host(host)
        elif tenant_id is not None:
            tid = _as_uuid(tenant_id)
        else:
            tid = _token_tenant(token)

        def opener(
            pool: AsyncConnectionPool[AsyncConn],
        ) -> AbstractAsyncContextManager[tuple[AsyncConn, TenantContext]]:
            return apool_authenticated_transaction(pool, token, host, metadata=metadata)

        async with self._pinned(tid, opener) as conn:
            yield conn

    async def run(
        self,
        tenant_id: UUID | str,
        fn: Callable[[AsyncConn], Awaitable[T]],
        *,
        user_id: str | UUID | None = None,
        metadata: Mapping[str, object] | None = None,
        attempts: int = 10,
        wait: float = 10.0,
    ) -> T:
        """Asynchronous :meth:`Router.run`: ``await fn(conn)`` in :meth:`transaction`."""
        self._check_run_args(attempts, wait)
        tid = _as_uuid(tenant_id)
        started = time.monotonic()
        deadline = started + wait
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self.transaction(tid, user_id, metadata=metadata) as conn:
                    result = await fn(conn)
                    _require_not_failed(conn, tid)
                return result
            except (RetryableRouting, psycopg.Error) as exc:
                if not self._retryable(exc):
                    raise
                if attempt >= attempts or time.monotonic() >= deadline:
                    raise RoutingTimeout(tid, attempt, time.monotonic() - started, exc) from exc
                if isinstance(exc, PlacementFenced):
                    await self._await_change(
                        exc.entry, min(deadline, time.monotonic() + self._probe_after(attempt))
                    )
                elif not isinstance(exc, TenantMoved):
                    await asyncio.sleep(
                        min(self._backoff(attempt), max(deadline - time.monotonic(), 0))
                    )
            self._count(retries=1)

    async def _await_change(self, entry: TenantPlacement, until: float) -> None:
        delay = _POLL_FIRST
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, _POLL_MAX)
            if self._changed(entry, await self._read(entry.tenant_id)):
                return
