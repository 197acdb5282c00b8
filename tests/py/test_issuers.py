"""Trusted issuers end to end: RS256/ES256 tokens minted with PyJWT from fresh keys, the Python
helpers' failure mode (the refusal's security event is committed), counters that survive
rollbacks, lockouts, read-only transactions, the cache under concurrency and expiry, and
arbitrary input. Each attack is paired with the rightful request succeeding."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg
import pytest
from conftest import Roles, Tenant, new_user_id, one, visible
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgtenancy import AuthenticationRefused, authenticated_transaction

REFUSALS = {"TN002", "TN003", "TN004", "TN010", "TN012", "TN013", "P0002"}


@dataclass
class Issuer:
    name: str
    audience: str
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey

    def token(
        self, tenant: Tenant | None, sub: str, ttl: int = 300, alg: str = "RS256", **extra: Any
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.name,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        if tenant is not None:
            claims["tenant_id"] = str(tenant.id)
        claims.update(extra)
        key: Any = self.rsa_key if alg == "RS256" else self.ec_key
        kid = "rsa" if alg == "RS256" else "ec"
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def jwks_of(issuer: Issuer) -> str:
    keys = []
    for kid, alg, key in (
        ("rsa", "RS256", issuer.rsa_key.public_key()),
        ("ec", "ES256", issuer.ec_key.public_key()),
    ):
        algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(key))
        jwk.update(kid=kid, alg=alg, use="sig")
        keys.append(jwk)
    return json.dumps({"keys": keys})


@pytest.fixture(scope="module")
def issuer(roles: Roles) -> Issuer:
    made = Issuer(
        name=f"https://idp-{uuid.uuid4().hex[:8]}.example.test/",
        audience="https://api.example.test",
        rsa_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec_key=ec.generate_private_key(ec.SECP256R1()),
    )
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute(
            "select tenancy.configure_issuer(%s, array[%s], p_leeway => '0 seconds',"
            " p_algorithms => array['RS256', 'ES256'])",
            (made.name, made.audience),
        )
        conn.execute("select tenancy.set_jwks(%s, %s)", (made.name, jwks_of(made)))
    return made


@pytest.fixture
def tenant(make_tenant: Any) -> Tenant:
    made: Tenant = make_tenant()
    return made


@pytest.fixture
def lockout(roles: Roles) -> Iterator[None]:
    """Lockouts on (3 failures within a minute) for one test, off again after it."""
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute(
            "select tenancy.configure_auth(p_lockout_failures => 3, p_lockout_window => '1 minute')"
        )
    try:
        yield
    finally:
        with psycopg.connect(roles.admin, autocommit=True) as conn:
            conn.execute("select tenancy.configure_auth(p_lockout_failures => 0)")


AUTHENTICATE = "select * from tenancy.authenticate(%s)"
CACHED = "select count(*) from tenancy.verified_tokens where token_hash = tenancy.secret_hash(%s)"


def refusal(
    conn: psycopg.Connection[Any], token: str, host: str | None = None
) -> AuthenticationRefused:
    """The refusal of ``token`` by the Python helper (which must refuse it)."""
    with pytest.raises(AuthenticationRefused) as info, authenticated_transaction(conn, token, host):
        pytest.fail("the token was accepted")
    return info.value


def failures(roles: Roles, subject: str) -> int:
    with psycopg.connect(roles.admin) as conn:
        return int(one(conn, "select tenancy.auth_failures(%s)", (subject,)))


def events(roles: Roles, user_id: str) -> list[tuple[str, str | None]]:
    with psycopg.connect(roles.superuser) as conn:
        rows = conn.execute(
            "select kind, sqlstate from tenancy.security_events where user_id = %s order by id",
            (user_id,),
        ).fetchall()
    return [(kind, state) for kind, state in rows]


def test_rs256_and_es256_tokens_from_fresh_keys_authenticate(
    roles: Roles, issuer: Issuer, tenant: Tenant
) -> None:
    with psycopg.connect(roles.app) as conn:
        for alg in ("RS256", "ES256"):
            token = issuer.token(tenant, tenant.owner, alg=alg)
            with authenticated_transaction(conn, token) as ctx:
                assert (ctx.tenant_id, ctx.user_id, ctx.role) == (tenant.id, tenant.owner, "owner")
                assert visible(conn) == []


def test_a_refused_token_raises_after_its_event_is_committed(
    roles: Roles, issuer: Issuer, tenant: Tenant
) -> None:
    forged = issuer.token(tenant, tenant.owner)[:-4] + "AAAA"
    with psycopg.connect(roles.app) as conn:
        info = refusal(conn, forged)
        assert info.sqlstate == "TN004"
        assert "token signature is invalid" in str(info)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        # The rightful token on the same connection.
        with authenticated_transaction(conn, issuer.token(tenant, tenant.owner)) as ctx:
            assert ctx.tenant_id == tenant.id
    assert events(roles, tenant.owner) == [("authentication.failed", "TN004")]
    with psycopg.connect(roles.superuser) as conn:
        reason = one(
            conn, "select reason from tenancy.security_events where user_id = %s", (tenant.owner,)
        )
    assert forged.split(".")[2] not in reason and forged not in reason


def test_refusals_are_counted_even_when_the_transaction_rolls_back(
    roles: Roles, issuer: Issuer, tenant: Tenant
) -> None:
    victim = tenant.owner
    before = failures(roles, f"user:{victim}")
    with psycopg.connect(roles.superuser) as conn:
        numbered = one(conn, "select pg_sequence_last_value('tenancy.auth_failures_total')") or 0
    with psycopg.connect(roles.app) as conn:
        for _ in range(3):
            with pytest.raises(psycopg.Error) as raised:
                conn.execute(
                    "select * from tenancy.authenticate(%s)",
                    (issuer.token(tenant, victim, aud="https://elsewhere.test"),),
                )
            assert raised.value.sqlstate == "TN004"
            conn.rollback()
    assert failures(roles, f"user:{victim}") == before + 3
    with psycopg.connect(roles.superuser) as conn:
        numbered_now = one(conn, "select pg_sequence_last_value('tenancy.auth_failures_total')")
    assert numbered_now >= numbered + 3
    # No event row survived the rollbacks: the gap in the numbers is what shows them.
    assert events(roles, victim) == []


def test_lockout_refuses_even_a_valid_token_until_the_window_ends(
    roles: Roles, issuer: Issuer, make_tenant: Any, lockout: None
) -> None:
    target, bystander = make_tenant(), make_tenant()
    bad = issuer.token(target, target.owner, aud="https://elsewhere.test")
    with psycopg.connect(roles.app) as conn:
        for _ in range(3):
            info = refusal(conn, bad)
            assert info.sqlstate == "TN004"
        info = refusal(conn, issuer.token(target, target.owner))
        assert info.sqlstate == "TN013"
        assert f"too many failed attempts for user:{target.owner}" in str(info)
        # Raw SQL, rolled back, is refused the same way.
        with pytest.raises(psycopg.Error) as raw:
            conn.execute(AUTHENTICATE, (issuer.token(target, target.owner),))
        assert raw.value.sqlstate == "TN013"
        conn.rollback()
        # Another user is not locked out.
        with authenticated_transaction(conn, issuer.token(bystander, bystander.owner)) as ctx:
            assert ctx.tenant_id == bystander.id
    kinds = [kind for kind, _ in events(roles, target.owner)]
    assert kinds.count("authentication.lockout") == 1
    assert kinds.count("authentication.failed") == 3


def test_host_lockout_counts_every_user_at_that_host(
    roles: Roles, issuer: Issuer, make_tenant: Any, lockout: None
) -> None:
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.configure_domains(array['lockout.example.test'])")
    target = make_tenant()
    host = f"{target.slug}.lockout.example.test"
    with psycopg.connect(roles.app) as conn:
        for _ in range(3):  # three different strangers fail at the host
            info = refusal(conn, issuer.token(None, new_user_id()), host=host)
            assert info.sqlstate == "TN003"
        info = refusal(conn, issuer.token(None, target.owner), host=host)
        assert info.sqlstate == "TN013"
        assert f"host:{host}" in str(info)


def test_a_read_only_transaction_is_refused_before_the_token_is_looked_at(
    roles: Roles, issuer: Issuer, tenant: Tenant
) -> None:
    stranger = new_user_id()
    before = failures(roles, f"user:{stranger}")
    with psycopg.connect(roles.app) as conn:
        conn.execute("begin read only")
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(AUTHENTICATE, (issuer.token(tenant, stranger),))
        assert raised.value.sqlstate == "25006"
        conn.rollback()
        conn.execute("begin read only")
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(AUTHENTICATE, ("not a token",))
        assert raised.value.sqlstate == "25006"  # the same answer, valid token or not
        conn.rollback()
    assert failures(roles, f"user:{stranger}") == before
    with (
        psycopg.connect(roles.app) as conn,
        authenticated_transaction(conn, issuer.token(tenant, tenant.owner)) as ctx,
    ):
        assert ctx.tenant_id == tenant.id


def test_repeatable_read_authenticates_without_writing_the_cache(
    roles: Roles, issuer: Issuer, tenant: Tenant
) -> None:
    token = issuer.token(tenant, tenant.owner)
    with psycopg.connect(roles.app) as conn:
        conn.execute("begin isolation level repeatable read")
        row = conn.execute("select tenant_id from tenancy.authenticate(%s)", (token,)).fetchone()
        assert row == (tenant.id,)
        conn.commit()
    with psycopg.connect(roles.superuser) as conn:
        cached = one(
            conn,
            CACHED,
            (token,),
        )
    assert cached == 0
    with psycopg.connect(roles.app) as conn, authenticated_transaction(conn, token) as ctx:
        assert ctx.tenant_id == tenant.id  # read committed: verified and cached now
    with psycopg.connect(roles.superuser) as conn:
        cached = one(
            conn,
            CACHED,
            (token,),
        )
    assert cached == 1


def test_a_busy_cache_slot_is_skipped_not_waited_for(
    roles: Roles, issuer: Issuer, tenant: Tenant
) -> None:
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.configure_auth(p_cache_slots => 1)")
    try:
        holder = psycopg.connect(roles.app)
        holder.execute(AUTHENTICATE, (issuer.token(tenant, tenant.owner),))
        # The holder's transaction keeps the only slot locked; another session does not wait.
        done = threading.Event()

        def other() -> None:
            with (
                psycopg.connect(roles.app, options="-c lock_timeout=5s") as conn,
                authenticated_transaction(conn, issuer.token(tenant, tenant.owner)),
            ):
                done.set()

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(10)
        holder.rollback()
        holder.close()
        assert done.is_set()
    finally:
        with psycopg.connect(roles.admin, autocommit=True) as conn:
            conn.execute("select tenancy.configure_auth(p_cache_slots => 8192)")


def test_a_cached_token_is_refused_once_expired(
    roles: Roles, issuer: Issuer, tenant: Tenant
) -> None:
    token = issuer.token(tenant, tenant.owner, ttl=2)
    with psycopg.connect(roles.app) as conn:
        with authenticated_transaction(conn, token):
            pass
        with authenticated_transaction(conn, token):  # from the cache
            pass
        time.sleep(2.5)
        info = refusal(conn, token)
        assert info.sqlstate == "TN004"
        assert "token expired at" in str(info)


def test_another_tenants_own_issuer_is_refused(
    roles: Roles, issuer: Issuer, make_tenant: Any
) -> None:
    a, b = make_tenant(), make_tenant()
    own = Issuer(
        name=f"https://sso-{uuid.uuid4().hex[:8]}.example.test",
        audience="tenant-b-api",
        rsa_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec_key=ec.generate_private_key(ec.SECP256R1()),
    )
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute(
            "select tenancy.configure_issuer(%s, array[%s], p_tenant_id => %s)",
            (own.name, own.audience, b.id),
        )
    with psycopg.connect(roles.app) as conn:
        with authenticated_transaction(conn, issuer.token(b, b.owner)):
            conn.execute("select * from tenancy.set_jwks(%s, %s)", (own.name, jwks_of(own)))
        # B's owner speaks through B's own issuer, into B only.
        with authenticated_transaction(conn, own.token(None, b.owner)) as ctx:
            assert ctx.tenant_id == b.id
        for token in (own.token(a, a.owner), own.token(a, b.owner)):
            info = refusal(conn, token)
            assert info.sqlstate == "TN004"
            assert "whose identity provider issued it" in str(info)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    token=st.one_of(
        st.text(max_size=300).filter(lambda s: "\x00" not in s),
        st.from_regex(
            r"[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,80}\.[A-Za-z0-9_-]{0,60}", fullmatch=True
        ),
    ),
    host=st.one_of(st.none(), st.sampled_from(["a.example.test", "x..y", "127.0.0.1"])),
)
def test_any_string_gives_only_documented_sqlstates(
    roles: Roles, issuer: Issuer, token: str, host: str | None
) -> None:
    with psycopg.connect(roles.app) as conn:
        try:
            with authenticated_transaction(conn, token, host=host):
                pytest.fail("an arbitrary string authenticated")
        except AuthenticationRefused as refused:
            assert refused.sqlstate in REFUSALS, refused
        try:
            conn.execute(
                "select * from tenancy.authenticate(%s)"
                if host is None
                else "select * from tenancy.authenticate(%s, %s)",
                (token,) if host is None else (token, host),
            )
            pytest.fail("an arbitrary string authenticated")
        except psycopg.Error as error:
            assert error.sqlstate in REFUSALS, error
