"""The security promises, checked over a real driver as the real login roles.

Every attack is paired with the rightful operation succeeding, so a test cannot pass merely
because everything is refused. Rows live in the example application's app.projects, whose
row-level security is generated from examples/app/tenancy.toml.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from conftest import (
    JWT_AUDIENCE,
    Roles,
    Tenant,
    add_member,
    claims_of,
    make_jwt,
    new_user_id,
    one,
    token_for,
    visible,
)
from psycopg import errors

AUTHENTICATE = "select tenancy.authenticate(%s)"
SET_CONTEXT = "select tenancy.set_context(%s, %s)"
VISIBLE = "select name from app.projects order by name"
INSERT = "insert into app.projects (tenant_id, name) values (%s, %s)"
CONTEXT = (
    "select tenancy.current_tenant_id(), tenancy.current_user_id(), tenancy.current_member_role()"
)
RAW_CONTEXT = "select current_setting('tenancy.context', true)"
NO_CONTEXT = (None, None, None)

# What a write without a valid context may fail with: pgtenancy's guard trigger (TN001) or,
# for tables without it, row level security's WITH CHECK (42501).
WRITE_REFUSED = {"TN001", "42501"}

Conn = psycopg.Connection[Any]


# -- helpers ---------------------------------------------------------------------------------


def assert_read_refused(conn: Conn) -> None:
    """Under a suspect context, no tenant and no rows (and no error: an invalid context is
    simply no context, even in a session that never had a real one)."""
    with conn.transaction():
        assert (one(conn, CONTEXT), visible(conn)) == (NO_CONTEXT, [])


def write_refusal(conn: Conn, tenant_id: uuid.UUID, name: str) -> str | None:
    """SQLSTATE of an insert into app.projects (inside a savepoint), or None if it went in."""
    try:
        with conn.transaction():
            conn.execute(INSERT, (tenant_id, name))
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def seed(roles: Roles, tenant: Tenant, names: list[str]) -> None:
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute(SET_CONTEXT, (tenant.id, None))
        for name in names:
            conn.execute(INSERT, (tenant.id, name))


def stored(roles: Roles, tenant: Tenant) -> list[str]:
    """The tenant's committed rows, as the table owner sees them (no policy involved)."""
    with psycopg.connect(roles.superuser) as conn:
        return [
            r[0]
            for r in conn.execute(
                "select name from app.projects where tenant_id = %s order by name", (tenant.id,)
            )
        ]


