"""Break-glass support access across sessions and transactions.

An operator's login is a member of tenancy_admin (to begin the access) and tenancy_app (whose
table privileges it reads with). Each refusal is paired with the rightful operation succeeding.
What pgTAP cannot show inside its one transaction is here: commits and rollbacks seen by other
sessions, the next transaction, a second transaction in the same simple-query message, an access
expiring in real time, and the server's own refusals at the top level of a transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from conftest import Roles, Tenant, new_user_id, one, visible
from psycopg import errors

from pgtenancy import testing

BEGIN = "select access_number from tenancy.begin_support_access(%s, %s, %s)"


@dataclass
class Logins:
    operator: str
    auditor: str
    operator_name: str


@pytest.fixture(scope="module")
def logins(roles: Roles) -> Iterator[Logins]:
    suffix = uuid.uuid4().hex[:8]
    operator, auditor = f"t_operator_{suffix}", f"t_auditor_{suffix}"
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        conn.execute(f"create role {operator} login in role tenancy_admin, tenancy_app")
        conn.execute(f"create role {auditor} login in role tenancy_auditor")
    yield Logins(
        operator=testing.as_login(roles.superuser, operator),
        auditor=testing.as_login(roles.superuser, auditor),
        operator_name=operator,
    )


def gaps(auditor_url: str) -> list[int]:
    with psycopg.connect(auditor_url, autocommit=True) as conn:
        return [
            r[0] for r in conn.execute("select access_number from tenancy.support_access_gaps()")
        ]


def tenant_events(roles: Roles, tenant: Tenant, kind: str) -> list[tuple[Any, ...]]:
    """The tenant's events of one kind as its owner reads them (tenant_security_events)."""
    with psycopg.connect(roles.service) as conn:
        conn.execute("select tenancy.set_context(%s, %s)", (tenant.id, tenant.owner))
        return [
            tuple(r)
            for r in conn.execute(
                "select reason, attempt, details ->> 'database_user' "
                "from tenancy.tenant_security_events(null, %s)",
                (kind,),
            )
        ]


