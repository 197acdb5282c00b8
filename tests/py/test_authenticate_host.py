"""tenancy.authenticate(p_token, p_host) and the helpers' ``host`` argument.

The tenant comes from the host; a ``tenant_id`` claim must name the same tenant; the user must
be a member. Each refusal is paired with the same request succeeding where it should. A
property test feeds arbitrary strings as host and token: only the documented SQLSTATEs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from conftest import (
    JWT_AUDIENCE,
    JWT_ISSUER,
    JWT_SECRET,
    Roles,
    Tenant,
    add_member,
    claims_of,
    make_jwt,
    new_user_id,
    token_for,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from test_domains import as_owner, domains, fresh_domain, verify  # noqa: F401 (fixture)

from pgtenancy import (
    aauthenticated_transaction,
    apool_authenticated_transaction,
    authenticated_transaction,
    pool_authenticated_transaction,
)
from pgtenancy.testing.tokens import tenant_token

pytestmark = pytest.mark.usefixtures("domains")  # every base domain configured

# What authenticate(p_token, p_host) may raise for any input, the JWT configured.
DOCUMENTED = {"TN010", "TN012", "TN004", "TN003"}


def host_of(tenant: Tenant) -> str:
    return f"{tenant.slug}.saas.test"


def authenticate(url: str, token: str | None, host: str | None) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn, conn.transaction():
        row = conn.execute(
            "select tenant_id, user_id, role from tenancy.authenticate(%s, %s)", (token, host)
        ).fetchone()
        assert row is not None
        current = conn.execute("select tenancy.current_tenant_id()").fetchone()
        assert current is not None and current[0] == row[0]
        return tuple(row)


def refusal(url: str, token: str | None, host: str | None) -> psycopg.Error:
    with psycopg.connect(url) as conn:
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute("select tenancy.authenticate(%s, %s)", (token, host))
        # Nothing was set: the next statement sees no tenant.
        row = conn.execute("select tenancy.current_tenant_id()").fetchone()
        assert row == (None,)
    return info.value


def no_tenant_token(user: str) -> str:
    return make_jwt(claims_of(Tenant(uuid.uuid4(), "x", user), tenant_id=None))


def test_tenant_token_without_tenant_id_is_a_token_for_the_host_form(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a = make_tenant()
    token = tenant_token(JWT_SECRET, None, a.owner, issuer=JWT_ISSUER, audience=JWT_AUDIENCE)
    assert authenticate(roles.app, token, host_of(a)) == (a.id, a.owner, "owner")


def test_token_for_a_on_bs_host_is_refused_and_on_as_host_accepted(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a, b = make_tenant(), make_tenant()
    token = token_for(a.id, a.owner)
    assert authenticate(roles.app, token, host_of(a)) == (a.id, a.owner, "owner")
    err = refusal(roles.app, token, host_of(b))
    assert err.sqlstate == "TN004"
    assert err.diag.message_primary == (
        f"token claim tenant_id {a.id} does not name tenant {b.id} of host '{host_of(b)}'"
    )
    # B's own token on B's host is fine.
    assert authenticate(roles.app, token_for(b.id, b.owner), host_of(b))[0] == b.id


def test_mismatch_says_nothing_about_the_claimed_tenant(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    """A suspended or a non-existent claimed tenant gives the very same message shape."""
    a, b = make_tenant(), make_tenant()
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.suspend_tenant(%s)", (b.id,))
    ghost = uuid.uuid4()
    for claimed in (b.id, ghost):
        err = refusal(roles.app, token_for(claimed, a.owner), host_of(a))
        assert err.sqlstate == "TN004"
        assert err.diag.message_primary == (
            f"token claim tenant_id {claimed} does not name tenant {a.id} of host '{host_of(a)}'"
        )


def test_token_without_tenant_claim_authenticates_a_member_of_the_hosts_tenant(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a, b = make_tenant(), make_tenant()
    member = add_member(roles, a, "member")
    token = no_tenant_token(member)
    assert authenticate(roles.app, token, host_of(a)) == (a.id, member, "member")
    err = refusal(roles.app, token, host_of(b))
    assert err.sqlstate == "TN003"
    assert err.diag.message_primary == f"user '{member}' is not a member of tenant {b.id}"
    # The one-argument form still requires the claim.
    with psycopg.connect(roles.app) as conn, pytest.raises(psycopg.Error) as info:
        conn.execute("select tenancy.authenticate(%s)", (token,))
    assert info.value.sqlstate == "TN004"


def test_non_member_is_refused(roles: Roles, make_tenant: Callable[[], Tenant]) -> None:
    a = make_tenant()
    stranger = new_user_id()
    assert refusal(roles.app, token_for(a.id, stranger), host_of(a)).sqlstate == "TN003"
    assert refusal(roles.app, no_tenant_token(stranger), host_of(a)).sqlstate == "TN003"
    assert authenticate(roles.app, no_tenant_token(a.owner), host_of(a))[2] == "owner"


def test_custom_domain_authenticates_only_while_verified(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a, b = make_tenant(), make_tenant()
    domain = fresh_domain()
    token = token_for(a.id, a.owner)
    _, value = as_owner(roles, a, "select * from tenancy.add_custom_domain(%s)", domain)
    assert refusal(roles.app, token, domain).sqlstate == "TN012"  # pending
    assert verify(roles, domain, ["pgtenancy-verification=wrong"]) == "failed"
    assert refusal(roles.app, token, domain).sqlstate == "TN012"  # failed
    assert verify(roles, domain, [value]) == "verified"
    assert authenticate(roles.app, token, domain.upper() + ":443")[0] == a.id
    assert refusal(roles.app, token_for(b.id, b.owner), domain).sqlstate == "TN004"
    as_owner(roles, a, "select tenancy.remove_custom_domain(%s)", domain)
    err = refusal(roles.app, token, domain)
    assert err.sqlstate == "TN012"
    assert err.diag.message_primary == f"no tenant at host '{domain}'"


def test_suspended_tenants_host_is_refused_until_reactivated(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    a = make_tenant()
    token = no_tenant_token(a.owner)
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.suspend_tenant(%s)", (a.id,))
    assert refusal(roles.app, token, host_of(a)).sqlstate == "TN012"
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.reactivate_tenant(%s)", (a.id,))
    assert authenticate(roles.app, token, host_of(a))[0] == a.id


@pytest.mark.parametrize(
    ("host", "sqlstate"),
    [
        ("a..saas.test", "TN010"),
        ("bücher.saas.test", "TN010"),
        ("x" * 64 + ".saas.test", "TN010"),
        ("acme.saas.test:99999", "TN010"),
        ("", "TN010"),
        ("under_score.saas.test", "TN010"),
        ("www.saas.test", "TN012"),
        ("saas.test", "TN012"),
        ("127.0.0.1", "TN012"),
        ("[::1]:8080", "TN012"),
        ("nobody-here.saas.test", "TN012"),
        (None, "TN012"),
    ],
)
def test_hosts_without_a_tenant_get_the_documented_sqlstate(
    roles: Roles, make_tenant: Callable[[], Tenant], host: str | None, sqlstate: str
) -> None:
    a = make_tenant()
    # A valid token: the host alone decides (it is checked first).
    err = refusal(roles.app, token_for(a.id, a.owner), host)
    assert err.sqlstate == sqlstate, str(err)
    if sqlstate == "TN010":
        assert (err.diag.message_primary or "").startswith("malformed host ")
    else:
        assert (err.diag.message_primary or "").startswith("no tenant at host ")


def test_host_is_checked_before_the_token(roles: Roles, make_tenant: Callable[[], Tenant]) -> None:
    a = make_tenant()
    assert refusal(roles.app, "garbage", "a..saas.test").sqlstate == "TN010"
    assert refusal(roles.app, "garbage", "nobody-here.saas.test").sqlstate == "TN012"
    assert refusal(roles.app, "garbage", host_of(a)).sqlstate == "TN004"


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
def test_domain_removed_after_the_snapshot_is_a_serialization_failure(
    roles: Roles, make_tenant: Callable[[], Tenant], isolation: str
) -> None:
    """A snapshot older than the domain's removal would still resolve it: 40001, then, retried,
    TN012. With no change since the snapshot the same transaction authenticates."""
    a = make_tenant()
    domain = fresh_domain()
    token = token_for(a.id, a.owner)
    _, value = as_owner(roles, a, "select * from tenancy.add_custom_domain(%s)", domain)
    assert verify(roles, domain, [value]) == "verified"
    with psycopg.connect(roles.app) as conn:
        with conn.transaction():
            conn.execute(f"set transaction isolation level {isolation}")
            conn.execute("select 1")  # the snapshot
            row = conn.execute(
                "select tenant_id from tenancy.authenticate(%s, %s)", (token, domain)
            ).fetchone()
            assert row == (a.id,)
        with pytest.raises(psycopg.errors.SerializationFailure), conn.transaction():
            conn.execute(f"set transaction isolation level {isolation}")
            conn.execute("select 1")
            as_owner(roles, a, "select tenancy.remove_custom_domain(%s)", domain)
            conn.execute("select tenancy.authenticate(%s, %s)", (token, domain))
    assert refusal(roles.app, token, domain).sqlstate == "TN012"


# -- the Python helpers' host argument ---------------------------------------------------------


def test_helpers_take_the_host(roles: Roles, make_tenant: Callable[[], Tenant]) -> None:
    a, b = make_tenant(), make_tenant()
    token = token_for(a.id, a.owner)
    with psycopg.connect(roles.app) as conn:
        with authenticated_transaction(conn, token, host_of(a)) as ctx:
            assert (ctx.tenant_id, ctx.user_id, ctx.role) == (a.id, a.owner, "owner")
        with (
            pytest.raises(psycopg.Error) as info,
            authenticated_transaction(conn, token, host_of(b)),
        ):
            pass
        assert info.value.sqlstate == "TN004"
        # Without host: the claim's tenant, as before.
        with authenticated_transaction(conn, token) as ctx:
            assert ctx.tenant_id == a.id
        with pytest.raises(TypeError):
            authenticated_transaction(conn, token, b"host")  # type: ignore[arg-type]
    with ConnectionPool(roles.app, min_size=1, max_size=1, open=True) as pool:
        with pool_authenticated_transaction(pool, token, host_of(a)) as (_, ctx):
            assert ctx.tenant_id == a.id
        with (
            pytest.raises(psycopg.Error) as info,
            pool_authenticated_transaction(pool, no_tenant_token(a.owner), host_of(b)),
        ):
            pass
        assert info.value.sqlstate == "TN003"


async def test_async_helpers_take_the_host(roles: Roles, make_tenant: Callable[[], Tenant]) -> None:
    a, b = make_tenant(), make_tenant()
    token = no_tenant_token(a.owner)
    async with await psycopg.AsyncConnection.connect(roles.app) as conn:
        async with aauthenticated_transaction(conn, token, host_of(a)) as ctx:
            assert ctx.tenant_id == a.id
        with pytest.raises(psycopg.Error) as info:
            async with aauthenticated_transaction(conn, token, "nobody-here.saas.test"):
                pass
        assert info.value.sqlstate == "TN012"
    async with AsyncConnectionPool(roles.app, min_size=1, max_size=1, open=False) as pool:
        async with apool_authenticated_transaction(pool, token, host_of(a)) as (_, ctx):
            assert ctx.tenant_id == a.id
        with pytest.raises(psycopg.Error) as info:
            async with apool_authenticated_transaction(pool, token_for(a.id, a.owner), host_of(b)):
                pass
        assert info.value.sqlstate == "TN004"


# -- the property: any host, any token: a context or a documented SQLSTATE ----------------------

# Any text PostgreSQL can carry: no NUL, no lone surrogates (psycopg cannot encode them).
_any_text = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=300
)


@pytest.fixture(scope="module")
def known(roles: Roles, domains: None) -> dict[str, Any]:  # noqa: F811
    """A tenant with a member: its hosts and valid tokens, for the property test to mix in."""
    slug = f"prop-{uuid.uuid4().hex[:10]}"
    owner = new_user_id()
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        row = conn.execute(
            "select tenancy.create_tenant(%s, %s, %s)", (slug, "Prop", owner)
        ).fetchone()
    assert row is not None
    tenant = Tenant(row[0], slug, owner)
    return {
        "hosts": [host_of(tenant), f"{slug.upper()}.SAAS.TEST.:80", f"{slug}.tenants.example"],
        "tokens": [
            token_for(tenant.id, owner),
            no_tenant_token(owner),
            token_for(uuid.uuid4(), owner),
            no_tenant_token(new_user_id()),
        ],
    }


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_authenticate_with_any_host_and_token_raises_only_documented_sqlstates(
    roles: Roles, known: dict[str, Any], data: st.DataObject
) -> None:
    host = data.draw(
        st.one_of(
            _any_text,
            st.sampled_from(known["hosts"]),
            st.lists(st.text(st.sampled_from("abcXYZ019-_.:[]% \t"), max_size=70), max_size=6).map(
                ".".join
            ),
            st.none(),
        ),
        label="host",
    )
    token = data.draw(
        st.one_of(
            _any_text,
            st.sampled_from(known["tokens"]),
            st.sampled_from(known["tokens"]).flatmap(
                lambda t: st.integers(0, len(t) - 1).map(lambda i: t[:i] + t[i + 1 :])
            ),
            st.none(),
        ),
        label="token",
    )
    with psycopg.connect(roles.app) as conn:
        try:
            with conn.transaction():
                row = conn.execute(
                    "select tenant_id, role from tenancy.authenticate(%s, %s)", (token, host)
                ).fetchone()
        except psycopg.Error as exc:
            assert exc.sqlstate in DOCUMENTED, (host, token, exc.sqlstate, str(exc))
            return
    assert row is not None and row[1] == "owner"
    assert host in known["hosts"] and token in known["tokens"][:2]
