"""Invitations: tenancy.invite, tenancy.accept_invitation, tenancy.revoke_invitation.

Single use (also with two connections accepting at once: exactly one wins), expiry, revocation,
role limits, tenants kept apart, bad JWTs refused and counted while the invitation stays usable
for the rightful user. Each refusal is paired with the legitimate request succeeding. A property
test feeds arbitrary strings as the JWT and the invitation: only documented SQLSTATEs.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from conftest import (
    JWT_AUDIENCE,
    JWT_ISSUER,
    Roles,
    Tenant,
    add_member,
    make_jwt,
    new_user_id,
    one,
    wait_until_blocked,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# What accept_invitation may raise for any input, the JWT configured.
DOCUMENTED = {"TN014", "TN004", "TN002", "TN013", "42501", "23505"}


def user_token(user: str, ttl: int = 300, **claims: Any) -> str:
    """A valid JWT for ``user`` without a tenant_id claim: a user who is nobody's member yet."""
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": user,
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "iat": now - 10,
        "exp": now + ttl,
    }
    for key, value in claims.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return make_jwt(body)


def invite(
    roles: Roles,
    tenant: Tenant,
    email: str,
    role: str = "member",
    *,
    as_user: str | None = None,
    ttl: str | None = None,
) -> tuple[uuid.UUID, str]:
    """Invite ``email`` to ``tenant`` as ``as_user`` (default: its owner): (id, token)."""
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s, %s)", (tenant.id, as_user or tenant.owner))
        if ttl is None:
            row = conn.execute(
                "select id, token from tenancy.invite(%s, %s)", (email, role)
            ).fetchone()
        else:
            row = conn.execute(
                "select id, token from tenancy.invite(%s, %s, %s::interval)", (email, role, ttl)
            ).fetchone()
    assert row is not None
    return row[0], row[1]


def refused_invite(
    roles: Roles, tenant: Tenant, as_user: str, email: str, role: str
) -> psycopg.Error:
    with (
        psycopg.connect(roles.service) as conn,
        pytest.raises(psycopg.Error) as info,
        conn.transaction(),
    ):
        conn.execute("select tenancy.set_context(%s, %s)", (tenant.id, as_user))
        conn.execute("select tenancy.invite(%s, %s)", (email, role))
    return info.value


def accept(roles: Roles, jwt: str | None, invitation: str | None) -> tuple[Any, ...]:
    with psycopg.connect(roles.app) as conn, conn.transaction():
        row = conn.execute(
            "select tenant_id, user_id, role from tenancy.accept_invitation(%s, %s)",
            (jwt, invitation),
        ).fetchone()
        assert row is not None
        # No context is set.
        assert one(conn, "select tenancy.current_tenant_id()") is None
    return tuple(row)


def refusal(roles: Roles, jwt: str | None, invitation: str | None) -> psycopg.Error:
    with (
        psycopg.connect(roles.app) as conn,
        pytest.raises(psycopg.Error) as info,
        conn.transaction(),
    ):
        conn.execute("select tenancy.accept_invitation(%s, %s)", (jwt, invitation))
    return info.value


def membership(roles: Roles, tenant_id: uuid.UUID, user: str) -> str | None:
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        row = conn.execute(
            "select role::text from tenancy.memberships where tenant_id = %s and user_id = %s",
            (tenant_id, user),
        ).fetchone()
    return None if row is None else row[0]


def failures_total(roles: Roles) -> int:
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        sequence = "tenancy.auth_failures_total"
        return int(
            one(conn, f"select case when is_called then last_value else 0 end from {sequence}")
        )


# -- single use ------------------------------------------------------------------------------


def test_an_invitation_is_accepted_once(roles: Roles, make_tenant: Callable[[], Tenant]) -> None:
    a = make_tenant()
    inv_id, token = invite(roles, a, "new.user@example.com")
    user, other = new_user_id(), new_user_id()
    assert accept(roles, user_token(user), token) == (a.id, user, "member")
    assert membership(roles, a.id, user) == "member"
    for who in (user, other):
        err = refusal(roles, user_token(who), token)
        assert err.sqlstate == "TN014"
        assert err.diag.message_primary is not None
        assert err.diag.message_primary.startswith(
            f"invitation {inv_id} is not valid: it was accepted at "
        )
    assert membership(roles, a.id, other) is None


