"""Transactions that carry a tenant context, for psycopg 3 connections and psycopg_pool pools.

Each helper opens a transaction, sets the tenant context inside it with
``tenancy.set_context`` (trusted backends) or ``tenancy.authenticate`` (applications holding a
JWT), and yields the resulting :class:`TenantContext`. The context is set with ``SET LOCAL`` by
the database, so it ends with the transaction: when the block exits the transaction is committed
(or rolled back if the block raised) and the connection carries no tenant any more.

The helpers insist on owning the transaction. A connection that is already inside a
transaction (an explicit ``BEGIN``, an open ``conn.transaction()`` block, or the implicit
transaction psycopg opens on the first statement when autocommit is off) is refused with
:class:`ContextError`. Joining it would make the block a savepoint: the ``SET LOCAL`` would
survive the release of that savepoint and last until the caller's transaction ends, so the
tenant would outlive the block and apply to whatever the caller runs next.

Errors raised by the database (``psycopg.errors`` with SQLSTATE ``TN00x``, ``42501`` ...)
propagate unchanged, after the transaction has been rolled back. A refused token is the one
exception: the authenticated helpers call ``tenancy.try_authenticate``, which records the
refusal as a security event and returns it instead of raising it; the helper commits that
transaction (no context was set in it, so the event is all it holds) and then raises
:class:`AuthenticationRefused`, a ``psycopg.DatabaseError`` with the same ``sqlstate`` and
message as the error ``tenancy.authenticate`` raises.

A pooled connection is shared furniture: temporary objects, holdable cursors, session-level
settings and prepared statements that one borrower leaves are there for the next.
:func:`reset_session` and :func:`areset_session` clear them with ``DISCARD ALL`` and are meant as
psycopg_pool's ``reset=`` callback.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    AsyncExitStack,
    ExitStack,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from psycopg import (
    AsyncConnection,
    AsyncCursor,
    AsyncTransaction,
    Connection,
    Cursor,
    DatabaseError,
    Pipeline,
    Transaction,
)
from psycopg.pq import TransactionStatus
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

__all__ = [
    "AuthenticationRefused",
    "ContextError",
    "aapi_key_transaction",
    "api_key_transaction",
    "apool_api_key_transaction",
    "TenantContext",
    "aauthenticated_transaction",
    "apool_authenticated_transaction",
    "apool_tenant_transaction",
    "areset_session",
    "atenant_transaction",
    "authenticated_transaction",
    "pool_api_key_transaction",
    "pool_authenticated_transaction",
    "pool_tenant_transaction",
    "reset_session",
    "tenant_transaction",
]

CT = TypeVar("CT", bound=Connection[Any])
ACT = TypeVar("ACT", bound=AsyncConnection[Any])

_SET_CONTEXT = (
    "select tenant_id, user_id, role, null::pg_catalog.text as sqlstate,"
    " null::pg_catalog.text as message"
    " from tenancy.set_context(%s, %s)"
)
_AUTHENTICATE = (
    "select tenant_id, user_id, role, sqlstate, message from tenancy.try_authenticate(%s)"
)
_AUTHENTICATE_HOST = (
    "select tenant_id, user_id, role, sqlstate, message from tenancy.try_authenticate(%s, %s)"
)
_API_KEY = (
    "select tenant_id, null::pg_catalog.text as user_id, role, sqlstate, message"
    " from tenancy.try_authenticate_api_key(%s)"
)

# Request metadata for the audit rows of the transaction. Set first, so that the rows written while
# the context is set (an API key's last use) carry it too; metadata the database refuses (22023)
# fails the transaction before any credential is looked at, so no refusal goes unrecorded.
_SET_METADATA = "select tenancy.set_request_metadata(%s::pg_catalog.jsonb)"

# Pipeline mode needs libpq 14 or newer; without it the helpers take two round trips.
_PIPELINE = Pipeline.is_supported()


class ContextError(RuntimeError):
    """A tenant transaction cannot be opened on this connection in its current state."""


class AuthenticationRefused(DatabaseError):
    """The database refused a token or key: ``sqlstate`` and message as ``tenancy.authenticate``
    raises them (``TN004`` invalid token, ``TN003`` not a member, ``TN013`` locked out ...).

    Raised after the transaction that recorded the refusal's security event has committed.
    """

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@dataclass(frozen=True, slots=True)
class _Outcome:
    """A row of ``tenancy.set_context`` or ``tenancy.try_authenticate``."""

    tenant_id: UUID | None
    user_id: str | None
    role: str | None
    sqlstate: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class TenantContext:
    """The tenant context of a transaction, as returned by the database.

    ``role`` is the user's membership role (owner, admin, member, viewer), or ``service`` for a
    trusted backend that set a tenant without a user. ``user_id`` is text: the identity
    provider's subject as the token carried it (``auth0|5f7c…``, ``user_2abc…``, a uuid …).
    """

    tenant_id: UUID
    user_id: str | None
    role: str


def _as_uuid(value: UUID | str, what: str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(value)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{what} must be a UUID, got {value!r}") from exc


def _require_idle(conn: Connection[Any] | AsyncConnection[Any]) -> None:
    if conn.closed:
        raise ContextError("the connection is closed")
    status = conn.info.transaction_status
    if status == TransactionStatus.IDLE:
        return
    if status == TransactionStatus.INTRANS:
        detail = (
            "it is already inside a transaction (an open transaction() block, an explicit "
            "BEGIN, or the implicit transaction started by an earlier statement with "
            "autocommit off); commit or roll back first"
        )
    elif status == TransactionStatus.INERROR:
        detail = "its current transaction has failed; roll back first"
    elif status == TransactionStatus.ACTIVE:
        detail = "a command is in progress on it"
    else:
        detail = "its state is unknown (the connection is probably broken)"
    raise ContextError(
        f"cannot open a tenant transaction on this connection: {detail}. The tenant context "
        "must belong to a transaction that the helper opens and ends."
    )


def _as_user_id(value: str | UUID) -> str:
    # User ids are text; a UUID is taken as its text form. The database checks the rest
    # (1 to 255 characters, no control characters: 22023 naming the value).
    if isinstance(value, UUID):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"user_id must be a str, got {type(value).__name__}")
    return value


def _set_context_params(
    tenant_id: UUID | str, user_id: str | UUID | None
) -> tuple[UUID, str | None]:
    tid = _as_uuid(tenant_id, "tenant_id")
    return tid, None if user_id is None else _as_user_id(user_id)


def _check_token(token: str) -> str:
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, got {type(token).__name__}")
    return token


def _api_key(key: str) -> tuple[str, tuple[Any, ...]]:
    """The query and parameters of ``tenancy.try_authenticate_api_key``."""
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, got {type(key).__name__}")
    return _API_KEY, (key,)


def _authenticate(token: str, host: str | None) -> tuple[str, tuple[Any, ...]]:
    """The query and parameters of ``tenancy.authenticate``: with a host, its two-argument form."""
    token = _check_token(token)
    if host is None:
        return _AUTHENTICATE, (token,)
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, got {type(host).__name__}")
    return _AUTHENTICATE_HOST, (token, host)


# DISCARD ALL cannot run inside a transaction block, so it runs in autocommit. prepare=True:
# psycopg forgets its own prepared statements when a statement it is preparing or sees for the
# first time reports DISCARD ALL; a DISCARD ALL it has already counted (run before, unprepared)
# goes unnoticed, and the next borrower's prepared statements would then fail with 26000
# ("prepared statement _pg3_N does not exist"). Prepared, it is noticed every time.
_DISCARD_ALL = "discard all"


def reset_session(conn: Connection[Any]) -> None:
    """Return a connection's session to the state of a new one: ``DISCARD ALL``.

    Drops temporary tables, views, functions and domains, closes every cursor (holdable ones
    included), resets every session-level setting to its login default (``search_path``,
    ``default_transaction_isolation``, ``default_transaction_read_only``, custom settings ...),
    deallocates prepared statements (psycopg's own cache is cleared with them), releases
    session advisory locks, stops listening, and forgets sequence ``currval`` values.
    Settings attached to the login role or the database (``alter role ... set``) stay.

    Use it as psycopg_pool's reset callback, so that nothing one borrower left in the session
    reaches the next: ``ConnectionPool(url, reset=reset_session)``. The connection must be idle
    (the pool calls the callback after ending any open transaction).
    """
    _require_idle(conn)
    autocommit = conn.autocommit
    if not autocommit:
        conn.autocommit = True
    try:
        conn.execute(_DISCARD_ALL, prepare=True)
    finally:
        if not autocommit and not conn.closed:
            conn.autocommit = False


async def areset_session(conn: AsyncConnection[Any]) -> None:
    """Asynchronous :func:`reset_session`: ``AsyncConnectionPool(url, reset=areset_session)``."""
    _require_idle(conn)
    autocommit = conn.autocommit
    if not autocommit:
        await conn.set_autocommit(True)
    try:
        await conn.execute(_DISCARD_ALL, prepare=True)
    finally:
        if not autocommit and not conn.closed:
            await conn.set_autocommit(False)


def _metadata_json(metadata: Mapping[str, object] | None) -> str | None:
    """The request metadata as JSON text, checked before anything is sent."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping, got {type(metadata).__name__}")
    for key in metadata:
        if not isinstance(key, str):
            raise TypeError(f"metadata keys must be str, got {key!r}")
    try:
        return json.dumps(dict(metadata), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"metadata cannot be written as JSON: {exc}") from exc


