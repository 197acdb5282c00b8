"""Red-team tests of authentication: attacks by the application's login (tenancy_app) and by
hostile tenant owners, each paired with the rightful request succeeding. Findings that are not
fixed are marked xfail with what remains to be done."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import psycopg
import pytest
from conftest import (
    JWT_AUDIENCE,
    JWT_ISSUER,
    JWT_SECRET,
    Roles,
    Tenant,
    make_jwt,
    wait_until_blocked,
)
from cryptography.hazmat.primitives.asymmetric import rsa

AUTHENTICATE = "select * from tenancy.authenticate(%s)"
PAUSE_LOCK = 730_019


def rsa_jwks(keys: dict[str, rsa.RSAPrivateKey]) -> str:
    published = []
    for kid, key in keys.items():
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwk.update(kid=kid, alg="RS256", use="sig")
        published.append(jwk)
    return json.dumps({"keys": published})


def rs256(issuer: str, audience: str, kid: str, key: rsa.RSAPrivateKey, tenant: Tenant) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": tenant.owner,
        "tenant_id": str(tenant.id),
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def hs256(tenant: Tenant, secret: str) -> str:
    now = int(time.time())
    claims = {
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "sub": tenant.owner,
        "tenant_id": str(tenant.id),
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    return make_jwt(claims, secret)


def authenticates(roles: Roles, token: str) -> str | None:
    """None when ``token`` authenticates in a fresh transaction, else the refusal's SQLSTATE."""
    with psycopg.connect(roles.app) as conn:
        try:
            conn.execute(AUTHENTICATE, (token,))
        except psycopg.Error as error:
            return error.sqlstate
        return None


@pytest.fixture
def paused_cache_writes(roles: Roles) -> Iterator[psycopg.Connection[Any]]:
    """A trigger that holds a cache write, in sessions that set redteam.pause, until the yielded
    superuser connection releases advisory lock PAUSE_LOCK: the window between a verification
    and its cache write, made wide."""
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        conn.execute(
            f"""
            create function public.redteam_pause() returns trigger language plpgsql as $$
            begin
                perform pg_catalog.pg_advisory_lock({PAUSE_LOCK});
                perform pg_catalog.pg_advisory_unlock({PAUSE_LOCK});
                return new;
            end
            $$;
            grant execute on function public.redteam_pause() to public;
            create trigger redteam_pause before update on tenancy.verified_tokens for each row
            when (pg_catalog.current_setting('redteam.pause', true) = 'on')
            execute function public.redteam_pause();
            """
        )
        conn.execute("select pg_advisory_lock(%s)", (PAUSE_LOCK,))
        try:
            yield conn
        finally:
            conn.execute("select pg_advisory_unlock_all()")
            conn.execute("drop trigger redteam_pause on tenancy.verified_tokens")
            conn.execute("drop function public.redteam_pause()")


def race_a_change(
    roles: Roles, pauser: psycopg.Connection[Any], token: str, change: str, params: Any
) -> None:
    """Verify ``token`` in one session, hold its cache write, make ``change`` as tenancy_admin in
    another, then let the write go on and both commit."""
    errors: list[BaseException] = []

    def verify() -> None:
        try:
            with psycopg.connect(roles.app, options="-c redteam.pause=on") as conn:
                conn.execute(AUTHENTICATE, (token,))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    def admin() -> None:
        try:
            with psycopg.connect(roles.admin, autocommit=True) as conn:
                conn.execute(change, params)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    verifier = threading.Thread(target=verify)
    verifier.start()
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        deadline = time.monotonic() + 30
        while True:
            row = conn.execute(
                "select pid from pg_stat_activity where wait_event_type = 'Lock'"
                " and wait_event = 'advisory' and usename <> current_user"
                " and query like %s",
                ("%tenancy.authenticate%",),
            ).fetchone()
            if row:
                pid = row[0]
                break
            assert time.monotonic() < deadline, "the verification never reached its cache write"
            time.sleep(0.01)
    wait_until_blocked(roles.superuser, pid)
    changer = threading.Thread(target=admin)
    changer.start()
    changer.join(1.0)  # done, or waiting for the verification (as it should once fixed)
    pauser.execute("select pg_advisory_unlock(%s)", (PAUSE_LOCK,))
    verifier.join(30)
    changer.join(30)
    assert not errors, errors


def test_a_key_revoked_while_a_token_is_verified_is_not_cached(
    roles: Roles, make_tenant: Any, paused_cache_writes: psycopg.Connection[Any]
) -> None:
    """A verification that read a key before its revocation must not cache the token after the
    revocation emptied the key's slots: the revoked key would authenticate until exp."""
    tenant: Tenant = make_tenant()
    name = f"https://race-{uuid.uuid4().hex[:8]}.example.test"
    old, new = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.configure_issuer(%s, array['api'])", (name,))
        conn.execute("select tenancy.set_jwks(%s, %s)", (name, rsa_jwks({"old": old})))
    stolen = rs256(name, "api", "old", old, tenant)
    race_a_change(
        roles,
        paused_cache_writes,
        stolen,
        "select tenancy.set_jwks(%s, %s)",
        (name, rsa_jwks({"new": new})),
    )
    # The attack: the token of the revoked key, presented again.
    assert authenticates(roles, stolen) == "TN004"
    # The rightful request: a token of the published key.
    assert authenticates(roles, rs256(name, "api", "new", new, tenant)) is None