def accept_in(conn: psycopg.Connection[Any], jwt: str, invitation: str) -> tuple[Any, ...]:
    row = conn.execute(
        "select tenant_id, user_id, role from tenancy.accept_invitation(%s, %s)", (jwt, invitation)
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize(
    "isolation",
    [psycopg.IsolationLevel.READ_COMMITTED, psycopg.IsolationLevel.REPEATABLE_READ],
    ids=["read_committed", "repeatable_read"],
)
def test_concurrent_accepts_the_second_waits_and_is_refused(
    roles: Roles, make_tenant: Callable[[], Tenant], isolation: psycopg.IsolationLevel
) -> None:
    """The first holds the invitation uncommitted; the second waits for it, then is refused."""
    a = make_tenant()
    _, token = invite(roles, a, "race@example.com")
    first, second = new_user_id(), new_user_id()
    outcome: dict[str, Any] = {}
    with psycopg.connect(roles.app) as c1, psycopg.connect(roles.app) as c2:
        c1.isolation_level = c2.isolation_level = isolation
        c2.execute("select 1")  # the second transaction's snapshot predates the first's commit
        tx1 = c1.transaction()
        tx1.__enter__()
        assert accept_in(c1, user_token(first), token)[1] == first

        def late() -> None:
            try:
                outcome["row"] = accept_in(c2, user_token(second), token)
                c2.commit()
            except psycopg.Error as exc:
                outcome["error"] = exc
                c2.rollback()

        thread = threading.Thread(target=late)
        thread.start()
        try:
            wait_until_blocked(roles.superuser, c2.info.backend_pid)
        finally:
            tx1.__exit__(None, None, None)  # commit
            thread.join(30)
    assert "row" not in outcome
    expected = "TN014" if isolation == psycopg.IsolationLevel.READ_COMMITTED else "40001"
    assert outcome["error"].sqlstate == expected
    assert membership(roles, a.id, first) == "member"
    assert membership(roles, a.id, second) is None


def test_many_connections_race_for_one_invitation_exactly_one_wins(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a = make_tenant()
    for _ in range(5):
        _, token = invite(roles, a, "crowd@example.com")
        users = [new_user_id() for _ in range(6)]
        barrier = threading.Barrier(len(users))
        results: dict[str, str] = {}

        def run(
            user: str,
            token: str = token,
            barrier: threading.Barrier = barrier,
            results: dict[str, str] = results,
        ) -> None:
            with psycopg.connect(roles.app) as conn:
                conn.execute("select 1")
                conn.commit()
                barrier.wait()
                try:
                    with conn.transaction():
                        accept_in(conn, user_token(user), token)
                    results[user] = "won"
                except psycopg.Error as exc:
                    results[user] = str(exc.sqlstate)

        threads = [threading.Thread(target=run, args=(u,)) for u in users]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        winners = [u for u, r in results.items() if r == "won"]
        assert len(winners) == 1, results
        assert sorted(r for r in results.values() if r != "won") == ["TN014"] * 5
        assert [u for u in users if membership(roles, a.id, u)] == winners


# -- expiry, revocation --------------------------------------------------------------------------


def test_an_expired_invitation_is_refused(roles: Roles, make_tenant: Callable[[], Tenant]) -> None:
    a = make_tenant()
    old_id, old = invite(roles, a, "late@example.com", ttl="5 minutes")
    _, fresh = invite(roles, a, "late@example.com", ttl="5 minutes")
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        conn.execute(
            "update tenancy.invitations set created_at = now() - interval '1 hour',"
            " expires_at = now() - interval '1 second' where tenant_id = %s and id = %s",
            (a.id, old_id),
        )
    user = new_user_id()
    err = refusal(roles, user_token(user), old)
    assert err.sqlstate == "TN014"
    assert f"invitation {old_id} is not valid: it expired at " in str(err)
    assert membership(roles, a.id, user) is None
    assert accept(roles, user_token(user), fresh) == (a.id, user, "member")


def test_a_revoked_invitation_is_refused(roles: Roles, make_tenant: Callable[[], Tenant]) -> None:
    a = make_tenant()
    admin = add_member(roles, a, "admin")
    rev_id, revoked = invite(roles, a, "gone@example.com")
    owner_inv_id, owner_inv = invite(roles, a, "boss@example.com", "owner")
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s, %s)", (a.id, admin))
        conn.execute("select tenancy.revoke_invitation(%s)", (rev_id,))
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute("select tenancy.revoke_invitation(%s)", (owner_inv_id,))
        assert info.value.sqlstate == "42501"
    user = new_user_id()
    err = refusal(roles, user_token(user), revoked)
    assert err.sqlstate == "TN014"
    assert f"invitation {rev_id} is not valid: it was revoked at " in str(err)
    # The owner's invitation the admin could not revoke is still good.
    assert accept(roles, user_token(user), owner_inv) == (a.id, user, "owner")
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        kinds = conn.execute(
            "select kind, user_id from tenancy.security_events where tenant_id = %s"
            " and details ->> 'invitation_id' = %s order by id",
            (a.id, str(rev_id)),
        ).fetchall()
    assert kinds == [("invitation.created", a.owner), ("invitation.revoked", admin)]


# -- role limits -------------------------------------------------------------------------------


def test_role_limits(roles: Roles, make_tenant: Callable[[], Tenant]) -> None:
    a = make_tenant()
    admin, member = add_member(roles, a, "admin"), add_member(roles, a, "member")
    err = refused_invite(roles, a, admin, "boss@example.com", "owner")
    assert err.sqlstate == "42501"
    assert err.diag.message_primary == (
        f"an admin cannot invite 'boss@example.com' as an owner of tenant {a.id}"
    )
    for role in ("viewer", "member"):
        err = refused_invite(roles, a, member, "x@example.com", role)
        assert err.sqlstate == "42501"
        assert err.diag.message_primary == f"role member of tenant {a.id} cannot manage invitations"
    # What the admin may do, and the owner.
    _, admin_inv = invite(roles, a, "helper@example.com", "admin", as_user=admin)
    _, owner_inv = invite(roles, a, "boss@example.com", "owner")
    helper, boss = new_user_id(), new_user_id()
    assert accept(roles, user_token(helper), admin_inv) == (a.id, helper, "admin")
    assert accept(roles, user_token(boss), owner_inv) == (a.id, boss, "owner")


def test_bad_input_writes_nothing(roles: Roles, make_tenant: Callable[[], Tenant]) -> None:
    a = make_tenant()
    cases = [
        ("not-an-address", "member", None, "invalid e-mail address 'not-an-address'"),
        ("a@b@example.com", "member", None, "invalid e-mail address 'a@b@example.com'"),
        (" x@example.com", "member", None, "invalid e-mail address ' x@example.com'"),
        ("x@example.com", "root", None, "invalid member role 'root'"),
        ("x@example.com", "member", "4 minutes", "invitation lifetime 00:04:00 is out of range"),
        ("x@example.com", "member", "30 days 1 second", "invitation lifetime 30 days 00:00:01"),
    ]
    for email, role, ttl, message in cases:
        with (
            psycopg.connect(roles.service) as conn,
            pytest.raises(psycopg.Error) as info,
            conn.transaction(),
        ):
            conn.execute("select tenancy.set_context(%s, %s)", (a.id, a.owner))
            conn.execute(
                "select tenancy.invite(%s, %s, coalesce(%s::interval, '7 days'))",
                (email, role, ttl),
            )
        assert info.value.sqlstate == "22023", email
        assert message in str(info.value)
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        count = "select count(*) from tenancy.invitations where tenant_id = %s"
        assert one(conn, count, (a.id,)) == 0
    # The same at its limits is fine.
    invite(roles, a, "X.Y+tag@Sub.Example.COM", ttl="30 days")
    invite(roles, a, "o'brien@example.com", ttl="5 minutes")


# -- tenants kept apart -------------------------------------------------------------------------


def test_an_invitation_of_a_makes_members_of_a_only(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a, b = make_tenant(), make_tenant()
    inv_id, token = invite(roles, a, "someone@example.com")
    user = new_user_id()
    # A token naming B (a tenant_id claim) does not carry the invitation into B.
    assert accept(roles, user_token(user, tenant_id=str(b.id)), token) == (a.id, user, "member")
    assert membership(roles, b.id, user) is None
    # B's owner neither sees nor revokes A's invitations; A's owner sees them.
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s, %s)", (b.id, b.owner))
        assert one(conn, "select count(*) from tenancy.invitations") == 0
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute("select tenancy.revoke_invitation(%s)", (inv_id,))
        assert info.value.sqlstate == "P0002"
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s, %s)", (a.id, a.owner))
        assert conn.execute("select id, accepted_by from tenancy.invitations").fetchall() == [
            (inv_id, user)
        ]


