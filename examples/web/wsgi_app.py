"""A plain WSGI application: the tenant from the Host header, the user from a bearer token.

No framework, the standard library's ``wsgiref`` server and a psycopg pool. Every request runs
in one transaction opened by :func:`pgtenancy.web.pool_request_transaction`: the tenant is the
one at the request's host (``acme.yourplatform.com``, or a verified custom domain), the token
must belong to a member of it, and a ``tenant_id`` claim naming another tenant is refused.

    python examples/web/wsgi_app.py --database-url postgresql://web@db/app --port 8000
    curl -H 'Host: acme.yourplatform.com' -H "Authorization: Bearer $TOKEN" localhost:8000/

``GET /`` answers the context and the number of the tenant's members, as JSON; refusals answer
400 (malformed host), 401 (no or bad token), 403 (not a member), 404 (no tenant at the host).
The login (``web`` above) is a member of ``tenancy_app``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

import psycopg
from psycopg_pool import ConnectionPool

from pgtenancy import reset_session
from pgtenancy.web import RequestError, http_status, pool_request_transaction

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


def make_app(pool: ConnectionPool[Any]) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            with pool_request_transaction(
                pool, environ.get("HTTP_HOST"), environ.get("HTTP_AUTHORIZATION")
            ) as (conn, ctx):
                row = conn.execute("select count(*) from tenancy.memberships").fetchone()
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
                raise  # the server's problem: wsgiref answers 500
            status = found
            body = {"error": str(exc).splitlines()[0]}
            if isinstance(exc, psycopg.Error):
                body["sqlstate"] = exc.sqlstate
        payload = json.dumps(body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        if status == 401:
            headers.append(("WWW-Authenticate", "Bearer"))
        start_response(f"{status} {REASONS[status]}", headers)
        return [payload]

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a login in tenancy_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with (
        ConnectionPool(args.database_url, reset=reset_session, open=True) as pool,
        make_server(args.host, args.port, make_app(pool)) as server,
    ):
        print(f"serving on http://{args.host}:{args.port}/")
        server.serve_forever()


if __name__ == "__main__":
    main()