def _context_of(row: _Outcome | None) -> TenantContext | AuthenticationRefused:
    """The context a row carries, or the refusal it reports."""
    if row is None:  # the database functions always return one row or raise
        raise ContextError("the database returned no tenant context")
    if row.sqlstate is not None:
        return AuthenticationRefused(row.sqlstate, row.message or "")
    if row.tenant_id is None or row.role is None:
        raise ContextError("the database returned no tenant context")
    return TenantContext(row.tenant_id, row.user_id, row.role)


# -- synchronous connections ---------------------------------------------------------------


@contextmanager
def _transaction(
    conn: Connection[Any], query: str, params: tuple[Any, ...], metadata: str | None = None
) -> Iterator[TenantContext]:
    _require_idle(conn)
    # A plain (server-side binding) cursor whatever the connection's cursor_factory: a
    # ClientCursor would put the token into the query text, readable in pg_stat_activity.
    with ExitStack() as stack:
        cur = stack.enter_context(Cursor(conn, row_factory=class_row(_Outcome)))
        if _PIPELINE:
            # BEGIN, the metadata call and the context call leave in one round trip: leaving
            # pipeline mode sends the only Sync and collects every result (an error in any is
            # raised here, and the transaction entered on the stack rolls back). A Transaction,
            # not conn.transaction(), which entered in a pipeline would keep pipeline mode on
            # until the transaction ends: the block runs in normal mode (COPY works there).
            with conn.pipeline():
                stack.enter_context(Transaction(conn))
                if metadata is not None:
                    stack.enter_context(Cursor(conn)).execute(_SET_METADATA, (metadata,))
                cur.execute(query, params)
        else:
            stack.enter_context(conn.transaction())
            if metadata is not None:
                stack.enter_context(Cursor(conn)).execute(_SET_METADATA, (metadata,))
            cur.execute(query, params)
        outcome = _context_of(cur.fetchone())
        if isinstance(outcome, TenantContext):
            yield outcome
            return
    # The refusal's transaction has committed, keeping its security event.
    raise outcome


