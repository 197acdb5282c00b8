"""Mint HS256 JWTs that ``tenancy.authenticate`` accepts (for demos, tests and trusted issuers)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from uuid import UUID


def b64url(data: bytes) -> str:
    """``data`` as unpadded base64url (RFC 4648 section 5), the one spelling JWTs allow."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_hs256(header_part: str, claims_part: str, secret: str) -> str:
    """The compact JWT ``header_part.claims_part.signature``, the signature being HMAC-SHA256
    of the two parts exactly as given (tests use it to sign hand-made, even non-canonical,
    parts)."""
    signing_input = f"{header_part}.{claims_part}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header_part}.{claims_part}.{b64url(signature)}"


def encode_hs256(claims: Any, secret: str, header: dict[str, Any] | None = None) -> str:
    """Sign ``claims`` with HS256 and return the compact JWT.

    ``header`` replaces the standard ``{"alg": "HS256", "typ": "JWT"}`` (tests use it to make
    tokens that claim another algorithm); the signature is HMAC-SHA256 either way.
    """
    head = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    header_part = b64url(json.dumps(head, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    return sign_hs256(header_part, body, secret)


def tenant_token(
    secret: str,
    tenant_id: UUID | str | None,
    user_id: str | UUID,
    *,
    ttl: int = 300,
    issuer: str | None = None,
    audience: str | None = None,
    now: int | None = None,
) -> str:
    """A token for ``user_id`` in ``tenant_id`` valid for ``ttl`` seconds (negative: expired).

    ``tenant_id`` None leaves the ``tenant_id`` claim out: a token for
    ``tenancy.authenticate(token, host)``, where the host names the tenant.

    Keep ``ttl`` within the maximum lifetime set with ``tenancy.configure_jwt_limits``, if any:
    tokens whose ``exp - iat`` exceeds it are refused.
    """
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {"sub": str(user_id)}
    if tenant_id is not None:
        claims["tenant_id"] = str(tenant_id)
    claims.update(iat=issued, exp=issued + ttl)
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    return encode_hs256(claims, secret)