def in_other_session(url: str, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Run statements in another session and commit them."""
    with psycopg.connect(url) as conn, conn.transaction():
        for query, params in statements:
            conn.execute(query, params)


@pytest.fixture
def tenants(roles: Roles, make_tenant: Callable[[], Tenant]) -> tuple[Tenant, Tenant]:
    """Tenant A with rows a1, a2 and tenant B with b1."""
    a, b = make_tenant(), make_tenant()
    seed(roles, a, ["a1", "a2"])
    seed(roles, b, ["b1"])
    return a, b


# -- forged and replayed context values --------------------------------------------------------


@pytest.mark.parametrize(
    "forge",
    [
        "select set_config('tenancy.context', %s, true)",
        "select set_config('tenancy.context', %s, false)",
    ],
    ids=["set_config-local", "set_config-session"],
)
def test_forged_context_for_another_tenant_reads_and_writes_nothing(
    roles: Roles, tenants: tuple[Tenant, Tenant], forge: str
) -> None:
    a, b = tenants
    with psycopg.connect(roles.app) as conn:
        with conn.transaction():
            # Rightful: A's owner authenticates and sees A's rows.
            conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
            assert one(conn, CONTEXT) == (a.id, a.owner, "owner")
            assert visible(conn) == ["a1", "a2"]
            # Attack: keep the valid value's shape, swap in B's tenant id.
            value = one(conn, RAW_CONTEXT)
            assert str(a.id) in value
            conn.execute(forge, (value.replace(str(a.id), str(b.id)),))
            assert one(conn, CONTEXT) == NO_CONTEXT
            assert visible(conn) == []
            assert write_refusal(conn, b.id, "smuggled") in WRITE_REFUSED
            assert write_refusal(conn, a.id, "smuggled") in WRITE_REFUSED
            assert one(conn, "select count(*) from app.projects where tenant_id = %s", (b.id,)) == 0
        # The same connection authenticates again for real.
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
            assert visible(conn) == ["a1", "a2"]
    assert stored(roles, b) == ["b1"]
    assert stored(roles, a) == ["a1", "a2"]


def test_forged_context_built_from_scratch_is_refused(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    # The current layout (tenancy.context_value), B's tenant, owner role and user: well formed,
    # never keyed.
    with psycopg.connect(roles.superuser) as admin:
        forged = one(admin, "select tenancy.context_value(%s, 'owner', null, %s)", (b.id, b.owner))
    assert forged.startswith("v3|") and str(b.id) in forged
    with psycopg.connect(roles.app) as conn:
        with conn.transaction():
            conn.execute("select set_config('tenancy.context', %s, true)", (forged,))
            assert_read_refused(conn)
            assert write_refusal(conn, b.id, "smuggled") in WRITE_REFUSED
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(b.id, b.owner),))
            assert visible(conn) == ["b1"]
    assert stored(roles, b) == ["b1"]


def test_viewer_cannot_forge_a_writing_role(roles: Roles, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    viewer = add_member(roles, a, "viewer")
    with psycopg.connect(roles.app) as conn:
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(a.id, viewer),))
            assert visible(conn) == ["a1", "a2"]
            assert write_refusal(conn, a.id, "by-viewer") in WRITE_REFUSED
            value = one(conn, RAW_CONTEXT)
            conn.execute(
                "select set_config('tenancy.context', %s, true)",
                (value.replace("|viewer|", "|owner|"),),
            )
            assert one(conn, CONTEXT) == NO_CONTEXT
            assert write_refusal(conn, a.id, "by-forged-owner") in WRITE_REFUSED
        # Rightful: the owner writes.
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
            assert write_refusal(conn, a.id, "by-owner") is None
    assert stored(roles, a) == ["a1", "a2", "by-owner"]


def test_replaying_an_earlier_transactions_context_on_the_same_connection_is_refused(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    with psycopg.connect(roles.app) as conn:
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
            assert visible(conn) == ["a1", "a2"]
            earlier = one(conn, RAW_CONTEXT)
        # Next transaction, same session: the exact value, byte for byte.
        with conn.transaction():
            assert one(conn, RAW_CONTEXT) in (None, "")
            conn.execute("select set_config('tenancy.context', %s, true)", (earlier,))
            assert one(conn, RAW_CONTEXT) == earlier
            assert one(conn, "select tenancy.current_tenant_id()") is None
            assert one(conn, CONTEXT) == NO_CONTEXT
            assert visible(conn) == []
            assert write_refusal(conn, a.id, "replayed") in WRITE_REFUSED
        # Also as a session-wide setting, which would outlive the transaction if accepted.
        conn.execute("select set_config('tenancy.context', %s, false)", (earlier,))
        conn.commit()
        with conn.transaction():
            assert one(conn, CONTEXT) == NO_CONTEXT
            assert visible(conn) == []
        # Rightful: a fresh authenticate in a new transaction works on the same connection.
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
            assert visible(conn) == ["a1", "a2"]
            # The same text as before: what makes it valid now is the key bound to this
            # transaction, which the earlier copy never had.
            assert one(conn, RAW_CONTEXT) == earlier
    assert stored(roles, a) == ["a1", "a2"]


def test_context_copied_to_another_session_is_refused(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    with psycopg.connect(roles.app) as victim, psycopg.connect(roles.app) as thief:
        victim.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
        stolen = one(victim, RAW_CONTEXT)
        assert visible(victim) == ["a1", "a2"]

        # A session that never had a context of its own.
        with thief.transaction():
            thief.execute("select set_config('tenancy.context', %s, true)", (stolen,))
            assert_read_refused(thief)
            assert write_refusal(thief, a.id, "stolen") in WRITE_REFUSED

        # A session with a valid context for B, then the stolen value for A.
        with thief.transaction():
            thief.execute(AUTHENTICATE, (token_for(b.id, b.owner),))
            assert visible(thief) == ["b1"]
            thief.execute("select set_config('tenancy.context', %s, true)", (stolen,))
            assert one(thief, CONTEXT) == NO_CONTEXT
            assert visible(thief) == []
            assert write_refusal(thief, a.id, "stolen") in WRITE_REFUSED

        # The victim's own transaction, still open, is unaffected.
        assert one(victim, CONTEXT) == (a.id, a.owner, "owner")
        assert visible(victim) == ["a1", "a2"]
        victim.rollback()
    assert stored(roles, a) == ["a1", "a2"]


def test_discard_all_leaves_no_context(roles: Roles, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    with psycopg.connect(roles.app, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
            value = one(conn, RAW_CONTEXT)
            assert visible(conn) == ["a1", "a2"]
        # A session-wide copy, the kind of state a pooler resets between clients.
        conn.execute("select set_config('tenancy.context', %s, false)", (value,))
        conn.execute("discard all")
        with conn.transaction():
            assert one(conn, RAW_CONTEXT) in (None, "")
            assert one(conn, CONTEXT) == NO_CONTEXT
            assert visible(conn) == []
        # The value written back after the reset is refused too.
        with conn.transaction():
            conn.execute("select set_config('tenancy.context', %s, true)", (value,))
            assert_read_refused(conn)
        # Rightful: the next client of the connection authenticates normally.
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
            assert visible(conn) == ["a1", "a2"]


def test_clear_context_ends_access_within_the_transaction(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    with psycopg.connect(roles.app) as conn, conn.transaction():
        conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
        value = one(conn, RAW_CONTEXT)
        assert visible(conn) == ["a1", "a2"]
        conn.execute("select tenancy.clear_context()")
        assert one(conn, CONTEXT) == NO_CONTEXT
        assert visible(conn) == []
        conn.execute("select set_config('tenancy.context', %s, true)", (value,))
        assert one(conn, CONTEXT) == NO_CONTEXT
        assert visible(conn) == []


def test_context_needs_a_read_write_transaction(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    with psycopg.connect(roles.app) as conn:
        with pytest.raises(psycopg.Error) as caught, conn.transaction():
            conn.execute("set transaction read only")
            conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
        assert caught.value.sqlstate == "25006"
        assert "read-write transaction" in str(caught.value)
        # The same call in a read-write transaction works, and reads are unaffected.
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
            assert visible(conn) == ["a1", "a2"]


def test_context_set_in_a_rolled_back_savepoint_leaves_no_context(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    with psycopg.connect(roles.app) as conn, conn.transaction():
        conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
        with pytest.raises(RuntimeError), conn.transaction():  # a savepoint, rolled back
            conn.execute(AUTHENTICATE, (token_for(b.id, b.owner),))
            assert visible(conn) == ["b1"]
            raise RuntimeError("roll back to the savepoint")
        # Neither A's restored setting nor B's fingerprint gives access to anything.
        assert one(conn, CONTEXT) == NO_CONTEXT
        assert visible(conn) == []
        # Authenticating again restores access, for A only.
        conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
        assert visible(conn) == ["a1", "a2"]


# -- changes made by other sessions ----------------------------------------------------------


def test_suspension_in_another_session_refuses_every_later_context(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    with psycopg.connect(roles.app) as conn, psycopg.connect(roles.app) as bystander:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
        assert visible(conn) == ["a1", "a2"]
        bystander.execute(AUTHENTICATE, (token_for(b.id, b.owner),))
        assert visible(bystander) == ["b1"]

        in_other_session(roles.admin, ("select tenancy.suspend_tenant(%s)", (a.id,)))

        # The contract: a context set before the change committed lasts until its own
        # transaction ends (nothing is re-read per statement); every later one is refused.
        assert one(conn, CONTEXT) == (a.id, a.owner, "owner")
        assert visible(conn) == ["a1", "a2"]
        # Another tenant's open context is untouched by A's suspension.
        assert visible(bystander) == ["b1"]
        conn.rollback()
        bystander.rollback()

        # A new transaction cannot authenticate while suspended.
        with pytest.raises(psycopg.Error) as info:
            conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
        assert info.value.sqlstate == "TN002"
        assert str(a.id) in str(info.value) and "suspended" in str(info.value)
        conn.rollback()

        in_other_session(roles.admin, ("select tenancy.reactivate_tenant(%s)", (a.id,)))

        # Rightful: after reactivation a fresh transaction works again.
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
            assert one(conn, CONTEXT) == (a.id, a.owner, "owner")
            assert visible(conn) == ["a1", "a2"]
            assert write_refusal(conn, a.id, "after-reactivation") is None
    assert stored(roles, a) == ["a1", "a2", "after-reactivation"]


def test_removing_a_member_in_another_session_refuses_their_next_context(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    leaving = add_member(roles, a, "admin")
    staying = add_member(roles, a, "admin")
    with psycopg.connect(roles.app) as gone, psycopg.connect(roles.app) as kept:
        gone.execute(AUTHENTICATE, (token_for(a.id, leaving),))
        assert one(gone, CONTEXT) == (a.id, leaving, "admin")
        assert visible(gone) == ["a1", "a2"]
        kept.execute(AUTHENTICATE, (token_for(a.id, staying),))
        assert visible(kept) == ["a1", "a2"]

        with psycopg.connect(roles.app) as owner, owner.transaction():
            owner.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
            owner.execute("select tenancy.remove_member(%s)", (leaving,))

        # The open transaction keeps the context it set (see the suspension test); member
        # management, which re-reads the caller's membership, is refused at once.
        assert one(gone, CONTEXT) == (a.id, leaving, "admin")
        with pytest.raises(psycopg.Error) as managing:
            gone.execute("select tenancy.add_member(%s, 'viewer')", (new_user_id(),))
        assert managing.value.sqlstate == "42501"
        gone.rollback()
        # The member who stays keeps working.
        assert one(kept, CONTEXT) == (a.id, staying, "admin")
        assert write_refusal(kept, a.id, "by-staying") is None
        kept.commit()

        # The removed member's next context is refused.
        with pytest.raises(psycopg.Error) as info:
            gone.execute(AUTHENTICATE, (token_for(a.id, leaving),))
        assert info.value.sqlstate == "TN003"
        gone.rollback()
    assert stored(roles, a) == ["a1", "a2", "by-staying"]


def test_demotion_in_another_session_applies_to_the_next_context(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    writer = add_member(roles, a, "admin")
    with psycopg.connect(roles.app) as conn:
        conn.execute(AUTHENTICATE, (token_for(a.id, writer),))
        assert write_refusal(conn, a.id, "before-demotion") is None
        with psycopg.connect(roles.app) as owner, owner.transaction():
            owner.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
            owner.execute("select tenancy.set_member_role(%s, 'viewer')", (writer,))
        # The open transaction keeps its role until it ends.
        assert one(conn, CONTEXT) == (a.id, writer, "admin")
        conn.rollback()
        # The new role applies to a fresh transaction (reads, no writes).
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(a.id, writer),))
            assert one(conn, CONTEXT) == (a.id, writer, "viewer")
            assert visible(conn) == ["a1", "a2"]
            assert write_refusal(conn, a.id, "as-viewer") in WRITE_REFUSED
    assert stored(roles, a) == ["a1", "a2"]


# -- tokens ----------------------------------------------------------------------------------


def _tampered(tenant: Tenant, other: Tenant) -> str:
    """A's signed token with the payload swapped for one naming tenant B."""
    head, _, sig = make_jwt(claims_of(tenant)).split(".")
    body = make_jwt(claims_of(other, sub=str(tenant.owner))).split(".")[1]
    return f"{head}.{body}.{sig}"


BAD_TOKENS: list[tuple[str, Callable[[Tenant, Tenant], str], str]] = [
    ("expired", lambda a, b: make_jwt(claims_of(a, exp=int(time.time()) - 60)), "expired"),
    ("exp-now", lambda a, b: make_jwt(claims_of(a, exp=int(time.time()))), "expired"),
    ("no-exp", lambda a, b: make_jwt(claims_of(a, exp=None)), "exp"),
    ("string-exp", lambda a, b: make_jwt(claims_of(a, exp="tomorrow")), "exp"),
    (
        "nbf-future",
        lambda a, b: make_jwt(claims_of(a, nbf=int(time.time()) + 3600)),
        "not valid before",
    ),
    (
        "bad-signature",
        lambda a, b: make_jwt(claims_of(a), secret="another-secret-" + "y" * 40),
        "signature",
    ),
    ("tampered-payload", _tampered, "signature"),
    ("wrong-issuer", lambda a, b: make_jwt(claims_of(a, iss="https://evil.example")), "issuer"),
    ("no-issuer", lambda a, b: make_jwt(claims_of(a, iss=None)), "issuer"),
    ("wrong-audience", lambda a, b: make_jwt(claims_of(a, aud="someone-else")), "audience"),
    ("audience-list-without-ours", lambda a, b: make_jwt(claims_of(a, aud=["x", "y"])), "audience"),
    (
        "alg-none",
        lambda a, b: make_jwt(claims_of(a), header={"alg": "none", "typ": "JWT"}),
        "algorithm",
    ),
    ("alg-hs512", lambda a, b: make_jwt(claims_of(a), header={"alg": "HS512"}), "algorithm"),
    ("two-parts", lambda a, b: ".".join(make_jwt(claims_of(a)).split(".")[:2]), "malformed"),
    ("garbage", lambda a, b: "not-a-token", "malformed"),
    ("bad-base64", lambda a, b: "@@@.###.$$$", "malformed"),
    ("json-array-claims", lambda a, b: make_jwt([1, 2]), "malformed"),  # type: ignore[arg-type]
    ("empty", lambda a, b: "", "malformed"),
    (
        "sub-not-string",
        lambda a, b: make_jwt(claims_of(a, sub=12345)),
        "sub 12345 must be a string",
    ),
    ("sub-empty", lambda a, b: make_jwt(claims_of(a, sub="")), 'sub "" must be a string'),
    ("tenant-not-uuid", lambda a, b: make_jwt(claims_of(a, tenant_id="acme")), "must be a UUID"),
]


@pytest.mark.parametrize(
    ("make", "problem"), [(m, p) for _, m, p in BAD_TOKENS], ids=[i for i, _, _ in BAD_TOKENS]
)
def test_bad_token_is_refused_with_tn004_naming_the_problem(
    roles: Roles,
    tenants: tuple[Tenant, Tenant],
    make: Callable[[Tenant, Tenant], str],
    problem: str,
) -> None:
    a, b = tenants
    token = make(a, b)
    with psycopg.connect(roles.app) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(AUTHENTICATE, (token,))
        assert info.value.sqlstate == "TN004"
        assert problem.lower() in str(info.value).lower(), str(info.value)
        conn.rollback()
        with conn.transaction():
            assert one(conn, CONTEXT) == NO_CONTEXT
            assert visible(conn) == []
        # Rightful: a good token on the same connection.
        with conn.transaction():
            assert one(conn, AUTHENTICATE, (token_for(a.id, a.owner),)) is not None
            assert one(conn, CONTEXT) == (a.id, a.owner, "owner")
            assert visible(conn) == ["a1", "a2"]


def test_good_token_variants_are_accepted(roles: Roles, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    now = int(time.time())
    good = [
        make_jwt(claims_of(a)),
        make_jwt(claims_of(a, nbf=now - 10)),
        make_jwt(claims_of(a, aud=["other", JWT_AUDIENCE])),
    ]
    with psycopg.connect(roles.app) as conn:
        for token in good:
            with conn.transaction():
                conn.execute(AUTHENTICATE, (token,))
                assert visible(conn) == ["a1", "a2"]


def test_token_for_a_tenant_the_user_does_not_belong_to_is_refused(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    with psycopg.connect(roles.app) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(AUTHENTICATE, (token_for(b.id, a.owner),))
        assert info.value.sqlstate == "TN003"
        assert str(a.owner) in str(info.value) and str(b.id) in str(info.value)
        conn.rollback()
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(b.id, b.owner),))
            assert visible(conn) == ["b1"]


# -- privileges of the application role ------------------------------------------------------


def privilege_error(url: str, query: str, params: tuple[Any, ...] = ()) -> psycopg.Error:
    with psycopg.connect(url) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(query, params)
        return info.value


def test_app_cannot_call_set_context_but_service_can(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    exc = privilege_error(roles.app, SET_CONTEXT, (a.id, None))
    assert isinstance(exc, errors.InsufficientPrivilege)
    assert "set_context" in str(exc)
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute(SET_CONTEXT, (a.id, None))
        assert one(conn, CONTEXT) == (a.id, None, "service")
        assert visible(conn) == ["a1", "a2"]


@pytest.mark.parametrize(
    "query",
    [
        "select tenancy.establish_context(%(t)s, %(u)s, 'owner', null)",
        "select tenancy.verified_token('a.b.c', null, null)",
        "select tenancy.require_active_tenant(%(t)s)",
        "select tenancy.set_tenant_status(%(t)s, 'active', array['suspended'])",
        "select tenancy.suspend_tenant(%(t)s)",
        "select tenancy.create_tenant('sneaky-tenant', 'Sneaky', %(u)s)",
        "select tenancy.configure_jwt(repeat('z', 40))",
    ],
    ids=lambda q: q.split("(")[0].removeprefix("select tenancy."),
)
def test_app_cannot_call_internal_or_platform_functions(
    roles: Roles, tenants: tuple[Tenant, Tenant], query: str
) -> None:
    a, _ = tenants
    with psycopg.connect(roles.app) as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(query, {"t": a.id, "u": a.owner})
        conn.rollback()
        # The public entry point works for the same role.
        conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
        assert visible(conn) == ["a1", "a2"]


def test_app_cannot_become_the_owner_role(roles: Roles) -> None:
    with psycopg.connect(roles.app) as conn:
        for target in ("tenancy_owner", "tenancy_service", "tenancy_admin", "postgres"):
            with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
                conn.execute(f"set role {target}")
            with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
                conn.execute(f"set session authorization {target}")
        # Rightful: it may take the group role it belongs to.
        conn.execute("set role tenancy_app")
        assert one(conn, "select current_user") == "tenancy_app"


@pytest.mark.parametrize(
    "statement",
    [
        "truncate app.projects",
        "truncate app.documents",
        "truncate tenancy.memberships",
        "truncate tenancy.tenants cascade",
        "alter table app.projects disable row level security",
        "alter table app.projects no force row level security",
        'drop policy "tenant rows are visible to readers of the tenant" on app.projects',
        "alter table app.projects disable trigger all",
        "alter table tenancy.memberships disable row level security",
        "create policy open_door on app.projects using (true)",
        "select * from tenancy.jwt_config",
        "select secret from tenancy.jwt_config",
        "update tenancy.jwt_config set secret = repeat('k', 40)",
        "select * from tenancy.tenants",
        "update tenancy.memberships set role = 'owner'",
        "insert into tenancy.memberships (tenant_id, user_id, role) "
        "select id, gen_random_uuid(), 'owner' from tenancy.tenants",
        "select setval('tenancy.context_fingerprint', 42)",
        "select nextval('tenancy.context_fingerprint')",
        "select setval('tenancy.context_key', 1)",
        "select nextval('tenancy.context_key')",
        "alter sequence tenancy.context_fingerprint restart",
        "create function tenancy.helper() returns int language sql as 'select 1'",
        "grant select on tenancy.jwt_config to public",
    ],
)
def test_app_role_is_refused_privileged_statements(
    roles: Roles, tenants: tuple[Tenant, Tenant], statement: str
) -> None:
    a, b = tenants
    with psycopg.connect(roles.app) as conn:
        # Even with a valid owner context: these are about the role, not the tenant.
        conn.execute(AUTHENTICATE, (token_for(a.id, a.owner),))
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
            conn.execute(statement)
        # Rightful, same transaction: ordinary tenant work still goes through.
        assert visible(conn) == ["a1", "a2"]
        assert one(conn, "select currval('tenancy.context_fingerprint') is not null") is True
        conn.rollback()
    assert stored(roles, a) == ["a1", "a2"]
    assert stored(roles, b) == ["b1"]
    with psycopg.connect(roles.superuser) as conn:
        rls = conn.execute(
            "select relrowsecurity, relforcerowsecurity from pg_class"
            " where oid = 'app.projects'::regclass"
        ).fetchone()
        assert rls == (True, True)
        assert one(conn, "select count(*) from tenancy.jwt_config") == 1
