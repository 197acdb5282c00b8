"""Tokens: one spelling per token, hostile headers and claims refused with TN004, an optional
maximum lifetime, and what other sessions can read of a token sent to authenticate.

Every refusal is paired with the canonical token authenticating on the same connection, so a
test cannot pass merely because everything is refused.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from conftest import JWT_SECRET, Roles, Tenant, claims_of

from pgtenancy import testing
from pgtenancy.testing.tokens import b64url, sign_hs256

AUTHENTICATE = "select * from tenancy.authenticate(%s)"
CONTEXT = "select tenancy.current_tenant_id(), tenancy.current_user_id()"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
HEADER: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}

Conn = psycopg.Connection[Any]


# -- minting -----------------------------------------------------------------------------------


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def sized(data: bytes, remainder: int) -> bytes:
    """JSON ``data`` with trailing spaces (still the same JSON) until its length is
    ``remainder`` mod 3: 1 gives a base64url length of 2 mod 4 (4 unused bits in the last
    character, 2 padding characters), 2 gives 3 mod 4 (2 unused bits, 1 padding character)."""
    while len(data) % 3 != remainder:
        data += b" "
    return data


def with_url_characters(value: dict[str, Any], key: str) -> bytes:
    """``value`` with an extra string member ``key`` chosen so that its base64url holds '-'
    or '_' (which the standard alphabet writes '+' or '/')."""
    for n in range(1, 12):
        data = json_bytes({**value, key: "?" * n + ">" * n})
        if "-" in b64url(data) or "_" in b64url(data):
            return data
    raise AssertionError("no JSON found whose base64url holds - or _")


def standard_alphabet(part: str) -> str:
    return part.replace("-", "+").replace("_", "/")


def padded(part: str) -> str:
    return part + "=" * (-len(part) % 4)


def low_bits_set(part: str) -> str:
    """``part`` with an unused low bit of its last character set: the same bytes."""
    assert len(part) % 4 in (2, 3), part
    last = ALPHABET.index(part[-1])
    return part[:-1] + ALPHABET[last | 1]


def token_parts(header: bytes, claims: bytes) -> tuple[str, str]:
    return b64url(header), b64url(claims)


def signed(header: bytes, claims: bytes) -> str:
    return sign_hs256(*token_parts(header, claims), JWT_SECRET)


def with_signature(token: str, change: Callable[[str], str]) -> str:
    head, body, signature = token.split(".")
    return f"{head}.{body}.{change(signature)}"


def signature_with_url_characters(claims: dict[str, Any]) -> str:
    """A canonical token whose signature holds '-' or '_'."""
    for jti in range(1000):
        token = signed(json_bytes(HEADER), json_bytes({**claims, "jti": str(jti)}))
        if "-" in token.split(".")[2] or "_" in token.split(".")[2]:
            return token
    raise AssertionError("no signature with - or _ in 1000 tries")


def spaced(signature: str) -> str:
    """Whitespace that PostgreSQL's base64 decoder skips, four characters of it."""
    return signature[:10] + "\n" + signature[10:20] + " \r" + signature[20:] + "\t"


# -- assertions -------------------------------------------------------------------------------


def refused(conn: Conn, token: str) -> psycopg.Error:
    """authenticate(token) fails with TN004, sets no context, and never echoes the token."""
    with pytest.raises(psycopg.Error) as info:
        conn.execute(AUTHENTICATE, (token,))
    conn.rollback()
    error = info.value
    assert error.sqlstate == "TN004", str(error)
    assert token not in str(error)
    assert len(error.diag.message_primary or "") < 200, str(error)
    with conn.transaction():
        assert conn.execute(CONTEXT).fetchone() == (None, None)
    return error


def accepted(conn: Conn, token: str, tenant: Tenant) -> None:
    with conn.transaction():
        row = conn.execute(AUTHENTICATE, (token,)).fetchone()
        assert row is not None and row[0] == tenant.id
        assert conn.execute(CONTEXT).fetchone() == (tenant.id, tenant.owner)


@pytest.fixture
def tenant(make_tenant: Callable[[], Tenant]) -> Tenant:
    return make_tenant()


# -- one token, one spelling -------------------------------------------------------------------