def tenant_transaction(
    conn: Connection[Any],
    tenant_id: UUID | str,
    user_id: str | UUID | None = None,
    *,
    metadata: Mapping[str, object] | None = None,
) -> AbstractContextManager[TenantContext]:
    """Open a transaction on ``conn`` with the tenant set by ``tenancy.set_context``.

    For trusted backends (login roles in ``tenancy_service`` or ``tenancy_admin``). Without
    ``user_id`` the context's role is ``service``; with it, the user must be a member of the
    tenant and the role is theirs. The transaction commits when the block exits normally and
    rolls back when it raises; the tenant context ends with it.

    ``metadata`` (a mapping of JSON values: request id, IP address, user agent …) is set with
    ``tenancy.set_request_metadata`` in the same round trip, just before the context: every
    audit row the transaction writes carries it. A malformed one raises ``TypeError`` or
    ``ValueError`` before anything is sent; the database refuses one over 8 KB (``22023``).
    """
    return _transaction(
        conn, _SET_CONTEXT, _set_context_params(tenant_id, user_id), _metadata_json(metadata)
    )


def authenticated_transaction(
    conn: Connection[Any],
    token: str,
    host: str | None = None,
    *,
    metadata: Mapping[str, object] | None = None,
) -> AbstractContextManager[TenantContext]:
    """Open a transaction on ``conn`` with the tenant and user taken from a JWT.

    For applications (login roles in ``tenancy_app``): ``tenancy.authenticate`` verifies the
    token and the membership. Without ``host`` the tenant is the token's ``tenant_id`` claim;
    with ``host`` (the request's raw ``Host`` header) it is the tenant at that host
    (``tenancy.authenticate(token, host)``: ``TN010`` for a malformed host, ``TN012`` for a host
    without a tenant, ``TN004`` when a ``tenant_id`` claim names another tenant). The
    transaction commits when the block exits normally and rolls back when it raises; the tenant
    context ends with it. ``metadata``: as for :func:`tenant_transaction`.
    """
    return _transaction(conn, *_authenticate(token, host), _metadata_json(metadata))


