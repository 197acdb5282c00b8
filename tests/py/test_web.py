"""pgtenancy.web and the example apps in examples/web, against the real database.

The WSGI example is served by the standard library's wsgiref on 127.0.0.1 in a thread and
asked over real HTTP (urllib); the ASGI example is called as ASGI servers call it, with real
scope dictionaries, lifespan included.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psycopg
import pytest
from conftest import REPO, Roles, Tenant, add_member, new_user_id, token_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from test_authenticate_host import DOCUMENTED, host_of, no_tenant_token
from test_domains import domains  # noqa: F401 (fixture)

from pgtenancy import reset_session
from pgtenancy.web import (
    RequestError,
    apool_request_transaction,
    arequest_transaction,
    bearer_token,
    http_status,
    pool_request_transaction,
    request_host,
    request_transaction,
)

pytestmark = pytest.mark.usefixtures("domains")  # every base domain configured


def load_example(name: str) -> ModuleType:
    path = REPO / "examples" / "web" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- parsing the headers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["Bearer abc.def-_~+/==", "bearer abc", "BEARER   abc  ", b"Bearer abc", "Bearer\tabc"],
)
def test_bearer_token_accepts_every_spelling_of_the_scheme(header: str | bytes) -> None:
    assert bearer_token(header).startswith("abc")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "no Authorization header: send 'Authorization: Bearer <token>'"),
        ("  ", "no Authorization header: send 'Authorization: Bearer <token>'"),
        ("Basic dXNlcjpwYXNz", "Authorization scheme 'Basic' is not Bearer"),
        ("eyJhbGciOiJIUzI1NiJ9.e30.sig", "the Authorization header is not 'Bearer <token>'"),
        ("Bearer", "the Authorization header says Bearer but carries no token"),
        ("Bearer a b", "the Authorization header carries more than one bearer token"),
        ("Bearer a=b", "the bearer token holds characters outside"),
        ("Bearer é", "the bearer token holds characters outside"),
    ],
)
def test_bearer_token_refusals_are_401_and_never_echo_the_token(
    header: str | None, message: str
) -> None:
    with pytest.raises(RequestError) as info:
        bearer_token(header)
    assert str(info.value).startswith(message)
    assert info.value.status == 401
    assert http_status(info.value) == 401
    assert "dXNlcjpwYXNz" not in str(info.value) and "eyJ" not in str(info.value)


@pytest.mark.parametrize("host", [None, "", "  ", "a\x00.saas.test", "\ud800.saas.test"])
def test_request_host_refusals_are_400(host: str | None) -> None:
    with pytest.raises(RequestError) as info:
        request_host(host)
    assert info.value.status == 400


def test_request_host_decodes_bytes_as_latin1() -> None:
    assert request_host(b"Acme.saas.test:8443") == "Acme.saas.test:8443"
    assert request_host("bücher.saas.test".encode()) == "bÃ¼cher.saas.test"  # then TN010


def test_header_values_of_another_type_are_refused() -> None:
    with pytest.raises(TypeError):
        bearer_token(42)  # type: ignore[arg-type]


# -- the helpers against the database --------------------------------------------------------


def test_request_transaction_sync_and_pool(roles: Roles, make_tenant: Callable[[], Tenant]) -> None:
    a, b = make_tenant(), make_tenant()
    auth = f"Bearer {token_for(a.id, a.owner)}"
    with psycopg.connect(roles.app) as conn:
        with request_transaction(conn, host_of(a).encode(), auth.encode()) as ctx:
            assert (ctx.tenant_id, ctx.role) == (a.id, "owner")
        with pytest.raises(psycopg.Error) as info, request_transaction(conn, host_of(b), auth):
            pass
        assert http_status(info.value) == 401 and info.value.sqlstate == "TN004"
        # A header problem is raised before the connection is touched.
        with pytest.raises(RequestError):
            request_transaction(conn, host_of(a), "Basic x")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with ConnectionPool(roles.app, min_size=1, max_size=1, open=True) as pool:
        with pool_request_transaction(pool, host_of(a), auth) as (_, ctx):
            assert ctx.tenant_id == a.id
        with (
            pytest.raises(psycopg.Error) as info,
            pool_request_transaction(pool, "nobody-here.saas.test", auth),
        ):
            pass
        assert http_status(info.value) == 404


async def test_request_transaction_async_and_pool(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a = make_tenant()
    stranger = f"Bearer {no_tenant_token(new_user_id())}"
    auth = f"Bearer {no_tenant_token(a.owner)}"
    async with await psycopg.AsyncConnection.connect(roles.app) as conn:
        async with arequest_transaction(conn, host_of(a), auth) as ctx:
            assert ctx.tenant_id == a.id
        with pytest.raises(psycopg.Error) as info:
            async with arequest_transaction(conn, host_of(a), stranger):
                pass
        assert http_status(info.value) == 403
    async with AsyncConnectionPool(roles.app, min_size=1, max_size=1, open=False) as pool:
        async with apool_request_transaction(pool, host_of(a), auth) as (_, ctx):
            assert ctx.tenant_id == a.id
        with pytest.raises(psycopg.Error) as info:
            async with apool_request_transaction(pool, "a..saas.test", auth):
                pass
        assert http_status(info.value) == 400


# -- the WSGI example over real HTTP ------------------------------------------------------------


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def wsgi_url(roles: Roles) -> Iterator[str]:
    app = load_example("wsgi_app").make_app
    with ConnectionPool(roles.app, min_size=1, max_size=2, reset=reset_session, open=True) as pool:
        server: WSGIServer = make_server("127.0.0.1", 0, app(pool), handler_class=QuietHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}/"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


def get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def test_wsgi_example(wsgi_url: str, roles: Roles, make_tenant: Callable[[], Tenant]) -> None:
    a, b = make_tenant(), make_tenant()
    member = add_member(roles, a, "member")
    token = f"Bearer {token_for(a.id, member)}"

    status, body, _ = get(wsgi_url, {"Host": host_of(a) + ":8443", "Authorization": token})
    assert status == 200
    assert body == {"tenant_id": str(a.id), "user_id": member, "role": "member", "members": 2}

    status, body, headers = get(wsgi_url, {"Host": host_of(b), "Authorization": token})
    assert (status, body["sqlstate"]) == (401, "TN004")
    assert headers["WWW-Authenticate"] == "Bearer"
    assert str(a.id) in body["error"] and str(b.id) in body["error"]

    status, body, _ = get(wsgi_url, {"Host": host_of(a)})
    assert status == 401 and body["error"].startswith("no Authorization header")
    status, body, _ = get(wsgi_url, {"Host": host_of(a), "Authorization": "Basic dXNlcg=="})
    assert status == 401 and "Basic" in body["error"]
    status, body, _ = get(
        wsgi_url, {"Host": host_of(a), "Authorization": f"Bearer {no_tenant_token(new_user_id())}"}
    )
    assert (status, body["sqlstate"]) == (403, "TN003")
    status, body, _ = get(wsgi_url, {"Host": "nobody-here.saas.test", "Authorization": token})
    assert (status, body["sqlstate"]) == (404, "TN012")
    status, body, _ = get(wsgi_url, {"Host": "a..saas.test", "Authorization": token})
    assert (status, body["sqlstate"]) == (400, "TN010")


# -- the ASGI example, called as a server calls it -----------------------------------------------


async def call_asgi(app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, Any]]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return sent[0]["status"], json.loads(sent[1]["body"])


async def lifespan(app: Any, event: str) -> str:
    messages = [{"type": f"lifespan.{event}"}]
    replies: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.sleep(3600)  # the server would wait for shutdown
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        replies.append(message)

    task = asyncio.ensure_future(app({"type": "lifespan"}, receive, send))
    for _ in range(500):
        if replies:
            break
        await asyncio.sleep(0.01)
    if event == "startup":
        task.cancel()
    else:
        await task
    return str(replies[0]["type"])


async def test_asgi_example(
    roles: Roles,
    make_tenant: Callable[[], Tenant],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = make_tenant(), make_tenant()
    monkeypatch.setenv("DATABASE_URL", roles.app)
    app = load_example("asgi_app").make_app()  # its pool opens at lifespan startup
    assert await lifespan(app, "startup") == "lifespan.startup.complete"
    try:
        auth = (b"authorization", f"Bearer {no_tenant_token(a.owner)}".encode())
        status, body = await call_asgi(app, [(b"host", host_of(a).encode()), auth])
        assert status == 200
        assert body == {"tenant_id": str(a.id), "user_id": a.owner, "role": "owner", "members": 1}
        # The same token on B's host: not a member there.
        status, body = await call_asgi(app, [(b"host", host_of(b).encode()), auth])
        assert (status, body["sqlstate"]) == (403, "TN003")
        claim_a = (b"authorization", f"Bearer {token_for(a.id, a.owner)}".encode())
        status, body = await call_asgi(app, [(b"host", host_of(b).encode()), claim_a])
        assert (status, body["sqlstate"]) == (401, "TN004")
        # Two Host headers are not a choice: joined, they are a malformed host.
        status, body = await call_asgi(
            app, [(b"host", host_of(b).encode()), (b"host", host_of(a).encode()), auth]
        )
        assert (status, body["sqlstate"]) == (400, "TN010")
        status, body = await call_asgi(app, [auth])
        assert status == 400 and body["error"].startswith("no Host header")
        status, body = await call_asgi(app, [(b"host", host_of(a).encode())])
        assert status == 401
    finally:
        assert await lifespan(app, "shutdown") == "lifespan.shutdown.complete"


# -- the property: any headers give a context, a RequestError or a documented SQLSTATE ------------


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    host=st.one_of(st.none(), st.text(st.characters(), max_size=100), st.binary(max_size=100)),
    authorization=st.one_of(
        st.none(),
        st.text(st.characters(), max_size=100),
        st.text(st.characters(), max_size=100).map(lambda t: "Bearer " + t),
        st.binary(max_size=100),
    ),
)
def test_any_headers_give_a_documented_outcome(
    roles: Roles, host: str | bytes | None, authorization: str | bytes | None
) -> None:
    with psycopg.connect(roles.app) as conn:
        try:
            with request_transaction(conn, host, authorization):
                pass
        except RequestError as exc:
            assert exc.status in (400, 401)
            return
        except psycopg.Error as exc:
            assert exc.sqlstate in DOCUMENTED, (host, authorization, exc.sqlstate, str(exc))
            assert http_status(exc) in (400, 401, 403, 404)
            return
    raise AssertionError(f"arbitrary headers authenticated: {host!r} {authorization!r}")
