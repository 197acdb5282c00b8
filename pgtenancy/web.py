"""Framework-neutral request helpers: (Host header, Authorization header) to a tenant transaction.

A web request names its tenant twice: by the host it was sent to and, optionally, by the
``tenant_id`` claim of its bearer token. :func:`request_transaction` (and its pool and async
variants) parses ``Authorization: Bearer <token>``, hands the raw ``Host`` header and the token
to ``tenancy.authenticate(token, host)``, and returns the context manager of
:func:`pgtenancy.authenticated_transaction`: the tenant is the host's, the token must belong to
a member of it, and a ``tenant_id`` claim naming another tenant is refused.

Header values are taken as the server hands them over: ``str`` (WSGI's ``environ``) or
``bytes`` (ASGI's ``scope["headers"]``, decoded as ISO-8859-1, as HTTP defines). Nothing here
depends on a framework; :func:`http_status` maps what the helpers and the database raise to the
status code to answer. Examples: ``examples/web/wsgi_app.py`` and ``examples/web/asgi_app.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, TypeVar

from psycopg import AsyncConnection, Connection
from psycopg import Error as DatabaseError
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from .context import (
    TenantContext,
    aauthenticated_transaction,
    apool_authenticated_transaction,
    authenticated_transaction,
    pool_authenticated_transaction,
)

__all__ = [
    "RequestError",
    "apool_request_transaction",
    "arequest_transaction",
    "bearer_token",
    "http_status",
    "pool_request_transaction",
    "request_host",
    "request_transaction",
]

CT = TypeVar("CT", bound=Connection[Any])
ACT = TypeVar("ACT", bound=AsyncConnection[Any])

# RFC 6750: credentials = "Bearer" 1*SP b64token; b64token = 1*( ALPHA / DIGIT / "-" / "." /
# "_" / "~" / "+" / "/" ) *"=". The scheme is case-insensitive; any whitespace separates. A
# scheme is named in messages only when it looks like one (a token is never echoed).
_SCHEME = re.compile(r"\A[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,19}\Z")
_TOKEN68 = re.compile(r"\A[A-Za-z0-9._~+/-]+=*\Z")

# What the database raises for a request, and the status to answer.
_STATUS_OF_SQLSTATE = {
    "TN010": 400,  # malformed host
    "TN012": 404,  # no tenant at this host
    "TN004": 401,  # invalid token, or a tenant_id claim naming another tenant
    "TN003": 403,  # not a member of the host's tenant
    "TN002": 403,  # the tenant stopped being active while the request was authenticated
    "TN013": 429,  # too many failed attempts for this user, key or host: locked out for now
}


class RequestError(ValueError):
    """The request's headers cannot be authenticated; ``status`` is the HTTP status to answer:
    401 for a missing or malformed ``Authorization`` header, 400 for a missing or unusable
    ``Host`` header. The message never holds the token."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _text(value: str | bytes | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("iso-8859-1")
    raise TypeError(f"a header value must be str or bytes, got {type(value).__name__}")


