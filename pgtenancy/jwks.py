"""``pgtenancy jwks sync``: fetch the JWKS of every trusted issuer and store its keys.

The database never makes HTTP requests: this is the one place that does. For every issuer with a
JWKS URL (``tenancy.jwks_sync_targets()``, which a ``tenancy_admin`` login may call) the URL is
fetched with httpx and the document handed to ``tenancy.set_jwks(issuer, jwks)``, which makes it
the issuer's whole set of keys: a new kid is a rotation, a kid no longer published a revocation.

Each issuer is fetched outside any transaction and stored in a transaction of its own, so a
failing issuer neither stops the others nor changes its own stored keys. A fetch fails, and the
issuer's keys stay as they were, on:

- a URL that is not http(s), or plain http to another host than this one (loopback) unless
  ``allow_http``: anyone on the path could replace the keys;
- a connection error or a timeout (each network step, and the whole fetch, within ``timeout``);
- any status but 200, redirects included: they are not followed, the message names the target
  (an identity provider's JWKS URL is the ``jwks_uri`` of its discovery document, not a URL
  that redirects);
- a compressed body (identity is asked for) or one over ``max_bytes`` (read as a stream and cut
  off there), a body that is not UTF-8 JSON, or JSON that is not an object with a ``keys`` array;
- a set without any key, or none that pgtenancy can use (RS256, ES256), unless ``allow_empty``:
  storing it would revoke every key of the issuer, which is what an identity provider's outage
  page or a truncated deployment looks like far more often than a real revocation of all keys;
- a key the database refuses (``22023``: a private key member, a weak RSA key, a point off the
  curve …): the whole set is refused.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

from . import __version__

MAX_BYTES = 1_048_576
"""The largest JWKS fetched (1 MB): tenancy.set_jwks refuses larger ones too."""

DEFAULT_TIMEOUT = 10.0


class FetchError(Exception):
    """The JWKS could not be fetched, or is not one that may be stored."""


@dataclass(frozen=True)
class Target:
    """An issuer to sync: its JWKS URL and when its keys were last stored (None: never)."""

    issuer: str
    jwks_url: str
    synced_at: datetime | None


@dataclass(frozen=True)
class Outcome:
    """One issuer's sync: the counts of tenancy.set_jwks, or the error that left it as it was."""

    target: Target
    added: int = 0
    removed: int = 0
    kept: int = 0
    skipped: int = 0
    error: str | None = None


def targets(conn: psycopg.Connection[Any], issuers: Sequence[str] | None = None) -> list[Target]:
    """The issuers with a JWKS URL (all, or the ones named); LookupError naming any other."""
    rows = conn.execute(
        "select issuer, jwks_url, jwks_synced_at from tenancy.jwks_sync_targets() order by issuer"
    ).fetchall()
    found = [Target(r[0], r[1], r[2]) for r in rows]
    if not issuers:
        return found
    wanted = set(issuers)
    unknown = sorted(wanted - {t.issuer for t in found})
    if unknown:
        raise LookupError(
            "not a trusted issuer with a JWKS URL: "
            + ", ".join(repr(u) for u in unknown)
            + " (tenancy.configure_issuer(..., p_jwks_url => ...) sets one); nothing was done"
        )
    return [t for t in found if t.issuer in wanted]


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shown(url: str) -> str:
    """``url`` without user name and password, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def check_url(url: str, allow_http: bool = False) -> None:
    """Refuse a URL that is not http(s), or plain http to another host than loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("not an http(s) URL")
    if parts.scheme == "http" and not allow_http and not _is_loopback(parts.hostname):
        raise FetchError(
            "plain http: anyone on the path could replace the keys; "
            "use the https URL (or --allow-http on a trusted network)"
        )


def fetch(
    client: httpx.Client,
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_BYTES,
    allow_http: bool = False,
) -> bytes:
    """The body of ``url``: status 200, not compressed, at most ``max_bytes``, within ``timeout``.

    The client must not follow redirects (:func:`make_client`)."""
    check_url(url, allow_http)
    started = time.monotonic()
    try:
        with client.stream("GET", url) as response:
            if response.is_redirect:
                where = response.headers.get("location")
                raise FetchError(
                    f"HTTP {response.status_code} redirect"
                    + (f" to {_excerpt(where)!r}" if where else "")
                    + ", not followed: configure the final URL as the issuer's JWKS URL"
                )
            if response.status_code != 200:
                reason = _excerpt(response.reason_phrase)
                raise FetchError(f"HTTP {response.status_code} {reason}".rstrip())
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise FetchError(
                    f"the body is compressed ({_excerpt(encoding)}) although identity was asked"
                )
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise FetchError(f"the body of {length} bytes is larger than {max_bytes} bytes")
            body = bytearray()
            for chunk in response.iter_raw():
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError(f"the body is larger than {max_bytes} bytes")
                if time.monotonic() - started > timeout:
                    raise FetchError(f"the body took longer than {timeout:g} s to arrive")
    except httpx.TimeoutException as exc:
        raise FetchError(f"timed out after {timeout:g} s ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{type(exc).__name__}: {exc}") from None
    return bytes(body)


