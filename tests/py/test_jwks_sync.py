"""``pgtenancy jwks sync`` against a JWKS served over real HTTP from 127.0.0.1.

The server (``http.server`` in a thread) changes its documents between runs: a key published
later is a rotation, a key no longer published a revocation, and tokens minted with PyJWT show
both taking effect on a session that stays open throughout, its verified-token cache included.
Every way a fetch can go wrong (a status other than 200, a timeout, a body that trickles in, a
redirect, an oversized, compressed, non-UTF-8 or non-JSON body, a set without usable keys, a key
with private members, a closed port, plain http to another host) is reported, leaves that
issuer's stored keys as they were, and does not stop the issuer synced in the same run.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import psycopg
import pytest
from conftest import PGTENANCY, REPO, Roles, Tenant, run_cli
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from pgtenancy import testing
from pgtenancy.cli import main
from pgtenancy.jwks import shown

MB = 1_048_576


def b64(value: int, length: int | None = None) -> str:
    data = value.to_bytes(length or (value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Key:
    kid: str
    private: Any  # rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @property
    def alg(self) -> str:
        return "RS256" if isinstance(self.private, rsa.RSAPrivateKey) else "ES256"

    def jwk(self, **extra: Any) -> dict[str, Any]:
        numbers = self.private.public_key().public_numbers()
        if self.alg == "RS256":
            out = {"kty": "RSA", "n": b64(numbers.n), "e": b64(numbers.e)}
        else:
            out = {"kty": "EC", "crv": "P-256", "x": b64(numbers.x, 32), "y": b64(numbers.y, 32)}
        return {**out, "kid": self.kid, "use": "sig", "alg": self.alg, **extra}

    def private_jwk(self) -> dict[str, Any]:
        """The JWK with the private members (RFC 7518 6.3.2): published by mistake."""
        n = self.private.private_numbers()
        return self.jwk(
            d=b64(n.d), p=b64(n.p), q=b64(n.q), dp=b64(n.dmp1), dq=b64(n.dmq1), qi=b64(n.iqmp)
        )


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    """k1, k2 (RSA 2048), k3 (P-256) and enc (an RSA encryption key, which sync skips)."""
    return {
        "k1": Key("k1", rsa.generate_private_key(65537, 2048)),
        "k2": Key("k2", rsa.generate_private_key(65537, 2048)),
        "k3": Key("k3", ec.generate_private_key(ec.SECP256R1())),
        "enc": Key("enc", rsa.generate_private_key(65537, 2048)),
    }


def jwks(*jwk: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(jwk)}).encode()


# -- the HTTP server ---------------------------------------------------------------------------


@dataclass
class Reply:
    """What the server answers on one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    drip: float = 0.0  # seconds between bytes of the body (0: all at once)
    length: bool = True  # send Content-Length (else the body ends when the connection closes)