def test_an_hs256_secret_changed_while_a_token_is_verified_is_not_cached(
    roles: Roles, make_tenant: Any, paused_cache_writes: psycopg.Connection[Any]
) -> None:
    """The same race against tenancy.configure_jwt: a token of the old secret must not outlive
    the change in the cache."""
    tenant: Tenant = make_tenant()
    new_secret = "rotated-secret-" + "y" * 40
    stolen = hs256(tenant, JWT_SECRET)
    try:
        race_a_change(
            roles,
            paused_cache_writes,
            stolen,
            "select tenancy.configure_jwt(%s, %s, %s)",
            (new_secret, JWT_ISSUER, JWT_AUDIENCE),
        )
        assert authenticates(roles, stolen) == "TN004"
        assert authenticates(roles, hs256(tenant, new_secret)) is None
    finally:
        with psycopg.connect(roles.admin, autocommit=True) as conn:
            conn.execute(
                "select tenancy.configure_jwt(%s, %s, %s)", (JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE)
            )


# One failed attempt per statement, under a made-up subject, from the application's login: a
# well-formed HS256 token with a wrong signature, refused and counted (the DO block catches it).
SPRAY = """
do $spray$
begin
    for i in 1..%s loop
        begin
            perform tenancy.authenticate(
                'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.'
                || rtrim(translate(encode(convert_to(
                    format('{"sub":"spray-%%s-%%s","tenant_id":"%%s"}', i, %s, gen_random_uuid()),
                    'UTF8'), 'base64'), '+/' || chr(10), '-_'), '=')
                || '.AAAA'
            );
        exception when others then
            null;
        end;
    end loop;
end
$spray$
"""


@pytest.mark.xfail(
    strict=True,
    reason="The lockout sketch has two rows of 64 counters: failures of distinct subjects fill "
    "every counter, and then every user, host and API key of the platform is over the limit "
    "(lockout_failures * 64 failures with chosen subjects, a few hundred with random ones, "
    "within one window). Counting a subject exactly (or a sketch far wider than the failures "
    "of one window, with the limit checked against it) is a design change left open.",
)
def test_failures_of_made_up_users_do_not_lock_out_everyone(roles: Roles, make_tenant: Any) -> None:
    tenant: Tenant = make_tenant()
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        # An unusual window, so that no other test's window number matches these counters.
        conn.execute(
            "select tenancy.configure_auth(p_lockout_failures => 3,"
            " p_lockout_window => '17 seconds')"
        )
    try:
        with psycopg.connect(roles.app, autocommit=True) as conn:
            conn.execute(SPRAY % (1500, uuid.uuid4().int % 100000))
        # The rightful request: a user who never failed, with a valid token (TN013 today).
        refused = authenticates(roles, hs256(tenant, JWT_SECRET))
        assert refused in (None, "TN013")
        assert refused is None
    finally:
        with psycopg.connect(roles.admin, autocommit=True) as conn:
            conn.execute(
                "select tenancy.configure_auth(p_lockout_failures => 0,"
                " p_lockout_window => '15 minutes')"
            )


@pytest.mark.parametrize("cached", [False, True])
def test_a_key_revoked_after_the_snapshot_is_refused_under_repeatable_read(
    roles: Roles, make_tenant: Any, cached: bool
) -> None:
    """A REPEATABLE READ transaction whose snapshot predates a revocation still sees the key (and
    its cache slot): held open, it would let a stolen token of the revoked key in at any later
    time. The revoked key is refused with 40001 (retry, and be refused), as a revoked membership
    is."""
    tenant: Tenant = make_tenant()
    name = f"https://rr-{uuid.uuid4().hex[:8]}.example.test"
    old, new = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.configure_issuer(%s, array['api'])", (name,))
        conn.execute("select tenancy.set_jwks(%s, %s)", (name, rsa_jwks({"old": old})))
    stolen = rs256(name, "api", "old", old, tenant)
    if cached:
        assert authenticates(roles, stolen) is None
    with psycopg.connect(roles.app) as conn:
        conn.execute("set transaction isolation level repeatable read")
        conn.execute("select 1")  # the snapshot
        with psycopg.connect(roles.admin, autocommit=True) as admin:
            admin.execute("select tenancy.set_jwks(%s, %s)", (name, rsa_jwks({"new": new})))
        with pytest.raises(psycopg.Error) as info:
            conn.execute(AUTHENTICATE, (stolen,))
        assert info.value.sqlstate in ("40001", "TN004")
    # The rightful request, under REPEATABLE READ too.
    with psycopg.connect(roles.app) as conn:
        conn.execute("set transaction isolation level repeatable read")
        conn.execute(AUTHENTICATE, (rs256(name, "api", "new", new, tenant),))
    assert authenticates(roles, stolen) == "TN004"