def test_the_token_hash_is_out_of_the_applications_reach(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a = make_tenant()
    inv_id, token = invite(roles, a, "secret@example.com")
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s, %s)", (a.id, a.owner))
        columns = [
            c.name for c in conn.execute("select * from tenancy.invitations").description or []
        ]
        assert "token_hash" not in columns and "token" not in columns
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute("select token_hash from tenancy.invitation_tokens")
        assert info.value.sqlstate == "42501"
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        found = one(
            conn,
            "select (select count(*) from tenancy.invitations as i"
            " where strpos(i::text, %(t)s) > 0)"
            " + (select count(*) from tenancy.security_events as e"
            " where strpos(e::text, %(t)s) > 0)",
            {"t": token[5:]},
        )
        assert found == 0
        assert (
            one(
                conn,
                "select count(*) from tenancy.invitation_tokens"
                " where invitation_id = %s and token_hash = sha256(convert_to(%s, 'UTF8'))",
                (inv_id, token),
            )
            == 1
        )


# -- bad JWTs are refused, counted, and leave the invitation usable --------------------------------


def test_invalid_jwts_are_refused_and_the_invitation_stays_usable(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a = make_tenant()
    _, token = invite(roles, a, "rightful@example.com")
    user = new_user_id()
    before = failures_total(roles)
    bad = [
        user_token(user, ttl=-60),  # expired
        make_jwt(
            {"sub": user, "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "exp": int(time.time()) + 300},
            secret="another-secret-" + "y" * 40,
        ),
        user_token(user, aud="someone-else"),
        user_token(user, iss="https://evil.example"),
        user_token(user, sub=None),
        user_token(user)[:-2],
        "",
        None,
    ]
    for jwt in bad:
        err = refusal(roles, jwt, token)
        assert err.sqlstate == "TN004", (jwt, str(err))
        assert token not in str(err)
    # Every refusal was counted though its transaction rolled back.
    assert failures_total(roles) - before == len(bad)
    assert membership(roles, a.id, user) is None
    assert accept(roles, user_token(user), token) == (a.id, user, "member")


def test_email_claim_must_be_the_invited_address(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a = make_tenant()
    inv_id, token = invite(roles, a, "Alice@Example.com")
    eve, alice = new_user_id(), new_user_id()
    err = refusal(roles, user_token(eve, email="eve@example.com"), token)
    assert err.sqlstate == "42501"
    assert err.diag.message_primary == (
        f'token claim email "eve@example.com" is not the address invitation {inv_id} was sent to'
    )
    assert membership(roles, a.id, eve) is None
    assert accept(roles, user_token(alice, email="ALICE@example.COM"), token)[1:] == (
        alice,
        "member",
    )


def test_existing_member_is_refused_and_the_invitation_stays(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a = make_tenant()
    viewer = add_member(roles, a, "viewer")
    _, token = invite(roles, a, "upgrade@example.com", "admin")
    err = refusal(roles, user_token(viewer), token)
    assert err.sqlstate == "23505"
    assert membership(roles, a.id, viewer) == "viewer"
    newcomer = new_user_id()
    assert accept(roles, user_token(newcomer), token) == (a.id, newcomer, "admin")


def test_suspended_tenant_refuses_and_reactivated_accepts(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a = make_tenant()
    _, token = invite(roles, a, "wait@example.com")
    user = new_user_id()
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.suspend_tenant(%s)", (a.id,))
        assert refusal(roles, user_token(user), token).sqlstate == "TN002"
        conn.execute("select tenancy.reactivate_tenant(%s)", (a.id,))
    assert accept(roles, user_token(user), token) == (a.id, user, "member")


def test_read_only_transaction_is_refused_before_anything(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a = make_tenant()
    _, token = invite(roles, a, "ro@example.com")
    user = new_user_id()
    with psycopg.connect(roles.app) as conn:
        conn.read_only = True
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute("select tenancy.accept_invitation(%s, %s)", ("x", "y"))
        assert info.value.sqlstate == "25006"
        conn.read_only = False
        with conn.transaction():
            assert accept_in(conn, user_token(user), token)[0] == a.id


def test_accept_then_authenticate_in_one_transaction(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a = make_tenant()
    _, token = invite(roles, a, "now@example.com", "viewer")
    user = new_user_id()
    with psycopg.connect(roles.app) as conn, conn.transaction():
        accept_in(conn, user_token(user), token)
        assert one(conn, "select tenancy.current_tenant_id()") is None
        row = conn.execute(
            "select tenant_id, role from tenancy.authenticate(%s)",
            (user_token(user, tenant_id=str(a.id)),),
        ).fetchone()
        assert row == (a.id, "viewer")


# -- the property: any JWT, any invitation: a membership or a documented SQLSTATE ---------------

# Any text PostgreSQL can carry: no NUL, no lone surrogates (psycopg cannot encode them).
_any_text = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=300
)


@pytest.fixture(scope="module")
def known(roles: Roles) -> dict[str, Any]:
    """A tenant with pending invitations and valid JWTs, for the property test to mix in."""
    owner = new_user_id()
    slug = f"inv-prop-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        tenant_id = one(conn, "select tenancy.create_tenant(%s, %s, %s)", (slug, "Prop", owner))
    tenant = Tenant(tenant_id, slug, owner)
    invitations = [invite(roles, tenant, f"p{i}@example.com")[1] for i in range(3)]
    return {
        "tenant": tenant_id,
        "invitations": invitations,
        "jwts": [
            user_token(new_user_id()),
            user_token(owner),  # a member already: 23505
            user_token(new_user_id(), email="someone-else@example.com"),  # 42501
            user_token(new_user_id(), ttl=-10),
        ],
    }


def _mutated(values: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(values).flatmap(
        lambda v: st.integers(0, len(v) - 1).map(lambda i: v[:i] + v[i + 1 :])
    )


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_accept_with_any_strings_raises_only_documented_sqlstates(
    roles: Roles, known: dict[str, Any], data: st.DataObject
) -> None:
    jwt = data.draw(
        st.one_of(_any_text, st.sampled_from(known["jwts"]), _mutated(known["jwts"]), st.none()),
        label="jwt",
    )
    invitation = data.draw(
        st.one_of(
            _any_text,
            st.sampled_from(known["invitations"]),
            _mutated(known["invitations"]),
            st.text(st.sampled_from("pgti_AZaz09-+/="), min_size=40, max_size=50),
            st.none(),
        ),
        label="invitation",
    )
    with psycopg.connect(roles.app) as conn:
        try:
            # Rolled back: every pending invitation stays pending for the next example.
            with conn.transaction(force_rollback=True):
                row = conn.execute(
                    "select tenant_id, role from tenancy.accept_invitation(%s, %s)",
                    (jwt, invitation),
                ).fetchone()
        except psycopg.Error as exc:
            assert exc.sqlstate in DOCUMENTED, (jwt, invitation, exc.sqlstate, str(exc))
            assert invitation is None or len(invitation) < 20 or invitation not in str(exc)
            return
    assert row == (known["tenant"], "member")
    assert jwt == known["jwts"][0] and invitation in known["invitations"]
