"""Local HTTP receivers for the relay tests: PostHog's /batch/, Slack, a Standard Webhooks endpoint.

Each is a threaded HTTP/1.1 server on 127.0.0.1 that answers like the real service: 200 by
default, or what the test scripted for the next requests (a status, a Retry-After, or a delay
that outlasts the relay's timeout), or what a rule decides from the request itself. Every
request is recorded with the answer it got; ``accepted()`` are those answered 2xx in time. The
webhook receiver verifies each signature with the ``standardwebhooks`` package and answers 401
to a message no secret it knows verifies.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Reply:
    """How a receiver answers one request."""

    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0  # seconds before answering
    body: bytes = b"ok"
    hang: bool = False  # the delay outlasts the sender's timeout: never an acceptance


@dataclass
class Request:
    """One request as the receiver got it, and its answer."""

    at: float  # time.monotonic() on arrival
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    hang: bool = False
    verified_with: list[str] = field(default_factory=list)  # webhook secrets that verify it

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def ok(self) -> bool:
        """Answered 2xx in time: the sender counts it as delivered."""
        return 200 <= self.status < 300 and not self.hang

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


Rule = Callable[[Request], Reply | None]


class Receiver:
    """A scriptable local HTTP server that records what it gets."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.script: deque[Reply] = deque()
        self.rule: Rule | None = None
        self.default = Reply()
        self.requests: list[Request] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once, not 40 ms apart

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                request = Request(
                    at=time.monotonic(),
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = receiver.answer(request)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    if reply.retry_after is not None:
                        self.send_header("Retry-After", reply.retry_after)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    self.close_connection = True  # the client gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- scripting -------------------------------------------------------------------------

    def then(self, *replies: Reply) -> None:
        """The next requests get these replies, in order; the default afterwards."""
        with self.lock:
            self.script.extend(replies)

    def fail_next(self, n: int, status: int = 500, retry_after: str | None = None) -> None:
        self.then(*[Reply(status, retry_after, body=b"scripted failure")] * n)

    def hang_next(self, n: int, seconds: float) -> None:
        self.then(*[Reply(200, delay=seconds, hang=True)] * n)

    def check(self, request: Request) -> Reply | None:
        """A reply forced by the request itself (a bad signature), before any script."""
        return None

    def answer(self, request: Request) -> Reply:
        forced = self.check(request)
        with self.lock:
            reply = forced or (self.rule(request) if self.rule else None)
            if reply is None:
                reply = self.script.popleft() if self.script else self.default
            request.status, request.hang = reply.status, reply.hang
            self.requests.append(request)
        return reply

    # -- what arrived ----------------------------------------------------------------------

    def received(self) -> list[Request]:
        with self.lock:
            return list(self.requests)

    def accepted(self) -> list[Request]:
        return [r for r in self.received() if r.ok]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{type(self).__name__}: condition not met in {timeout} s")
            time.sleep(0.02)


class PostHog(Receiver):
    """PostHog's capture API: POST /batch/ with {api_key, batch, historical_migration?}."""

    def check(self, request: Request) -> Reply | None:
        if request.path != "/batch/":
            return Reply(404, body=b"not found")
        return None

    def batches(self) -> list[dict[str, Any]]:
        return [r.json for r in self.accepted()]

    def events(self) -> list[dict[str, Any]]:
        """Accepted events in arrival order, each with the batch's historical_migration."""
        out = []
        for batch in self.batches():
            for event in batch["batch"]:
                out.append({**event, "_historical": bool(batch.get("historical_migration"))})
        return out


class Slack(Receiver):
    """A Slack incoming webhook: POST {"text": ...}, answered "ok"."""

    def texts(self) -> list[str]:
        return [r.json["text"] for r in self.accepted()]


class Webhooks(Receiver):
    """A Standard Webhooks receiver: verifies with every secret it knows (401 when none does)."""

    def __init__(self, *secrets: str) -> None:
        self.secrets = list(secrets)
        super().__init__()

    def check(self, request: Request) -> Reply | None:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(request.body, request.headers)
            except WebhookVerificationError:
                continue
            request.verified_with.append(secret)
        if not request.verified_with:
            return Reply(401, body=b"no valid signature")
        return None

    def ids(self) -> list[str]:
        """webhook-id of each accepted message, in arrival order (duplicates kept)."""
        return [r.webhook_id for r in self.accepted()]