class JwksServer:
    """An HTTP/1.0 server on 127.0.0.1 answering each path with its Reply (404 otherwise)."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # The reply is chosen before the request is counted: a counted request has its
                # answer whatever the test publishes next.
                reply = outer.replies.get(self.path, Reply(b"not found", 404))
                outer.requests.append((self.path, dict(self.headers.items())))
                time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.length:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    if not reply.drip:
                        self.wfile.write(reply.body)
                        return
                    for i in range(len(reply.body)):
                        self.wfile.write(reply.body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(reply.drip)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


@pytest.fixture(scope="module")
def server() -> Iterator[JwksServer]:
    with JwksServer() as s:
        yield s


# -- issuers, tokens, stored keys --------------------------------------------------------------


@dataclass(frozen=True)
class Issuer:
    issuer: str
    audience: str
    path: str  # where the server publishes its JWKS


@pytest.fixture
def make_issuer(roles: Roles, server: JwksServer) -> Iterator[Callable[..., Issuer]]:
    """Factory: a trusted issuer (platform-wide, or ``tenant``'s own) whose JWKS URL is on the
    test server (or ``url``); removed afterwards."""
    made: list[tuple[str, Any]] = []

    def make(tenant: Tenant | None = None, url: str | None = None) -> Issuer:
        name = uuid.uuid4().hex[:10]
        issuer = Issuer(f"https://idp-{name}.example.test/", f"api-{name}", f"/{name}/jwks.json")
        with psycopg.connect(roles.admin, autocommit=True) as conn:
            conn.execute(
                "select tenancy.configure_issuer(%s, %s, p_jwks_url => %s, "
                "p_algorithms => array['RS256', 'ES256'], p_tenant_id => %s)",
                (
                    issuer.issuer,
                    [issuer.audience],
                    url or server.url(issuer.path),
                    tenant.id if tenant else None,
                ),
            )
        made.append((issuer.issuer, tenant.id if tenant else None))
        return issuer

    yield make
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        for name, tenant_id in made:
            conn.execute("select tenancy.remove_issuer(%s, %s)", (name, tenant_id))


def token(key: Key, issuer: Issuer, tenant: Tenant, tenant_claim: bool = True) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "sub": tenant.owner,
        "iat": now,
        "exp": now + 300,
    }
    if tenant_claim:
        claims["tenant_id"] = str(tenant.id)
    return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid})


def authenticate(conn: psycopg.Connection[Any], tok: str) -> tuple[Any, ...] | psycopg.Error:
    """The context the token sets (tenant, user, role), or the error refusing it."""
    try:
        with conn.transaction():
            row = conn.execute("select * from tenancy.authenticate(%s)", (tok,)).fetchone()
            assert row is not None
            return tuple(row)
    except psycopg.Error as exc:
        return exc


def refused(result: tuple[Any, ...] | psycopg.Error, message: str) -> bool:
    return (
        isinstance(result, psycopg.Error) and result.sqlstate == "TN004" and message in str(result)
    )


def stored(roles: Roles, issuer: Issuer) -> dict[str, Any]:
    """The issuer's stored keys by kid (their JWKs), read as the superuser."""
    with psycopg.connect(roles.superuser) as conn:
        rows = conn.execute(
            "select k.kid, k.jwk from tenancy.jwt_keys as k "
            "join tenancy.jwt_issuers as i on i.id = k.issuer_id where i.issuer = %s",
            (issuer.issuer,),
        ).fetchall()
    return dict(rows)


def synced_at(roles: Roles, issuer: Issuer) -> Any:
    with psycopg.connect(roles.superuser) as conn:
        row = conn.execute(
            "select jwks_synced_at from tenancy.jwt_issuers where issuer = %s", (issuer.issuer,)
        ).fetchone()
    assert row is not None
    return row[0]


def set_jwks(roles: Roles, issuer: Issuer, document: bytes) -> None:
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute(
            "select tenancy.set_jwks(%s, %s)", (issuer.issuer, Jsonb(json.loads(document)))
        )


def sync(
    url: str, *issuers: Issuer, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    named = [arg for i in issuers for arg in ("--issuer", i.issuer)]
    return run_cli("jwks", "sync", "--database-url", url, *named, *extra)


@pytest.fixture
def app_conn(roles: Roles) -> Iterator[psycopg.Connection[Any]]:
    """One application session for the whole test: nothing is restarted between syncs."""
    with psycopg.connect(roles.app, autocommit=True) as conn:
        yield conn


# -- rotation and revocation -------------------------------------------------------------------


def test_rotation_and_revocation_take_effect_without_restarting(
    roles: Roles,
    server: JwksServer,
    keys: dict[str, Key],
    make_tenant: Callable[[], Tenant],
    make_issuer: Callable[..., Issuer],
    app_conn: psycopg.Connection[Any],
) -> None:
    tenant = make_tenant()
    issuer = make_issuer()
    k1, k2, k3, enc = keys["k1"], keys["k2"], keys["k3"], keys["enc"]
    t1, t2, t3 = token(k1, issuer, tenant), token(k2, issuer, tenant), token(k3, issuer, tenant)
    context = (tenant.id, tenant.owner, "owner")

    # No keys yet: every token refused.
    assert refused(
        authenticate(app_conn, t1), f"token key 'k1' is not a key of issuer '{issuer.issuer}'"
    )

    server.replies[issuer.path] = Reply(jwks(k1.jwk()))
    res = sync(roles.admin, issuer)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"synced {issuer.issuer}: 1 added, 0 removed, 0 kept, 0 skipped\n"
    first_sync = synced_at(roles, issuer)
    assert first_sync is not None
    assert authenticate(app_conn, t1) == context
    assert authenticate(app_conn, t1) == context  # the second time from the verified-token cache
    # Rotation: k2 is not published yet, so its token is refused ...
    assert refused(authenticate(app_conn, t2), "token key 'k2' is not a key of")

    # ... and accepted once the next sync stores it (an encryption key is skipped).
    server.replies[issuer.path] = Reply(jwks(k1.jwk(), k2.jwk(), k3.jwk(), enc.jwk(use="enc")))
    res = sync(roles.admin, issuer)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"synced {issuer.issuer}: 2 added, 0 removed, 1 kept, 1 skipped\n"
    assert authenticate(app_conn, t2) == context
    assert authenticate(app_conn, t3) == context  # ES256
    assert authenticate(app_conn, t1) == context
    assert sorted(stored(roles, issuer)) == ["k1", "k2", "k3"]

    # Revocation: k1 withdrawn. Its token was verified and cached before ...
    with psycopg.connect(roles.superuser) as conn:
        cached = conn.execute(
            "select count(*) from tenancy.verified_tokens as t join tenancy.jwt_issuers as i "
            "on i.id = t.issuer_id where i.issuer = %s and t.kid = 'k1'",
            (issuer.issuer,),
        ).fetchone()
    assert cached == (1,)
    server.replies[issuer.path] = Reply(jwks(k2.jwk(), k3.jwk()))
    res = sync(roles.admin, issuer)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"synced {issuer.issuer}: 0 added, 1 removed, 2 kept, 0 skipped\n"
    # ... and is refused from the next authentication on, on the same session.
    assert refused(authenticate(app_conn, t1), "token key 'k1' is not a key of")
    assert authenticate(app_conn, t2) == context
    assert sorted(stored(roles, issuer)) == ["k2", "k3"]
    assert synced_at(roles, issuer) > first_sync

    # An unchanged set changes nothing.
    res = sync(roles.admin, issuer)
    assert res.stdout == f"synced {issuer.issuer}: 0 added, 0 removed, 2 kept, 0 skipped\n"
    assert authenticate(app_conn, t2) == context

    # What the server saw: a GET asking for a JWKS, uncompressed.
    _, headers = server.requests[-1]
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["accept"] == "application/jwk-set+json, application/json"
    assert lower["accept-encoding"] == "identity"
    assert lower["user-agent"].startswith("pgtenancy/")


def test_a_tenants_own_identity_provider_is_synced(
    roles: Roles,
    server: JwksServer,
    keys: dict[str, Key],
    make_tenant: Callable[[], Tenant],
    make_issuer: Callable[..., Issuer],
    app_conn: psycopg.Connection[Any],
) -> None:
    tenant = make_tenant()
    issuer = make_issuer(tenant)
    tok = token(keys["k1"], issuer, tenant, tenant_claim=False)
    assert refused(authenticate(app_conn, tok), "token key 'k1' is not a key of")
    server.replies[issuer.path] = Reply(jwks(keys["k1"].jwk()))
    res = sync(roles.admin, issuer)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"synced {issuer.issuer}: 1 added, 0 removed, 0 kept, 0 skipped\n"
    # No tenant claim: the issuer's tenant is the one.
    assert authenticate(app_conn, tok) == (tenant.id, tenant.owner, "owner")


# -- failures ----------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def failures(
    keys: dict[str, Key], server: JwksServer, good_url: str
) -> dict[str, tuple[Reply | str, str]]:
    """Each failing case: what the server answers (or the issuer's URL), and the error."""
    k1, k2 = keys["k1"], keys["k2"]
    server.replies["/with-credentials"] = Reply(b"", 503)
    good = jwks(k1.jwk(), k2.jwk())
    big = json.dumps({"keys": [k1.jwk()], "padding": "x" * MB}).encode()
    return {
        "500": (Reply(b"oops", 500), "HTTP 500 Internal Server Error"),
        "404": (Reply(b"", 404), "HTTP 404 Not Found"),
        "timeout": (Reply(good, delay=3), "timed out after 0.5 s (ReadTimeout)"),
        "trickle": (Reply(good, drip=0.05), "the body took longer than 0.5 s to arrive"),
        "redirect": (
            Reply(status=302, headers={"Location": good_url}),
            f"HTTP 302 redirect to '{good_url}', not followed",
        ),
        "redirect to file": (
            Reply(status=301, headers={"Location": "file:///etc/passwd"}),
            "HTTP 301 redirect to 'file:///etc/passwd', not followed",
        ),
        "oversized": (Reply(big), f"the body of {len(big)} bytes is larger than {MB} bytes"),
        "oversized streamed": (Reply(big, length=False), f"the body is larger than {MB} bytes"),
        "compressed": (
            Reply(gzip.compress(good), headers={"Content-Encoding": "gzip"}),
            "the body is compressed (gzip) although identity was asked",
        ),
        "not UTF-8": (Reply(b'{"keys": ["\xff"]}'), "the body is not UTF-8"),
        "not JSON": (Reply(b"<html>maintenance</html>"), "the body is not JSON (Expecting value"),
        "NaN": (Reply(b'{"keys": [], "x": NaN}'), "the body is not JSON (NaN is not JSON)"),
        "nested": (
            Reply(b'{"keys": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
            "the body is not a JWKS: JSON nested too deeply",
        ),
        "long redirect": (
            Reply(status=307, headers={"Location": "/" + "x" * 5000}),
            "HTTP 307 redirect to '/" + "x" * 199 + "...', not followed",
        ),
        "not a JWKS": (
            Reply(b'{"keys": {}}'),
            'the body is not a JWKS: a JSON object with a "keys"',
        ),
        "empty": (Reply(jwks()), "the JWKS lists no key: storing it would revoke every key"),
        "unusable": (
            Reply(jwks(keys["enc"].jwk(use="enc"), {"kty": "oct", "kid": "s", "alg": "HS256"})),
            "the JWKS holds no key pgtenancy can use (2 skipped",
        ),
        "private key": (
            Reply(jwks(k1.jwk(), k2.private_jwk())),
            "refused by the database (22023): JWK 'k2' refused: it holds private key member(s) "
            "d, p, q, dp, dq, qi (A JWKS publishes public keys only: this private key has been "
            "exposed and should be replaced.)",
        ),
        "weak key": (
            Reply(jwks(Key("small", rsa.generate_private_key(65537, 1024)).jwk())),
            "refused by the database (22023): JWK 'small' refused: RSA modulus of 1024 bits",
        ),
        "closed port": (f"http://127.0.0.1:{closed_port()}/jwks.json", "ConnectError"),
        "credentials": (
            f"http://user:hunter2@127.0.0.1:{server.port}/with-credentials",
            "HTTP 503 Service Unavailable",
        ),
        "plain http": ("http://jwks.example.test/jwks.json", "plain http: anyone on the path"),
    }


def test_a_failing_fetch_leaves_the_keys_and_the_other_issuers_alone(
    roles: Roles,
    server: JwksServer,
    keys: dict[str, Key],
    make_tenant: Callable[[], Tenant],
    make_issuer: Callable[..., Issuer],
    app_conn: psycopg.Connection[Any],
) -> None:
    tenant = make_tenant()
    healthy = make_issuer()
    server.replies[healthy.path] = Reply(jwks(keys["k1"].jwk(), keys["k2"].jwk()))
    cases = failures(keys, server, server.url(healthy.path))
    broken: dict[str, Issuer] = {}
    for name, (reply, _) in cases.items():
        if isinstance(reply, Reply):
            broken[name] = make_issuer()
            server.replies[broken[name].path] = reply
        else:
            broken[name] = make_issuer(url=reply)
    # Each issuer's keys as a sync stored them earlier: k1.
    before = jwks(keys["k1"].jwk())
    for issuer in [healthy, *broken.values()]:
        set_jwks(roles, issuer, before)
    stored_before = {n: (stored(roles, i), synced_at(roles, i)) for n, i in broken.items()}
    hits = {n: server.hits(i.path) for n, i in broken.items()}

    started = time.monotonic()
    res = sync(roles.admin, healthy, *broken.values(), extra=("--timeout", "0.5"))
    elapsed = time.monotonic() - started
    assert res.returncode == 1, (res.stdout, res.stderr)
    # The healthy issuer, synced in the same run, got its new key.
    assert res.stdout == f"synced {healthy.issuer}: 1 added, 0 removed, 1 kept, 0 skipped\n"
    assert sorted(stored(roles, healthy)) == ["k1", "k2"]
    lines = res.stderr.splitlines()
    assert len(lines) == len(cases), res.stderr
    for name, (reply, error) in cases.items():
        issuer = broken[name]
        url = server.url(issuer.path) if isinstance(reply, Reply) else reply
        (line,) = [x for x in lines if x.startswith(f"pgtenancy: jwks sync: {issuer.issuer}: ")]
        assert error in line, (name, line)
        if not error.startswith("refused by the database"):
            assert f": {shown(url)}: " in line, (name, line)
        assert line.endswith(")") and "; its keys are unchanged (last stored 20" in line, line
        assert (stored(roles, issuer), synced_at(roles, issuer)) == stored_before[name], name
        assert stored(roles, issuer)["k1"] == keys["k1"].jwk()
        # The key stored before still admits its tokens.
        tok = token(keys["k1"], issuer, tenant)
        assert authenticate(app_conn, tok) == (tenant.id, tenant.owner, "owner"), name
        if isinstance(reply, Reply):
            assert server.hits(issuer.path) == hits[name] + 1, name
    # Private key material and passwords in URLs are never repeated.
    assert keys["k2"].private_jwk()["d"] not in res.stderr
    assert "hunter2" not in res.stderr
    assert f"127.0.0.1:{server.port}/with-credentials: HTTP 503" in res.stderr
    # The redirects were not followed: the healthy issuer's document was fetched once.
    assert server.hits(healthy.path) == 1
    # Two fetches cut off at 0.5 s, the others at once.
    assert elapsed < 6, elapsed


def test_allow_empty_revokes_every_key(
    roles: Roles,
    server: JwksServer,
    keys: dict[str, Key],
    make_tenant: Callable[[], Tenant],
    make_issuer: Callable[..., Issuer],
    app_conn: psycopg.Connection[Any],
) -> None:
    tenant = make_tenant()
    empty, unusable = make_issuer(), make_issuer()
    for issuer in (empty, unusable):
        set_jwks(roles, issuer, jwks(keys["k1"].jwk()))
    server.replies[empty.path] = Reply(jwks())
    server.replies[unusable.path] = Reply(jwks(keys["enc"].jwk(use="enc")))
    tokens = {i.issuer: token(keys["k1"], i, tenant) for i in (empty, unusable)}
    for tok in tokens.values():
        assert authenticate(app_conn, tok) == (tenant.id, tenant.owner, "owner")

    res = sync(roles.admin, empty, unusable)
    assert res.returncode == 1
    assert stored(roles, empty).keys() == stored(roles, unusable).keys() == {"k1"}

    res = sync(roles.admin, empty, unusable, extra=("--allow-empty",))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == sorted(
        [
            f"synced {empty.issuer}: 0 added, 1 removed, 0 kept, 0 skipped",
            f"synced {unusable.issuer}: 0 added, 1 removed, 0 kept, 1 skipped",
        ]
    )
    assert stored(roles, empty) == stored(roles, unusable) == {}
    for tok in tokens.values():
        assert refused(authenticate(app_conn, tok), "token key 'k1' is not a key of")


# -- the command line --------------------------------------------------------------------------


def test_every_issuer_with_a_jwks_url_by_default(
    roles: Roles, server: JwksServer, keys: dict[str, Key], pgtenancy_make_database: Any
) -> None:
    """In a database of its own: no --issuer syncs every issuer that has a URL."""
    url = testing.as_login(pgtenancy_make_database(), conninfo_to_dict(roles.admin)["user"])
    res = sync(url)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "no trusted issuer has a JWKS URL\n"
    paths = [f"/{uuid.uuid4().hex}/jwks.json" for _ in range(2)]
    with psycopg.connect(url, autocommit=True) as conn:
        for n, path in enumerate(paths):
            conn.execute(
                "select tenancy.configure_issuer(%s, array['api'], %s)",
                (f"https://idp{n}.example.test/", server.url(path)),
            )
            server.replies[path] = Reply(jwks(keys["k1"].jwk()))
        conn.execute(
            "select tenancy.configure_issuer('https://no-url.example.test/', array['api'])"
        )
    res = sync(url)
    assert res.returncode == 0, res.stderr
    assert res.stdout == (
        "synced https://idp0.example.test/: 1 added, 0 removed, 0 kept, 0 skipped\n"
        "synced https://idp1.example.test/: 1 added, 0 removed, 0 kept, 0 skipped\n"
    )


def test_refusals_before_anything_is_fetched(
    roles: Roles,
    server: JwksServer,
    make_issuer: Callable[..., Issuer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    issuer = make_issuer()
    server.replies[issuer.path] = Reply(b"{}")
    no_url = "https://no-url.example.test/"
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.configure_issuer(%s, array['api'])", (no_url,))
    try:
        # In process (the command's own main), for speed; the other tests run the executable.
        for args, message in [
            (("--issuer", "https://nobody.example.test/"), "'https://nobody.example.test/'"),
            (("--issuer", no_url), f"not a trusted issuer with a JWKS URL: '{no_url}'"),
            (("--timeout", "0"), "--timeout 0 is not from 0 to 300 seconds"),
            (("--watch", "0.5"), "--watch 0.5 is shorter than 1 second"),
        ]:
            argv = ["jwks", "sync", "--database-url", roles.admin, "--issuer", issuer.issuer]
            assert main([*argv, *args]) == 2, args
            out, err = capsys.readouterr()
            assert message in err, (args, err)
            assert err.startswith("pgtenancy: jwks sync: ") and out == ""
        # Not a tenancy_admin: the database refuses.
        assert main(["jwks", "sync", "--database-url", roles.app]) == 2
        assert "permission denied for function jwks_sync_targets" in capsys.readouterr().err
        assert server.hits(issuer.path) == 0
        # The rightful call fetches.
        res = sync(roles.admin, issuer)
        assert res.returncode == 1  # {} is not a JWKS
        assert 'the body is not a JWKS: a JSON object with a "keys" array' in res.stderr
        assert server.hits(issuer.path) == 1
    finally:
        with psycopg.connect(roles.admin, autocommit=True) as conn:
            conn.execute("select tenancy.remove_issuer(%s)", (no_url,))
    # --watch: a first pass that cannot use the database ends the process.
    res = run_cli("jwks", "sync", "--watch", "1", "--database-url", roles.app)
    assert res.returncode == 2
    assert "permission denied for function jwks_sync_targets" in res.stderr
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    res = run_cli("jwks", "sync", env=env)
    assert res.returncode == 2
    assert "which database?" in res.stderr


def test_watch_syncs_until_stopped(
    roles: Roles,
    server: JwksServer,
    keys: dict[str, Key],
    make_issuer: Callable[..., Issuer],
) -> None:
    issuer = make_issuer()
    server.replies[issuer.path] = Reply(jwks(keys["k1"].jwk()))
    proc = subprocess.Popen(
        [str(PGTENANCY), "jwks", "sync", "--watch", "1", "--timeout", "2",
         "--database-url", roles.admin, "--issuer", issuer.issuer],
        cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True)
    reader.start()

    def next_line(timeout: float = 15) -> str:
        return lines.get(timeout=timeout)

    try:
        assert next_line() == f"synced {issuer.issuer}: 1 added, 0 removed, 0 kept, 0 skipped\n"
        # A failing pass is reported and the loop goes on.
        server.replies[issuer.path] = Reply(b"oops", 503)
        seen = server.hits(issuer.path)
        deadline = time.monotonic() + 15
        while server.hits(issuer.path) == seen and time.monotonic() < deadline:
            time.sleep(0.05)
        server.replies[issuer.path] = Reply(jwks(keys["k1"].jwk(), keys["k2"].jwk()))
        line = next_line()
        while line.endswith(": 0 added, 0 removed, 1 kept, 0 skipped\n"):  # before the 503
            line = next_line()
        assert line == f"synced {issuer.issuer}: 1 added, 0 removed, 1 kept, 0 skipped\n"
        assert sorted(stored(roles, issuer)) == ["k1", "k2"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        reader.join(5)
        err = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 0, err
    assert f"pgtenancy: jwks sync: {issuer.issuer}: {server.url(issuer.path)}: HTTP 503" in err