def api_key_transaction(
    conn: Connection[Any], key: str, *, metadata: Mapping[str, object] | None = None
) -> AbstractContextManager[TenantContext]:
    """Open a transaction on ``conn`` in the tenant of an API key (``tenancy_app`` logins).

    ``tenancy.try_authenticate_api_key`` checks the key (TN004 unknown, revoked or expired;
    TN013 locked out; TN002 tenant not active) and sets a context in its tenant with its role and
    no user (``tenancy.current_api_key_id()`` names the key). A refused key's security event is
    committed, then :class:`AuthenticationRefused` is raised, as for tokens. ``metadata``: as
    for :func:`tenant_transaction`.
    """
    return _transaction(conn, *_api_key(key), _metadata_json(metadata))


@contextmanager
def _pool_transaction(
    pool: ConnectionPool[CT], query: str, params: tuple[Any, ...], metadata: str | None = None
) -> Iterator[tuple[CT, TenantContext]]:
    with pool.connection() as conn, _transaction(conn, query, params, metadata) as ctx:
        yield conn, ctx


def pool_tenant_transaction(
    pool: ConnectionPool[CT],
    tenant_id: UUID | str,
    user_id: str | UUID | None = None,
    *,
    metadata: Mapping[str, object] | None = None,
) -> AbstractContextManager[tuple[CT, TenantContext]]:
    """Borrow a connection from ``pool`` and run :func:`tenant_transaction` on it.

    Yields ``(conn, context)``; the connection goes back to the pool when the block exits,
    after the transaction has ended.
    """
    return _pool_transaction(
        pool, _SET_CONTEXT, _set_context_params(tenant_id, user_id), _metadata_json(metadata)
    )


def pool_authenticated_transaction(
    pool: ConnectionPool[CT],
    token: str,
    host: str | None = None,
    *,
    metadata: Mapping[str, object] | None = None,
) -> AbstractContextManager[tuple[CT, TenantContext]]:
    """Borrow a connection from ``pool`` and run :func:`authenticated_transaction` on it.

    Yields ``(conn, context)``; the connection goes back to the pool when the block exits,
    after the transaction has ended.
    """
    return _pool_transaction(pool, *_authenticate(token, host), _metadata_json(metadata))


def pool_api_key_transaction(
    pool: ConnectionPool[CT], key: str, *, metadata: Mapping[str, object] | None = None
) -> AbstractContextManager[tuple[CT, TenantContext]]:
    """Borrow a connection from ``pool`` and run :func:`api_key_transaction` on it."""
    return _pool_transaction(pool, *_api_key(key), _metadata_json(metadata))


# -- asynchronous connections --------------------------------------------------------------