def test_an_operator_reads_one_tenant_only_while_support_access_lasts(
    roles: Roles, logins: Logins, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    with psycopg.connect(logins.operator) as conn:
        # Without support access: no context, no rows, and no way to set one silently.
        assert visible(conn) == []
        with pytest.raises(errors.InsufficientPrivilege, match="set_context"):
            conn.execute("select tenancy.set_context(%s)", (a.id,))
        conn.rollback()
        # Rightful: support access to A reads A's rows, never B's.
        conn.execute(BEGIN, (a.id, "ticket SUP-7: missing invoice", 15))
        assert visible(conn) == ["a1", "a2"]
        assert one(conn, "select count(*) from app.projects where tenant_id = %s", (b.id,)) == 0
        assert one(conn, "select tenancy.current_member_role()") == "support"
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute("insert into app.projects (name) values ('support')")
        conn.rollback()
        # The next transaction has no context.
        assert visible(conn) == []
        assert one(conn, "select tenancy.current_tenant_id()") is None
        conn.rollback()


def test_read_write_is_refused_at_the_top_level_of_the_transaction(
    logins: Logins, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    with psycopg.connect(logins.operator) as conn:
        for statement in ("set transaction read write", "set local transaction_read_only = off"):
            conn.execute(BEGIN, (a.id, "ticket SUP-8", 5))
            with pytest.raises(
                errors.ActiveSqlTransaction, match="read-write mode must be set before"
            ):
                conn.execute(statement)
            conn.rollback()
        # A savepoint does not help: 25001 inside it too.
        conn.execute(BEGIN, (a.id, "ticket SUP-8", 5))
        conn.execute("savepoint s")
        with pytest.raises(errors.ActiveSqlTransaction, match="inside a read-only transaction"):
            conn.execute("set local transaction_read_only = off")
        conn.execute("rollback to savepoint s")
        # Rightful: the access still reads.
        assert visible(conn) == ["a1", "a2"]
        conn.rollback()


def test_concurrent_sessions_each_see_their_own_tenant(
    roles: Roles, logins: Logins, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    with (
        psycopg.connect(logins.operator) as support_a,
        psycopg.connect(logins.operator) as support_b,
        psycopg.connect(roles.service) as backend_b,
    ):
        support_a.execute(BEGIN, (a.id, "ticket SUP-9", 5))
        backend_b.execute("select tenancy.set_context(%s)", (b.id,))
        support_b.execute(BEGIN, (b.id, "ticket SUP-10", 5))
        # Interleaved: each transaction keeps its own tenant.
        assert visible(support_a) == ["a1", "a2"]
        backend_b.execute("insert into app.projects (name) values ('b-concurrent')")
        assert visible(support_b) == ["b1", "b2", "b3"]  # not committed yet
        assert visible(support_a) == ["a1", "a2"]
        backend_b.commit()
        assert visible(support_b) == ["b-concurrent", "b1", "b2", "b3"]
        assert visible(support_a) == ["a1", "a2"]
        # The support value of one session is nothing in another's transaction.
        value = one(support_a, "select current_setting('tenancy.context')")
        with psycopg.connect(roles.app) as app:
            app.execute("set transaction read only")
            app.execute("select set_config('tenancy.context', %s, true)", (value,))
            assert visible(app) == []
        support_a.rollback()
        support_b.rollback()


def test_an_access_expires_in_real_time(roles: Roles, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    # open_support_access (internal; the superuser calls it) takes seconds.
    with psycopg.connect(roles.superuser) as conn:
        conn.execute(
            "select tenancy.open_support_access(%s, 'expiry check', interval '2 seconds')", (a.id,)
        )
        conn.execute("set local role tenancy_app")
        assert visible(conn) == ["a1", "a2"]
        # Read by a statement that outlives the expiry: the clock counts, not the statement's start.
        assert one(conn, "select (select count(*) from app.projects) from pg_sleep(2.1)") == 0
        assert one(conn, "select tenancy.current_tenant_id()") is None
        assert visible(conn) == []
        conn.rollback()


def test_a_second_transaction_in_the_same_message_has_no_access(
    logins: Logins, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    with psycopg.connect(logins.operator, autocommit=True) as conn:
        # One simple-query message: both transactions get the same start time, so the same key;
        # the access is bound to the first one's transaction id as well.
        cur = conn.execute(
            f"begin; select tenancy.begin_support_access('{a.id}', 'ticket SUP-11', 5); "
            "select set_config('support_test.value', current_setting('tenancy.context'), false); "
            "commit; begin read only; "
            "select set_config('tenancy.context', current_setting('support_test.value'), true); "
            "select transaction_timestamp() = statement_timestamp(), tenancy.current_tenant_id(), "
            "(select count(*) from app.projects)"
        )
        while cur.nextset():
            pass
        row = cur.fetchone()
        conn.execute("rollback")
        assert row == (True, None, 0)
        # Rightful: within its own transaction the same access reads.
        conn.execute("begin")
        conn.execute(BEGIN, (a.id, "ticket SUP-11", 5))
        assert visible(conn) == ["a1", "a2"]
        conn.execute("rollback")


def test_a_rolled_back_access_leaves_a_gap_and_a_committed_one_an_event_the_owners_see(
    roles: Roles, logins: Logins, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    reason = f"ticket SUP-{uuid.uuid4().hex[:6]}"
    notices: list[str] = []
    with psycopg.connect(logins.operator) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute("set client_min_messages = log")  # the server log's line, shown here too
        hidden = one(conn, BEGIN, (a.id, reason + " (rolled back)", 5))
        assert visible(conn) == ["a1", "a2"]
        conn.rollback()
        # The event is gone with the transaction; its number is not.
        assert hidden in gaps(logins.auditor)
        assert any(f"support access {hidden} to tenant {a.id}" in n for n in notices)
        assert tenant_events(roles, a, "support_access.begun") == []
        # Rightful: a committed access is an event A's owners read, and no gap.
        shown = one(conn, BEGIN, (a.id, reason, 5))
        conn.commit()
    assert shown not in gaps(logins.auditor)
    # The event names the reason, the number and the operator's login.
    assert tenant_events(roles, a, "support_access.begun") == [
        (reason, shown, logins.operator_name)
    ]
    # B's owners see nothing of it.
    assert tenant_events(roles, b, "support_access.begun") == []


def test_refused_member_management_is_numbered_though_its_row_rolls_back(
    roles: Roles, logins: Logins, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    viewer = new_user_id()
    with psycopg.connect(roles.service) as conn:
        conn.execute("select tenancy.set_context(%s, %s)", (a.id, a.owner))
        conn.execute("select tenancy.add_member(%s, 'viewer')", (viewer,))
        conn.commit()

    def failures() -> int:
        with psycopg.connect(roles.superuser, autocommit=True) as su:
            return int(
                one(su, "select coalesce(pg_sequence_last_value('tenancy.auth_failures_total'), 0)")
            )

    before = failures()
    notices: list[str] = []
    with psycopg.connect(roles.service) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute("set client_min_messages = log")
        conn.execute("select tenancy.set_context(%s, %s)", (a.id, viewer))
        with pytest.raises(
            errors.InsufficientPrivilege, match="role viewer of tenant .* cannot manage members"
        ):
            conn.execute("select tenancy.add_member(%s, 'owner')", (new_user_id(),))
        conn.rollback()
    after = failures()
    assert after >= before + 1
    assert any(n.startswith(f"pgtenancy: refused attempt {after}: role viewer") for n in notices)
    with psycopg.connect(logins.auditor) as conn:
        # The row rolled back with the error: the number is missing from the table.
        assert (
            one(
                conn,
                "select count(*) from tenancy.security_events where attempt = %s and kind = "
                "'member_management.refused'",
                (after,),
            )
            == 0
        )
    # Rightful: the owner adds the member; no number is drawn.
    with psycopg.connect(roles.service) as conn:
        conn.execute("select tenancy.set_context(%s, %s)", (a.id, a.owner))
        conn.execute("select tenancy.add_member(%s, 'member')", (new_user_id(),))
        conn.commit()
    assert failures() == after