MALLEATIONS: list[tuple[str, Callable[[dict[str, Any]], str], str]] = [
    (
        "signature-padded",
        lambda c: with_signature(signed(json_bytes(HEADER), json_bytes(c)), padded),
        "unpadded base64url",
    ),
    (
        "signature-standard-alphabet",
        lambda c: with_signature(signature_with_url_characters(c), standard_alphabet),
        "unpadded base64url",
    ),
    (
        "signature-low-bits",
        lambda c: with_signature(signed(json_bytes(HEADER), json_bytes(c)), low_bits_set),
        "unused bits",
    ),
    (
        "signature-whitespace",
        lambda c: with_signature(signed(json_bytes(HEADER), json_bytes(c)), spaced),
        "unpadded base64url",
    ),
    (
        "header-padded",
        lambda c: sign_hs256(
            padded(b64url(sized(json_bytes(HEADER), 1))), b64url(json_bytes(c)), JWT_SECRET
        ),
        "unpadded base64url",
    ),
    (
        "header-standard-alphabet",
        lambda c: sign_hs256(
            standard_alphabet(b64url(with_url_characters(HEADER, "kid"))),
            b64url(json_bytes(c)),
            JWT_SECRET,
        ),
        "unpadded base64url",
    ),
    (
        "header-low-bits",
        lambda c: sign_hs256(
            low_bits_set(b64url(sized(json_bytes(HEADER), 1))), b64url(json_bytes(c)), JWT_SECRET
        ),
        "last character of the header",
    ),
    (
        "claims-padded",
        lambda c: sign_hs256(
            b64url(json_bytes(HEADER)), padded(b64url(sized(json_bytes(c), 2))), JWT_SECRET
        ),
        "unpadded base64url",
    ),
    (
        "claims-standard-alphabet",
        lambda c: sign_hs256(
            b64url(json_bytes(HEADER)),
            standard_alphabet(b64url(with_url_characters(c, "note"))),
            JWT_SECRET,
        ),
        "unpadded base64url",
    ),
    (
        "claims-low-bits",
        lambda c: sign_hs256(
            b64url(json_bytes(HEADER)), low_bits_set(b64url(sized(json_bytes(c), 2))), JWT_SECRET
        ),
        "last character of the claims",
    ),
]


@pytest.mark.parametrize(
    ("malleate", "problem"),
    [(m, p) for _, m, p in MALLEATIONS],
    ids=[i for i, _, _ in MALLEATIONS],
)
def test_another_spelling_of_a_valid_token_is_refused(
    roles: Roles, tenant: Tenant, malleate: Callable[[dict[str, Any]], str], problem: str
) -> None:
    claims = claims_of(tenant)
    token = malleate(claims)
    with psycopg.connect(roles.app) as conn:
        error = refused(conn, token)
        assert problem in str(error), str(error)
        # Rightful: the canonical spelling of the same claims authenticates.
        accepted(conn, signed(json_bytes(HEADER), json_bytes(claims)), tenant)


def test_canonical_tokens_of_every_length_are_accepted(roles: Roles, tenant: Tenant) -> None:
    # Header and claims of each length mod 3 (base64url length 0, 2 and 3 mod 4), canonical.
    with psycopg.connect(roles.app) as conn:
        for remainder in (0, 1, 2):
            header = sized(json_bytes(HEADER), remainder)
            claims = sized(json_bytes(claims_of(tenant)), remainder)
            accepted(conn, signed(header, claims), tenant)
        accepted(conn, signature_with_url_characters(claims_of(tenant)), tenant)


# -- header ------------------------------------------------------------------------------------

BAD_HEADERS: list[tuple[str, dict[str, Any], str]] = [
    ("crit-known-claim", {**HEADER, "crit": ["exp"], "exp": 1}, "critical extensions"),
    ("crit-extension", {**HEADER, "crit": ["b64"], "b64": False}, "critical extensions"),
    ("crit-empty", {**HEADER, "crit": []}, "critical extensions"),
    ("typ-access-token", {"alg": "HS256", "typ": "at+jwt"}, "typ must be JWT"),
    ("typ-jose", {"alg": "HS256", "typ": "JOSE"}, "typ must be JWT"),
    ("typ-number", {"alg": "HS256", "typ": 1}, "typ must be JWT"),
    ("typ-null", {"alg": "HS256", "typ": None}, "typ must be JWT"),
]


@pytest.mark.parametrize(
    ("header", "problem"), [(h, p) for _, h, p in BAD_HEADERS], ids=[i for i, _, _ in BAD_HEADERS]
)
def test_header_with_crit_or_another_type_is_refused(
    roles: Roles, tenant: Tenant, header: dict[str, Any], problem: str
) -> None:
    claims = claims_of(tenant)
    with psycopg.connect(roles.app) as conn:
        error = refused(conn, signed(json_bytes(header), json_bytes(claims)))
        assert problem in str(error), str(error)
        accepted(conn, signed(json_bytes(HEADER), json_bytes(claims)), tenant)