@asynccontextmanager
async def _atransaction(
    conn: AsyncConnection[Any], query: str, params: tuple[Any, ...], metadata: str | None = None
) -> AsyncIterator[TenantContext]:
    _require_idle(conn)
    async with AsyncExitStack() as stack:
        cur = await stack.enter_async_context(AsyncCursor(conn, row_factory=class_row(_Outcome)))
        if _PIPELINE:
            async with conn.pipeline():  # one round trip, as in _transaction
                await stack.enter_async_context(AsyncTransaction(conn))
                if metadata is not None:
                    meta = await stack.enter_async_context(AsyncCursor(conn))
                    await meta.execute(_SET_METADATA, (metadata,))
                await cur.execute(query, params)
        else:
            await stack.enter_async_context(conn.transaction())
            if metadata is not None:
                meta = await stack.enter_async_context(AsyncCursor(conn))
                await meta.execute(_SET_METADATA, (metadata,))
            await cur.execute(query, params)
        outcome = _context_of(await cur.fetchone())
        if isinstance(outcome, TenantContext):
            yield outcome
            return
    raise outcome  # after the commit that keeps the refusal's security event


def atenant_transaction(
    conn: AsyncConnection[Any],
    tenant_id: UUID | str,
    user_id: str | UUID | None = None,
    *,
    metadata: Mapping[str, object] | None = None,
) -> AbstractAsyncContextManager[TenantContext]:
    """Asynchronous :func:`tenant_transaction`, for ``async with``."""
    return _atransaction(
        conn, _SET_CONTEXT, _set_context_params(tenant_id, user_id), _metadata_json(metadata)
    )


def aauthenticated_transaction(
    conn: AsyncConnection[Any],
    token: str,
    host: str | None = None,
    *,
    metadata: Mapping[str, object] | None = None,
) -> AbstractAsyncContextManager[TenantContext]:
    """Asynchronous :func:`authenticated_transaction`, for ``async with``."""
    return _atransaction(conn, *_authenticate(token, host), _metadata_json(metadata))


@asynccontextmanager
async def _apool_transaction(
    pool: AsyncConnectionPool[ACT],
    query: str,
    params: tuple[Any, ...],
    metadata: str | None = None,
) -> AsyncIterator[tuple[ACT, TenantContext]]:
    async with pool.connection() as conn, _atransaction(conn, query, params, metadata) as ctx:
        yield conn, ctx


def apool_tenant_transaction(
    pool: AsyncConnectionPool[ACT],
    tenant_id: UUID | str,
    user_id: str | UUID | None = None,
    *,
    metadata: Mapping[str, object] | None = None,
) -> AbstractAsyncContextManager[tuple[ACT, TenantContext]]:
    """Asynchronous :func:`pool_tenant_transaction`, for ``async with``."""
    return _apool_transaction(
        pool, _SET_CONTEXT, _set_context_params(tenant_id, user_id), _metadata_json(metadata)
    )


def apool_authenticated_transaction(
    pool: AsyncConnectionPool[ACT],
    token: str,
    host: str | None = None,
    *,
    metadata: Mapping[str, object] | None = None,
) -> AbstractAsyncContextManager[tuple[ACT, TenantContext]]:
    """Asynchronous :func:`pool_authenticated_transaction`, for ``async with``."""
    return _apool_transaction(pool, *_authenticate(token, host), _metadata_json(metadata))


def aapi_key_transaction(
    conn: AsyncConnection[Any], key: str, *, metadata: Mapping[str, object] | None = None
) -> AbstractAsyncContextManager[TenantContext]:
    """Asynchronous :func:`api_key_transaction`, for ``async with``."""
    return _atransaction(conn, *_api_key(key), _metadata_json(metadata))


def apool_api_key_transaction(
    pool: AsyncConnectionPool[ACT], key: str, *, metadata: Mapping[str, object] | None = None
) -> AbstractAsyncContextManager[tuple[ACT, TenantContext]]:
    """Asynchronous :func:`pool_api_key_transaction`, for ``async with``."""
    return _apool_transaction(pool, *_api_key(key), _metadata_json(metadata))