def bearer_token(authorization: str | bytes | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value.

    Raises :class:`RequestError` (status 401) when the header is missing or empty, uses another
    scheme (named in the message), carries no token, more than one, or characters outside a
    bearer token (``A-Z a-z 0-9 - . _ ~ + /`` and trailing ``=``). Whether the token is a valid
    JWT is for the database to say (``TN004``).
    """
    text = _text(authorization)
    if text is None or not text.strip():
        raise RequestError(
            "no Authorization header: send 'Authorization: Bearer <token>'", status=401
        )
    parts = text.split()
    scheme = parts[0]
    if scheme.lower() != "bearer":
        if len(parts) > 1 and _SCHEME.match(scheme):
            raise RequestError(
                f"Authorization scheme {scheme!r} is not Bearer: send "
                "'Authorization: Bearer <token>'",
                status=401,
            )
        raise RequestError(
            "the Authorization header is not 'Bearer <token>' (no scheme before the credentials)",
            status=401,
        )
    if len(parts) == 1:
        raise RequestError("the Authorization header says Bearer but carries no token", 401)
    if len(parts) > 2:
        raise RequestError("the Authorization header carries more than one bearer token", 401)
    if not _TOKEN68.match(parts[1]):
        raise RequestError(
            "the bearer token holds characters outside A-Z a-z 0-9 - . _ ~ + / and trailing =",
            status=401,
        )
    return parts[1]


def request_host(host: str | bytes | None) -> str:
    """The raw ``Host`` header as text, for ``tenancy.authenticate(token, host)``.

    Raises :class:`RequestError` (status 400) when it is missing or empty, or holds a NUL
    character (which PostgreSQL text cannot carry) or a lone surrogate (a ``str`` no encoding
    carries: never from a real request). Everything else (case, ``:port``, IP
    literals, malformed names) is for the database to judge: ``TN010`` or ``TN012``.
    """
    text = _text(host)
    if text is None or not text.strip():
        raise RequestError("no Host header: the tenant is taken from the host", status=400)
    if "\x00" in text:
        raise RequestError("malformed Host header: it holds a NUL character", status=400)
    try:
        text.encode()
    except UnicodeEncodeError:
        raise RequestError(
            "malformed Host header: it holds a lone surrogate, which no text encoding carries",
            status=400,
        ) from None
    return text


def request_transaction(
    conn: Connection[Any],
    host: str | bytes | None,
    authorization: str | bytes | None,
    *,
    metadata: Mapping[str, object] | None = None,
) -> AbstractContextManager[TenantContext]:
    """:func:`pgtenancy.authenticated_transaction` for a request's ``Host`` and
    ``Authorization`` headers: the tenant at the host, the user of the bearer token.

    Header problems raise :class:`RequestError` before the database is asked; the database's
    refusals arrive as ``psycopg.Error`` when the block is entered (see :func:`http_status`).
    """
    return authenticated_transaction(
        conn, bearer_token(authorization), request_host(host), metadata=metadata
    )


def pool_request_transaction(
    pool: ConnectionPool[CT],
    host: str | bytes | None,
    authorization: str | bytes | None,
    *,
    metadata: Mapping[str, object] | None = None,
) -> AbstractContextManager[tuple[CT, TenantContext]]:
    """:func:`request_transaction` on a connection borrowed from ``pool``: yields
    ``(conn, context)``, as :func:`pgtenancy.pool_authenticated_transaction`."""
    return pool_authenticated_transaction(
        pool, bearer_token(authorization), request_host(host), metadata=metadata
    )


def arequest_transaction(
    conn: AsyncConnection[Any],
    host: str | bytes | None,
    authorization: str | bytes | None,
    *,
    metadata: Mapping[str, object] | None = None,
) -> AbstractAsyncContextManager[TenantContext]:
    """Asynchronous :func:`request_transaction`, for ``async with``."""
    return aauthenticated_transaction(
        conn, bearer_token(authorization), request_host(host), metadata=metadata
    )


def apool_request_transaction(
    pool: AsyncConnectionPool[ACT],
    host: str | bytes | None,
    authorization: str | bytes | None,
    *,
    metadata: Mapping[str, object] | None = None,
) -> AbstractAsyncContextManager[tuple[ACT, TenantContext]]:
    """Asynchronous :func:`pool_request_transaction`, for ``async with``."""
    return apool_authenticated_transaction(
        pool, bearer_token(authorization), request_host(host), metadata=metadata
    )


def http_status(exc: BaseException) -> int | None:
    """The HTTP status for what authenticating a request raised, or None (answer 500).

    :class:`RequestError`: its ``status``. From the database: ``TN010`` (malformed host) 400,
    ``TN012`` (no tenant at the host) 404, ``TN004`` (invalid token, or a ``tenant_id`` claim
    naming another tenant) 401, ``TN003`` (not a member) and ``TN002`` (tenant not active) 403.
    Anything else (``TN008``, ``55000`` when JWT verification is not configured, a lost
    connection) is the server's problem: None.
    """
    if isinstance(exc, RequestError):
        return exc.status
    if isinstance(exc, DatabaseError) and exc.sqlstate is not None:
        return _STATUS_OF_SQLSTATE.get(exc.sqlstate)
    return None