@pytest.mark.parametrize("alg", ["hs256", "HS256 ", "Hs256", None])
def test_alg_must_be_exactly_hs256(roles: Roles, tenant: Tenant, alg: str | None) -> None:
    header = {"typ": "JWT"} if alg is None else {"alg": alg, "typ": "JWT"}
    with psycopg.connect(roles.app) as conn:
        error = refused(conn, signed(json_bytes(header), json_bytes(claims_of(tenant))))
        if alg is None:
            assert "the header names no algorithm" in str(error)
        else:
            assert "HS256, RS256 and ES256 are" in str(error)


def test_typ_jwt_in_any_case_or_absent_is_accepted(roles: Roles, tenant: Tenant) -> None:
    with psycopg.connect(roles.app) as conn:
        for header in (
            {"alg": "HS256"},
            {"alg": "HS256", "typ": "jwt"},
            {"alg": "HS256", "typ": "application/jwt"},
        ):
            accepted(conn, signed(json_bytes(header), json_bytes(claims_of(tenant))), tenant)


def test_duplicate_member_names_are_refused(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    # RFC 7519 section 4 allows refusing duplicates or taking the last one; parsers disagree
    # (some take the first), so a token naming tenant B then A could mean B to another reader:
    # refused, in the claims and in the header (documented in docs/tokens.md).
    a, b = make_tenant(), make_tenant()
    body = json_bytes(claims_of(a)).replace(
        b'"tenant_id":', b'"tenant_id":"' + str(b.id).encode() + b'","tenant_id":', 1
    )
    assert body.count(b'"tenant_id"') == 2
    header = json_bytes(HEADER).replace(b'"alg":', b'"alg":"none","alg":', 1)
    with psycopg.connect(roles.app) as conn:
        error = refused(conn, signed(json_bytes(HEADER), body))
        assert "the claims repeats a member name" in str(error)
        error = refused(conn, signed(header, json_bytes(claims_of(a))))
        assert "the header repeats a member name" in str(error)
        accepted(conn, signed(json_bytes(HEADER), json_bytes(claims_of(a))), a)


# -- hostile numbers ---------------------------------------------------------------------------

HOSTILE_NUMBERS: list[tuple[str, str, str]] = [
    ("exp", "-1e300", "token exp claim -1.000e+300 is out of range"),
    ("exp", "1e400", "token exp claim 1.000e+400 is out of range"),
    ("exp", "1e300", "token exp claim 1.000e+300 is out of range"),
    ("exp", "253402300800", "token exp claim 253402300800 is out of range"),
    ("exp", "1e-400", "token expired at 1970-01-01 00:00:00+00 (exp 1.000e-400)"),
    ("nbf", "1e400", "token nbf claim 1.000e+400 is out of range"),
    ("nbf", "-1e300", "token nbf claim -1.000e+300 is out of range"),
    ("iat", "1e400", "token iat claim 1.000e+400 is out of range"),
    ("iat", "-1", "token iat claim -1 is out of range"),
    ("iat", '"yesterday"', 'token iat claim "yesterday" is not a number'),
]


@pytest.mark.parametrize(
    ("claim", "literal", "message"),
    HOSTILE_NUMBERS,
    ids=[f"{c}={v}" for c, v, _ in HOSTILE_NUMBERS],
)
def test_hostile_numeric_claims_are_tn004_naming_claim_and_value(
    roles: Roles, tenant: Tenant, claim: str, literal: str, message: str
) -> None:
    claims = claims_of(tenant)
    # JSON text as written: Python's json would turn 1e400 into Infinity.
    body = json_bytes({**claims, claim: "@value@"}).replace(b'"@value@"', literal.encode())
    with psycopg.connect(roles.app) as conn:
        conn.execute("set timezone = 'UTC'")
        error = refused(conn, signed(json_bytes(HEADER), body))
        assert message in str(error), str(error)
        accepted(conn, signed(json_bytes(HEADER), json_bytes(claims)), tenant)


def test_error_messages_cut_oversized_values(roles: Roles, tenant: Tenant) -> None:
    # An unsigned payload can carry anything: the message shows the start of it only.
    huge = "x" * 5000
    token = signed(json_bytes(HEADER), json_bytes(claims_of(tenant, sub=huge)))
    forged = sign_hs256(*token.split(".")[:2], "another-secret-" + "y" * 40)
    with psycopg.connect(roles.app) as conn:
        error = refused(conn, forged)
        assert "signature is invalid" in str(error) and "xxxx..." in str(error)
        error = refused(conn, signed(json_bytes(HEADER), json_bytes(claims_of(tenant, iss=huge))))
        assert "issuer" in str(error)
        accepted(conn, signed(json_bytes(HEADER), json_bytes(claims_of(tenant))), tenant)


# -- maximum lifetime --------------------------------------------------------------------------


@pytest.fixture
def max_lifetime(roles: Roles) -> Iterator[str]:
    """A 15-minute maximum token lifetime for the test, removed afterwards."""
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.configure_jwt_limits(%s)", ("15 minutes",))
    try:
        yield "00:15:00"
    finally:
        with psycopg.connect(roles.admin, autocommit=True) as conn:
            conn.execute("select tenancy.configure_jwt_limits(null)")


def test_tokens_beyond_the_maximum_lifetime_are_refused(
    roles: Roles, tenant: Tenant, max_lifetime: str
) -> None:
    now = int(time.time())
    too_long = [
        claims_of(tenant, iat=now, exp=now + 3600),  # issued for an hour
        claims_of(tenant, iat=None, exp=now + 3600),  # no iat: an hour from now
        claims_of(tenant, iat=now - 3000, exp=now + 300),  # issued for 55 minutes
    ]
    with psycopg.connect(roles.app) as conn:
        for claims in too_long:
            error = refused(conn, signed(json_bytes(HEADER), json_bytes(claims)))
            assert f"token lifetime exceeds the maximum of {max_lifetime}" in str(error)
        # Rightful: tokens within the limit, with and without iat.
        accepted(conn, signed(json_bytes(HEADER), json_bytes(claims_of(tenant))), tenant)
        within = claims_of(tenant, iat=None, exp=now + 600)
        accepted(conn, signed(json_bytes(HEADER), json_bytes(within)), tenant)


def test_without_a_maximum_lifetime_long_tokens_are_accepted(roles: Roles, tenant: Tenant) -> None:
    now = int(time.time())
    claims = claims_of(tenant, iat=now, exp=now + 30 * 86400)
    with psycopg.connect(roles.app) as conn:
        accepted(conn, signed(json_bytes(HEADER), json_bytes(claims)), tenant)


# -- what other sessions see -------------------------------------------------------------------

ACTIVITY = "select query from pg_stat_activity where pid = %s"


def activity_of(observer: Conn, pid: int) -> str:
    row = observer.execute(ACTIVITY, (pid,)).fetchone()
    assert row is not None
    return str(row[0])


def test_bound_token_is_not_in_pg_stat_activity(roles: Roles, tenant: Tenant) -> None:
    token = signed(json_bytes(HEADER), json_bytes(claims_of(tenant)))
    with psycopg.connect(roles.app) as victim, psycopg.connect(roles.app) as observer:
        # psycopg 3's default cursor binds on the server: the query text holds $1.
        victim.execute(AUTHENTICATE, (token,))
        seen = activity_of(observer, victim.info.backend_pid)
        assert seen == "select * from tenancy.authenticate($1)"
        assert token not in seen
        assert victim.execute(CONTEXT).fetchone() == (tenant.id, tenant.owner)
        victim.rollback()


def test_token_as_a_literal_is_readable_by_the_same_login(roles: Roles, tenant: Tenant) -> None:
    # The exposure docs/tokens.md describes: client-side binding (psycopg 3 ClientCursor, as
    # psycopg2 and psql variables do) puts the token in the query text, where any session of
    # the same login reads it and can replay it until it expires.
    token = signed(json_bytes(HEADER), json_bytes(claims_of(tenant)))
    with (
        psycopg.connect(roles.app, cursor_factory=psycopg.ClientCursor) as victim,
        psycopg.connect(roles.app) as observer,
    ):
        victim.execute(AUTHENTICATE, (token,))
        seen = activity_of(observer, victim.info.backend_pid)
        assert token in seen
        stolen = seen.split("'")[1]
        with observer.transaction():
            row = observer.execute(AUTHENTICATE, (stolen,)).fetchone()
            assert row is not None and row[0] == tenant.id
        victim.rollback()


def test_another_login_cannot_read_the_query_text(roles: Roles, tenant: Tenant) -> None:
    # Per-login separation: a second application login in tenancy_app sees no query text.
    other = f"t_app2_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(roles.superuser, autocommit=True) as admin:
        admin.execute(f"create role {other} login in role tenancy_app")
    token = signed(json_bytes(HEADER), json_bytes(claims_of(tenant)))
    with (
        psycopg.connect(roles.app, cursor_factory=psycopg.ClientCursor) as victim,
        psycopg.connect(testing.as_login(roles.superuser, other)) as observer,
        psycopg.connect(roles.app) as same_login,
    ):
        victim.execute(AUTHENTICATE, (token,))
        assert activity_of(observer, victim.info.backend_pid) == "<insufficient privilege>"
        assert token in activity_of(same_login, victim.info.backend_pid)
        victim.rollback()