def _excerpt(text: str, limit: int = 200) -> str:
    """Server-supplied text, cut for messages."""
    return text if len(text) <= limit else text[:limit] + "..."


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(body: bytes, allow_empty: bool = False) -> str:
    """The JWKS as text: UTF-8 JSON, an object with a ``keys`` array, not empty unless allowed."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FetchError(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:  # json.JSONDecodeError included
        raise FetchError(f"the body is not JSON ({exc})") from None
    except RecursionError:
        raise FetchError("the body is not a JWKS: JSON nested too deeply") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise FetchError('the body is not a JWKS: a JSON object with a "keys" array is required')
    if not document["keys"] and not allow_empty:
        raise FetchError(
            "the JWKS lists no key: storing it would revoke every key of the issuer "
            "(--allow-empty stores it)"
        )
    return text


class _Unusable(Exception):
    """Rolls back a set that leaves the issuer without keys."""


def store(
    conn: psycopg.Connection[Any], issuer: str, jwks: str, allow_empty: bool = False
) -> tuple[int, int, int, int]:
    """tenancy.set_jwks in a transaction of its own: (added, removed, kept, skipped).

    A set in which the database finds no key it can use (every key skipped: encryption keys,
    other algorithms) is rolled back unless ``allow_empty``, raising FetchError."""
    try:
        with conn.transaction():
            row = conn.execute(
                "select added, removed, kept, skipped from tenancy.set_jwks(%s, %s::jsonb)",
                (issuer, jwks),
            ).fetchone()
            assert row is not None
            added, removed, kept, skipped = (int(v) for v in row)
            if added + kept == 0 and not allow_empty:
                raise _Unusable(skipped)
    except _Unusable as unusable:
        raise FetchError(
            f"the JWKS holds no key pgtenancy can use ({unusable.args[0]} skipped: only RS256 "
            "and ES256 signing keys are stored): storing it would revoke every key of the issuer "
            "(--allow-empty stores it)"
        ) from None
    return added, removed, kept, skipped


def make_client(timeout: float = DEFAULT_TIMEOUT) -> httpx.Client:
    """An HTTP client that follows no redirects and asks for an uncompressed JWKS."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        headers={
            "accept": "application/jwk-set+json, application/json",
            "accept-encoding": "identity",
            "user-agent": f"pgtenancy/{__version__} (jwks sync)",
        },
    )


def sync_targets(
    conn: psycopg.Connection[Any],
    to_sync: Iterable[Target],
    *,
    allow_empty: bool = False,
    allow_http: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_BYTES,
) -> list[Outcome]:
    """Fetch and store each target in turn; every failure is its outcome, never raised."""
    outcomes: list[Outcome] = []
    with make_client(timeout) as client:
        for target in to_sync:
            try:
                body = fetch(
                    client,
                    target.jwks_url,
                    timeout=timeout,
                    max_bytes=max_bytes,
                    allow_http=allow_http,
                )
                added, removed, kept, skipped = store(
                    conn, target.issuer, parse(body, allow_empty), allow_empty
                )
            except FetchError as exc:
                outcomes.append(Outcome(target, error=f"{shown(target.jwks_url)}: {exc}"))
                continue
            except psycopg.Error as exc:
                state = f" ({exc.sqlstate})" if exc.sqlstate else ""
                message = exc.diag.message_primary or str(exc).strip()
                hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
                outcomes.append(
                    Outcome(target, error=f"refused by the database{state}: {message}{hint}")
                )
                continue
            outcomes.append(Outcome(target, added, removed, kept, skipped))
    return outcomes


def sync(
    database_url: str,
    issuers: Sequence[str] | None = None,
    *,
    allow_empty: bool = False,
    allow_http: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_BYTES,
) -> list[Outcome]:
    """Sync every issuer with a JWKS URL (or the ones named) once; connect as a tenancy_admin."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return sync_targets(
            conn,
            targets(conn, issuers),
            allow_empty=allow_empty,
            allow_http=allow_http,
            timeout=timeout,
            max_bytes=max_bytes,
        )
