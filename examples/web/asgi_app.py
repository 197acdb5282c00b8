"""A plain ASGI application: the tenant from the Host header, the user from a bearer token.

No framework: the ASGI callable itself, with an async psycopg pool opened at lifespan startup
from ``DATABASE_URL`` (a login in ``tenancy_app``). Every request runs in one transaction opened
by :func:`pgtenancy.web.apool_request_transaction`: the tenant is the one at the request's host,
the token must belong to a member of it, and a ``tenant_id`` claim naming another tenant is
refused. Serve it with any ASGI server, e.g.

    DATABASE_URL=postgresql://web@db/app uvicorn --app-dir examples/web asgi_app:app

``GET /`` answers the context and the number of the tenant's members, as JSON; refusals answer
400 (malformed host), 401 (no or bad token), 403 (not a member), 404 (no tenant at the host).
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgtenancy import areset_session
from pgtenancy.web import RequestError, apool_request_transaction, http_status

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def header(scope: Scope, name: bytes) -> bytes | None:
    """A request header's value; repeated headers are joined with commas, as HTTP (and WSGI
    servers) do, so two Host headers make a malformed host rather than a choice."""
    values = [v for k, v in scope.get("headers", []) if k.lower() == name]
    return b",".join(values) if values else None


def make_app(pool: AsyncConnectionPool[Any] | None = None) -> ASGIApp:
    """The application; without ``pool``, one is opened from DATABASE_URL at lifespan startup."""
    state: dict[str, AsyncConnectionPool[Any]] = {}
    if pool is not None:
        state["pool"] = pool

    async def lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if "pool" not in state:
                    opened: AsyncConnectionPool[Any] = AsyncConnectionPool(
                        os.environ["DATABASE_URL"], reset=areset_session, open=False
                    )
                    await opened.open()
                    state["pool"] = opened
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if pool is None and "pool" in state:
                    await state.pop("pool").close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"unsupported ASGI scope type {scope['type']!r}")
        try:
            async with apool_request_transaction(
                state["pool"], header(scope, b"host"), header(scope, b"authorization")
            ) as (conn, ctx):
                cur = await conn.execute("select count(*) from tenancy.memberships")
                row = await cur.fetchone()
            status = 200
            body: dict[str, Any] = {
                "tenant_id": str(ctx.tenant_id),
                "user_id": ctx.user_id,
                "role": ctx.role,
                "members": row[0] if row else 0,
            }
        except (RequestError, psycopg.Error) as exc:
            found = http_status(exc)
            if found is None:
                raise  # the server's problem: the ASGI server answers 500
            status = found
            body = {"error": str(exc).splitlines()[0]}
            if isinstance(exc, psycopg.Error):
                body["sqlstate"] = exc.sqlstate
        payload = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json")]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


app = make_app()
