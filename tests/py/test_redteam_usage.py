"""Usage metering under attack: tenant B's SQL injection against tenant A's meters and counts.

The attacker has SQL injection as the application role (a login in ``tenancy_app``) on a pooled
connection, with a valid context of tenant B: an owner, a member, a viewer or an API key. It
wants to read, change, count against or learn anything about tenant A's meters, tiers,
customers, subscriptions, counters, events, holds, alerts and idempotency keys, or to make A's
counts wrong (lost or doubled events, a cap exceeded). Each attack below is refused (or changes
nothing of A's) and is paired with the same operation succeeding for the rightful tenant.

Some tests assert what should hold and does not yet: they fail until the function they name is
fixed (the partitions of the usage log made in request transactions with session-dependent
bounds and a public advisory lock; a hold committed in a later period; events that reject a
whole batch; customers made by invalid batch events; values that overflow a counter; the
global event numbering).
"""

from __future__ import annotations

import datetime
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
import pytest
from conftest import Roles, Tenant, add_member, one, token_for
from psycopg import sql
from psycopg.types.json import Jsonb
from test_hostile_session import open_hostile, report

from pgtenancy import (
    AuthenticationRefused,
    api_key_transaction,
    authenticated_transaction,
    tenant_transaction,
    testing,
)

Conn = psycopg.Connection[Any]
UTC = datetime.UTC

USAGE_TABLES = [
    "meters", "customers", "tiers", "subscriptions", "usage_events", "usage_counters",
    "usage_idempotency_keys", "usage_unique_values", "usage_reservations", "usage_alerts",
]  # fmt: skip

# What tenancy_app may execute among the functions of sql/functions/usage/: exactly these.
PUBLIC_FUNCTIONS = {
    "change_tier", "check_usage_enforcement", "commit_reservation", "create_customer",
    "create_meter", "create_tier", "customer_usage", "has_entitlement", "release_reservation",
    "reserve_usage", "set_subscription_overrides", "subscribe", "track_usage",
    "track_usage_batch", "update_tier", "usage_summary",
}  # fmt: skip

# The month partition a monthly job makes next: three months ahead (UTC).
NEXT_PARTITION = (
    "select 'usage_events_' || to_char(date_trunc('month', now() at time zone 'UTC')"
    " + interval '3 months', 'YYYY_MM')"
)
PARTITION_BOUNDS = (
    "select r[1]::timestamptz, r[2]::timestamptz from pg_catalog.pg_class as c,"
    " regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),"
    " $$FROM \\('([^']+)'\\) TO \\('([^']+)'\\)$$) as r"
    " where c.oid = pg_catalog.to_regclass('tenancy.' || %s)"
)


@dataclass
class Usage:
    """Tenant A with usage of its own, and tenant B's members and keys (the attackers)."""

    a: Tenant
    b: Tenant
    a_hold: uuid.UUID
    b_admin: str
    b_member: str
    b_viewer: str
    b_member_key: str
    b_viewer_key: str


def refused(conn: Conn, query: str | sql.SQL | sql.Composed, params: Any = None) -> str | None:
    """The SQLSTATE of ``query`` run in a savepoint of the open transaction; None when it ran."""
    try:
        with conn.transaction():
            conn.execute(query, params)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


@contextmanager
def as_user(roles: Roles, tenant: Tenant, user: str) -> Iterator[Conn]:
    """A transaction of the application login authenticated with ``user``'s token."""
    with (
        psycopg.connect(roles.app) as conn,
        authenticated_transaction(conn, token_for(tenant.id, user)),
    ):
        yield conn


@contextmanager
def as_key(roles: Roles, key: str) -> Iterator[Conn]:
    """A transaction of the application login authenticated with an API key."""
    with psycopg.connect(roles.app) as conn, api_key_transaction(conn, key):
        yield conn


def rows_of(roles: Roles, tenant: Tenant) -> dict[str, list[str]]:
    """Every row of every usage table of ``tenant``, as text (read by the superuser)."""
    with psycopg.connect(roles.superuser) as conn:
        return {
            table: sorted(
                r[0]
                for r in conn.execute(
                    sql.SQL("select t::text from tenancy.{} as t where t.tenant_id = %s").format(
                        sql.Identifier(table)
                    ),
                    (tenant.id,),
                )
            )
            for table in USAGE_TABLES
        }


def counters_of(roles: Roles, tenant: Tenant, customer: str, meter: str) -> list[tuple[Any, ...]]:
    """(period_start, used, reserved, events) of every counter of one customer and meter."""
    with psycopg.connect(roles.superuser) as conn:
        return [
            tuple(r)
            for r in conn.execute(
                "select u.period_start, u.used, u.reserved, u.events from tenancy.usage_counters u"
                " join tenancy.customers c on c.tenant_id = u.tenant_id and c.id = u.customer_id"
                " join tenancy.meters m on m.tenant_id = u.tenant_id and m.id = u.meter_id"
                " where u.tenant_id = %s and c.external_id = %s and m.key = %s"
                " order by u.period_start",
                (tenant.id, customer, meter),
            )
        ]


def create_key(roles: Roles, tenant: Tenant, role: str) -> str:
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, tenant.id, tenant.owner):
        return str(one(conn, "select key from tenancy.create_api_key(%s, %s)", (role, role)))


@pytest.fixture
def usage(roles: Roles, make_tenant: Any) -> Usage:
    a, b = make_tenant(), make_tenant()
    with psycopg.connect(roles.service, autocommit=True) as conn:
        conn.execute("select tenancy.ensure_usage_partitions(3)")  # the daily job
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, a.id, a.owner):
        conn.execute("select tenancy.create_meter('api_calls')")
        conn.execute(
            "select tenancy.create_meter('seats', p_aggregation => 'unique_count',"
            " p_property => 'user')"
        )
        conn.execute(
            "select tenancy.create_tier('pro', 29, '{\"api_calls\": 10, \"seats\": 3}',"
            " '{custom_domain}')"
        )
        conn.execute("select tenancy.subscribe('cust-a', 'pro')")
        conn.execute(
            "select tenancy.track_usage('api_calls', 'cust-a', 8, p_idempotency_key => 'key-a',"
            " p_enforce => true)"
        )
        conn.execute(
            "select tenancy.track_usage('seats', 'cust-a', p_properties => '{\"user\": \"alice\"}')"
        )
        hold = one(
            conn, "select reservation_id from tenancy.reserve_usage('cust-a', 'api_calls', 1)"
        )
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, b.id, b.owner):
        conn.execute("select tenancy.create_meter('b_calls')")
        conn.execute("select tenancy.create_tier('basic', 5, '{\"b_calls\": 5}')")
        conn.execute("select tenancy.subscribe('cust-b', 'basic')")
    return Usage(
        a=a,
        b=b,
        a_hold=hold,
        b_admin=add_member(roles, b, "admin"),
        b_member=add_member(roles, b, "member"),
        b_viewer=add_member(roles, b, "viewer"),
        b_member_key=create_key(roles, b, "member"),
        b_viewer_key=create_key(roles, b, "viewer"),
    )


# -- privileges -------------------------------------------------------------------------------


def test_only_the_public_usage_functions_are_executable_by_the_app(
    roles: Roles, usage: Usage
) -> None:
    names = sorted(p.stem for p in (testing.repo_root() / "sql/functions/usage").glob("*.sql"))
    with psycopg.connect(roles.superuser) as conn:
        executable = {
            r[0]
            for r in conn.execute(
                "select p.proname from pg_catalog.pg_proc as p"
                " where p.pronamespace = 'tenancy'::regnamespace and p.proname = any(%s)"
                " and has_function_privilege('tenancy_app', p.oid, 'execute')",
                (names,),
            )
        }
    assert executable == PUBLIC_FUNCTIONS
    a = usage.a
    with psycopg.connect(roles.superuser) as conn:
        a_meter, a_customer = one(
            conn,
            "select m.id, c.id from tenancy.meters m, tenancy.customers c where m.tenant_id = %s"
            " and m.key = 'api_calls' and c.tenant_id = m.tenant_id and c.external_id = 'cust-a'",
            (a.id,),
        )
    before = rows_of(roles, a)
    internal_calls = [
        ("select tenancy.settle_reservation(%s, %s, 'released')", (a.id, usage.a_hold)),
        ("select tenancy.usage_customer_id(%s, 'planted-by-b')", (a.id,)),
        ("select tenancy.sweep_usage_holds(%s, %s, %s, now())", (a.id, a_customer, a_meter)),
        ("select tenancy.current_tier_version(%s, 'pro')", (a.id,)),
        (
            "select * from tenancy.record_usage(%s, null::tenancy.meters, 'cust-a', 1, '{}',"
            " null, null, false)",
            (a.id,),
        ),
        ("select tenancy.require_usage_role(null, 'x')", None),
        ("select tenancy.check_subscription_overrides(%s, '{}', '{}', '{}')", (a.id,)),
        (
            "select tenancy.check_tier_terms(%s, 'x', 1, 'USD', '{}', '{}', '{}', '{}', '{1}')",
            (a.id,),
        ),
        ("select * from tenancy.usage_period('month', null, now())", None),
        ("select tenancy.usage_timestamp('2020-01-01T00:00:00Z')", None),
        ("select tenancy.ensure_usage_partitions(1)", None),
    ]
    for user in (usage.b.owner, usage.b_member):
        with as_user(roles, usage.b, user) as conn:
            for query, params in internal_calls:
                assert refused(conn, query, params) == "42501", query
    with as_key(roles, usage.b_member_key) as conn:
        for query, params in internal_calls:
            assert refused(conn, query, params) == "42501", query
    assert rows_of(roles, a) == before
    # The rightful way: A's member releases A's hold through the public function.
    member_a = add_member(roles, a, "member")
    with as_user(roles, a, member_a) as conn:
        conn.execute("select tenancy.release_reservation(%s)", (usage.a_hold,))
    with psycopg.connect(roles.superuser) as conn:
        state = one(
            conn,
            "select state from tenancy.usage_reservations where tenant_id = %s and id = %s",
            (a.id, usage.a_hold),
        )
    assert state == "released"


def test_direct_writes_partitions_and_the_event_sequence_are_refused(
    roles: Roles, usage: Usage
) -> None:
    a, b = usage.a, usage.b
    before = rows_of(roles, a)
    with as_user(roles, b, b.owner) as conn:
        partitions = [
            r[0]
            for r in conn.execute(
                "select c.relname from pg_catalog.pg_inherits i"
                " join pg_catalog.pg_class c on c.oid = i.inhrelid"
                " where i.inhparent = 'tenancy.usage_events'::regclass order by 1"
            )
        ]
        assert "usage_events_default" in partitions and len(partitions) >= 2
        for table in USAGE_TABLES:
            name = sql.Identifier("tenancy", table)
            for statement in (
                sql.SQL("insert into {} default values"),
                sql.SQL("insert into {} (tenant_id) values (%s)"),
                sql.SQL("update {} set tenant_id = tenant_id"),
                sql.SQL("delete from {}"),
                sql.SQL("truncate {}"),
                sql.SQL("lock table {} in exclusive mode"),
            ):
                query = statement.format(name)
                params = (a.id,) if "%s" in query.as_string(conn) else None
                assert refused(conn, query, params) == "42501", query.as_string(conn)
            # Reads go through the policies: B's rows only.
            count = sql.SQL("select count(*) from {} where tenant_id = %s").format(name)
            assert conn.execute(count, (a.id,)).fetchone() == (0,), table
        for partition in partitions:
            name = sql.Identifier("tenancy", partition)
            for statement in (
                sql.SQL("select count(*) from {}"),
                sql.SQL("explain select * from {}"),
                sql.SQL("delete from {}"),
            ):
                assert refused(conn, statement.format(name)) == "42501", partition
        for probe in (
            "select nextval('tenancy.usage_events_id_seq')",
            "select setval('tenancy.usage_events_id_seq', 1)",
            "select last_value from tenancy.usage_events_id_seq",
        ):
            assert refused(conn, probe) == "42501", probe
        # The rightful way: B's usage through the functions, visible to B.
        conn.execute("select tenancy.track_usage('b_calls', 'cust-b', 2)")
        assert one(conn, "select count(*) from tenancy.usage_events") == 1
        assert one(conn, "select sum(used) from tenancy.usage_counters") == 2
        assert one(conn, "select count(*) from tenancy.meters") == 1
    assert rows_of(roles, a) == before


# -- the other tenant's identifiers ----------------------------------------------------------


def test_every_function_with_the_other_tenants_identifiers(roles: Roles, usage: Usage) -> None:
    a, b = usage.a, usage.b
    before = rows_of(roles, a)
    hold = str(usage.a_hold)
    for user in (b.owner, usage.b_admin):
        with as_user(roles, b, user) as conn:
            assert refused(conn, "select tenancy.commit_reservation(%s)", (hold,)) == "P0002"
            assert refused(conn, "select tenancy.commit_reservation(%s, 0)", (hold,)) == "P0002"
            assert refused(conn, "select tenancy.release_reservation(%s)", (hold,)) == "P0002"
            for query in (
                "select tenancy.track_usage('api_calls', 'cust-a', p_enforce => true)",
                "select tenancy.track_usage('seats', 'cust-a', p_properties => '{}')",
                "select tenancy.check_usage_enforcement('cust-a', 'api_calls')",
                "select tenancy.reserve_usage('cust-a', 'api_calls', 1)",
                "select tenancy.change_tier('cust-a', 'pro')",
                "select tenancy.subscribe('cust-a', 'pro')",
                "select tenancy.update_tier('pro', p_usage_caps => '{\"b_calls\": 1000}')",
            ):
                assert refused(conn, query) == "P0002", query
            # A's customer, feature and hold are unknown to B; a cap override or a tier naming
            # A's meter is bad input in B.
            assert (
                refused(conn, "select tenancy.set_subscription_overrides('cust-a', '{}')")
                == "P0002"
            )
            assert (
                refused(
                    conn,
                    "select tenancy.set_subscription_overrides('cust-b', '{\"api_calls\": 1}')",
                )
                == "22023"
            )
            assert (
                refused(conn, "select tenancy.create_tier('b-pro', 1, '{\"api_calls\": 1}')")
                == "22023"
            )
            assert one(conn, "select tenancy.has_entitlement('cust-a', 'custom_domain')") is False
            enforcement = one(
                conn,
                "select allowed, used, cap, reserved from tenancy.check_usage_enforcement("
                "'cust-a', 'b_calls')",
            )
            assert enforcement == (True, 0, None, 0)
            assert conn.execute(
                "select meter, used, cap from tenancy.customer_usage('cust-a')"
            ).fetchall() == [("b_calls", 0, None)]
            assert (
                conn.execute(
                    "select * from tenancy.usage_summary('-infinity', 'infinity')"
                ).fetchall()
                == []
            )
    with as_key(roles, usage.b_member_key) as conn:
        assert refused(conn, "select tenancy.commit_reservation(%s)", (hold,)) == "P0002"
        assert refused(conn, "select tenancy.release_reservation(%s)", (hold,)) == "P0002"
        assert refused(conn, "select tenancy.track_usage('api_calls', 'cust-a')") == "P0002"
    assert rows_of(roles, a) == before
    # The rightful tenant: the same calls succeed in A.
    with as_user(roles, a, a.owner) as conn:
        assert one(conn, "select tenancy.has_entitlement('cust-a', 'custom_domain')") is True
        assert one(
            conn,
            "select used, cap, reserved from tenancy.check_usage_enforcement('cust-a',"
            " 'api_calls')",
        ) == (8, 10, 1)
        assert one(conn, "select outcome from tenancy.commit_reservation(%s)", (hold,)) == (
            "recorded"
        )
        conn.execute("select tenancy.change_tier('cust-a', 'pro')")
        conn.execute("select tenancy.set_subscription_overrides('cust-a', '{\"api_calls\": 20}')")
        conn.execute("select tenancy.update_tier('pro', p_price => 30)")
        assert (
            one(
                conn,
                "select outcome from tenancy.track_usage('api_calls', 'cust-a', p_enforce => true)",
            )
            == "recorded"
        )
        summary = conn.execute(
            "select customer, meter, value from tenancy.usage_summary('-infinity', 'infinity')"
        ).fetchall()
        assert summary == [("cust-a", "api_calls", 10), ("cust-a", "seats", 1)]


def test_names_the_other_tenant_uses_reveal_nothing(roles: Roles, usage: Usage) -> None:
    """Unique keys lead with tenant_id: B taking A's meter, tier, customer and idempotency key
    names succeeds as if A had none, and A keeps its own."""
    a, b = usage.a, usage.b
    before = rows_of(roles, a)
    with as_user(roles, b, b.owner) as conn:
        conn.execute("select tenancy.create_meter('api_calls')")
        conn.execute(
            "select tenancy.create_meter('seats', p_aggregation => 'unique_count',"
            " p_property => 'user')"
        )
        conn.execute("select tenancy.create_tier('pro', 1, '{\"api_calls\": 3}')")
        customer = one(conn, "select tenancy.create_customer('cust-a', 'B''s own')")
        conn.execute("select tenancy.subscribe('cust-a', 'pro')")
        first = one(
            conn,
            "select outcome, used, cap from tenancy.track_usage('api_calls', 'cust-a', 2,"
            " p_idempotency_key => 'key-a', p_enforce => true)",
        )
        assert first == ("recorded", 2, 3)  # not A's duplicate, not A's counter or cap
        seat = one(
            conn,
            "select outcome, used from tenancy.track_usage('seats', 'cust-a',"
            ' p_properties => \'{"user": "alice"}\')',
        )
        assert seat == ("recorded", 1)  # A's distinct value is not B's
        hold = one(
            conn,
            "select allowed, used, reserved from tenancy.reserve_usage('cust-a', 'api_calls', 1)",
        )
        assert hold == (True, 2, 1)
        # A duplicate in B names B alone.
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute("select tenancy.create_meter('api_calls')")
        assert info.value.sqlstate == "23505"
        assert str(b.id) in str(info.value) and str(a.id) not in str(info.value)
    with psycopg.connect(roles.superuser) as conn:
        a_customer = one(
            conn,
            "select id from tenancy.customers where tenant_id = %s and external_id = 'cust-a'",
            (a.id,),
        )
    assert customer != a_customer
    assert rows_of(roles, a) == before


# -- roles -------------------------------------------------------------------------------------


VIEWER_WRITES = [
    "select tenancy.track_usage('b_calls', 'cust-b')",
    'select tenancy.track_usage_batch(\'[{"meter": "b_calls", "customer": "cust-b"}]\')',
    "select tenancy.track_usage_batch('[]')",
    "select tenancy.reserve_usage('cust-b', 'b_calls', 1)",
    "select tenancy.commit_reservation(gen_random_uuid())",
    "select tenancy.release_reservation(gen_random_uuid())",
]
MANAGER_WRITES = [
    "select tenancy.create_meter('viewer_meter')",
    "select tenancy.create_customer('viewer-customer')",
    "select tenancy.create_tier('viewer tier', 1)",
    "select tenancy.update_tier('basic', p_price => 0)",
    "select tenancy.subscribe('viewer-customer', 'basic')",
    "select tenancy.change_tier('cust-b', 'basic')",
    "select tenancy.set_subscription_overrides('cust-b', '{\"b_calls\": 1000}')",
    "select tenancy.usage_summary('-infinity', 'infinity')",
]
READS = [
    "select tenancy.check_usage_enforcement('cust-b', 'b_calls')",
    "select tenancy.customer_usage('cust-b')",
    "select tenancy.has_entitlement('cust-b', 'x')",
]


def test_viewers_write_nothing_and_members_manage_nothing(roles: Roles, usage: Usage) -> None:
    b = usage.b
    before = rows_of(roles, b)
    for session in (
        partial(as_user, roles, b, usage.b_viewer),
        partial(as_key, roles, usage.b_viewer_key),
    ):
        with session() as conn:
            for query in VIEWER_WRITES + MANAGER_WRITES:
                assert refused(conn, query) == "42501", query
            for query in READS:
                assert refused(conn, query) is None, query
    for session in (
        partial(as_user, roles, b, usage.b_member),
        partial(as_key, roles, usage.b_member_key),
    ):
        with session() as conn:
            for query in MANAGER_WRITES:
                assert refused(conn, query) == "42501", query
    assert rows_of(roles, b) == before
    # The rightful roles: members and member keys track, owners and admins manage.
    with as_key(roles, usage.b_member_key) as conn:
        assert one(conn, "select outcome from tenancy.track_usage('b_calls', 'cust-b')") == (
            "recorded"
        )
    with as_user(roles, b, usage.b_admin) as conn:
        for query in MANAGER_WRITES:
            assert refused(conn, query) is None, query


def test_a_role_changed_mid_transaction_keeps_the_context_it_was_set_with(
    roles: Roles, usage: Usage
) -> None:
    b = usage.b
    track = "select outcome from tenancy.track_usage('b_calls', 'cust-b')"
    with as_user(roles, b, usage.b_viewer) as conn:
        assert refused(conn, track) == "42501"
        with psycopg.connect(roles.service) as owner, tenant_transaction(owner, b.id, b.owner):
            owner.execute("select tenancy.set_member_role(%s, 'member')", (usage.b_viewer,))
        assert refused(conn, track) == "42501"  # the upgrade reaches the next context only
    with as_user(roles, b, usage.b_viewer) as conn:
        assert one(conn, track) == "recorded"
    # Removed while its context is set: the context ends with its transaction (README: a
    # context already set keeps working until then); the next one is refused, in every level.
    with psycopg.connect(roles.app) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with authenticated_transaction(conn, token_for(b.id, usage.b_member)):
            with psycopg.connect(roles.service) as owner, tenant_transaction(owner, b.id, b.owner):
                owner.execute("select tenancy.remove_member(%s)", (usage.b_member,))
            assert one(conn, track) == "recorded"
        for level in psycopg.IsolationLevel:
            conn.isolation_level = level
            with (
                pytest.raises(AuthenticationRefused) as refusal,
                authenticated_transaction(conn, token_for(b.id, usage.b_member)),
            ):
                pass
            assert refusal.value.sqlstate == "TN003"
    assert counters_of(roles, b, "cust-b", "b_calls")[0][3] == 2


# -- hostile input ------------------------------------------------------------------------------


HOSTILE_BATCH = """[
 {"meter": "b_calls", "customer": "h1", "value": 1e400},
 {"meter": "b_calls", "customer": "h1", "value": -0},
 {"meter": "b_calls", "customer": "h1", "value": 1e-400},
 {"meter": "b_calls", "customer": "h1", "value": "5"},
 {"meter": {"key": "b_calls"}, "customer": "h1"},
 {"meter": "b_calls", "customer": {"id": "cust-a"}},
 {"meter": "b_calls", "customer": "h1", "properties": {"a": {"b": [1, {"c": null}]}}},
 {"meter": "b_calls", "meter": "api_calls", "customer": "h1"},
 {"meter": "api_calls", "meter": "b_calls", "customer": "h1", "enforce": true, "enforce": false},
 {"meter": "b_calls", "customer": "cust\\u2011a\\u200b\\ud83d\\ude00"},
 {"meter": "b_calls", "customer": "h1", "occurred_at": "infinity"},
 {"meter": "b_calls", "customer": "h1", "occurred_at": "epoch"},
 {"meter": "b_calls", "customer": "h1", "occurred_at": "now"},
 {"meter": "b_calls", "customer": "h1", "occurred_at": "1999-01-08 04:05:06 PST"},
 {"meter": "b_calls", "customer": "h1", "occurred_at": "0000-01-01T00:00:00Z"},
 {"meter": "b_calls", "customer": "h1", "occurred_at": "294277-01-01T00:00:00Z"},
 {"meter": "b_calls", "customer": "h1", "occurred_at": "9999-12-31T23:59:59Z"},
 {"meter": "b_calls", "customer": "h1", "occurred_at": 1733500000},
 {"meter": "b_calls", "customer": "h1", "idempotency_key": 7},
 {"meter": "b_calls", "customer": "h1", "enforce": "true"},
 {"meter": "b_calls", "customer": "h1", "properties": "{}"},
 {"meter": "b_calls", "customer": ""},
 {"meter": "api_calls", "customer": "cust-a"},
 null, [], 5, "x"
]"""
HOSTILE_OUTCOMES = (
    [("invalid", "22023")]  # 1e400 is above 1e18
    + ["recorded"] * 2  # -0 and 1e-400 are numbers from 0
    + [("invalid", "22023")] * 3
    + ["recorded"]
    + [("invalid", "P0002")]  # duplicate keys: the last one wins, as in jsonb
    + ["recorded"] * 2
    + [("invalid", "22007")] * 6
    + [("invalid", "TN018"), ("invalid", "22007")]
    + [("invalid", "22023")] * 4
    + [("invalid", "P0002")]  # A's meter is no meter of B's
    + [("invalid", "22023")] * 4
)
ODD_CUSTOMER = "cust\u2011a\u200b\U0001f600"


def test_hostile_batches_are_judged_event_by_event(roles: Roles, usage: Usage) -> None:
    a = usage.a
    before = rows_of(roles, a)
    with as_key(roles, usage.b_member_key) as conn:
        rows = conn.execute(
            "select event_index, outcome, error_code from tenancy.track_usage_batch(%s::jsonb)",
            (HOSTILE_BATCH,),
        ).fetchall()
        assert [r[0] for r in rows] == list(range(len(HOSTILE_OUTCOMES)))
        assert [r[1] if r[1] != "invalid" else (r[1], r[2]) for r in rows] == HOSTILE_OUTCOMES
        # Whole-batch refusals: not an array, too many events, input jsonb cannot hold.
        for batch in ('{"meter": "b_calls"}', "null", "5"):
            assert refused(conn, "select tenancy.track_usage_batch(%s::jsonb)", (batch,)) == (
                "22023"
            )
        assert refused(conn, "select tenancy.track_usage_batch(null)") == "22023"
        too_many = Jsonb([{"meter": "b_calls", "customer": "many"}] * 10_001)
        assert refused(conn, "select tenancy.track_usage_batch(%s)", (too_many,)) == "22023"
        nul = '[{"meter": "b_calls", "customer": "nul\\u0000"}]'
        assert refused(conn, "select tenancy.track_usage_batch(%s::jsonb)", (nul,)) == "22P05"
        # Single events: the same instants are outside the window, the same values refused.
        for at in ("infinity", "-infinity", "epoch", "1999-01-08 04:05:06 PST", "294276-01-01"):
            assert (
                refused(
                    conn,
                    "select tenancy.track_usage('b_calls', 'h2', p_occurred_at => %s::timestamptz)",
                    (at,),
                )
                == "TN018"
            ), at
        for value in ("NaN", "Infinity", "-Infinity", "-1"):
            assert (
                refused(conn, "select tenancy.track_usage('b_calls', 'h2', %s::numeric)", (value,))
                == "22023"
            ), value
        assert (
            one(
                conn,
                "select outcome from tenancy.track_usage('b_calls', 'h2', p_occurred_at => 'now')",
            )
            == "recorded"
        )
        # What the batch recorded, exactly.
        used = dict(
            conn.execute(
                "select c.external_id, u.used = case c.external_id when 'h1'"
                " then 2 + 1e-400 else 1 end"
                " from tenancy.usage_counters u"
                " join tenancy.customers c on c.tenant_id = u.tenant_id and c.id = u.customer_id"
                " where c.external_id <> 'cust-b'"
            ).fetchall()
        )
        assert used == {"h1": True, ODD_CUSTOMER: True, "h2": True}
    assert rows_of(roles, a) == before


def test_a_full_batch_counts_every_event_once(roles: Roles, usage: Usage) -> None:
    b = usage.b
    events = [
        {"meter": "b_calls", "customer": f"full-{i % 20}", "idempotency_key": f"k{i % 9000}"}
        for i in range(10_000)
    ]
    with as_key(roles, usage.b_member_key) as conn:
        outcomes = dict(
            conn.execute(
                "select outcome, count(*) from tenancy.track_usage_batch(%s) group by 1",
                (Jsonb(events),),
            ).fetchall()
        )
    # keys repeat per customer only when i and i + 9000 share one: i % 20 == (i + 9000) % 20
    assert outcomes == {"recorded": 9000, "duplicate": 1000}
    with psycopg.connect(roles.superuser) as conn:
        assert one(
            conn,
            "select sum(used), sum(events) from tenancy.usage_counters where tenant_id = %s",
            (b.id,),
        ) == (9000, 9000)


def test_batch_event_with_an_impossible_offset_is_reported_alone(
    roles: Roles, usage: Usage
) -> None:
    """tenancy.usage_timestamp accepts any two-digit offset but catches only 22007 and 22008:
    an offset PostgreSQL refuses (22009, beyond +-15:59) aborts the whole batch."""
    batch = [
        {"meter": "b_calls", "customer": "cust-b"},
        {"meter": "b_calls", "customer": "cust-b", "occurred_at": "2026-01-01T00:00:00+16:00"},
    ]
    with as_key(roles, usage.b_member_key) as conn:
        assert refused(conn, "select tenancy.track_usage_batch(%s)", (Jsonb(batch),)) is None
        rows = conn.execute(
            "select outcome, error_code from tenancy.track_usage_batch(%s)", (Jsonb(batch),)
        ).fetchall()
    assert rows == [("recorded", None), ("invalid", "22007")]


def test_batch_event_with_an_oversized_distinct_value_is_reported_alone(
    roles: Roles, usage: Usage
) -> None:
    """A unique_count value is a key of usage_unique_values' primary key: one too big for a
    btree entry (54000) aborts the whole batch, and track_usage raises an undocumented error."""
    b = usage.b
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, b.id, b.owner):
        conn.execute(
            "select tenancy.create_meter('b_seats', p_aggregation => 'unique_count',"
            " p_property => 'user')"
        )
    big = "".join(uuid.uuid4().hex for _ in range(120))  # 3,840 incompressible characters
    batch = [
        {"meter": "b_seats", "customer": "cust-b", "properties": {"user": "bob"}},
        {"meter": "b_seats", "customer": "cust-b", "properties": {"user": big}},
    ]
    with as_key(roles, usage.b_member_key) as conn:
        assert refused(conn, "select tenancy.track_usage_batch(%s)", (Jsonb(batch),)) is None
        rows = conn.execute(
            "select outcome, error_code from tenancy.track_usage_batch(%s)", (Jsonb(batch[:1]),)
        ).fetchall()
        assert rows == [("recorded", None)]
        state = refused(
            conn,
            "select tenancy.track_usage('b_seats', 'cust-b', p_properties => %s)",
            (Jsonb({"user": big}),),
        )
        assert state in (None, "22023")


def test_invalid_batch_events_create_no_customers(roles: Roles, usage: Usage) -> None:
    """Nothing of an invalid event is written (track_usage refuses before it makes the
    customer), but track_usage_batch first makes the customer of every event that names a
    meter of the tenant, whatever else is wrong with it."""
    b = usage.b
    invalid = [
        {"meter": "b_calls", "customer": "ghost-negative", "value": -1},
        {"meter": "b_calls", "customer": "ghost-old", "occurred_at": "2000-01-01T00:00:00Z"},
        {"meter": "b_calls", "customer": "ghost-time", "occurred_at": "yesterday"},
        {"meter": "b_calls", "customer": "ghost-key", "idempotency_key": ""},
        {"meter": "b_calls", "customer": "ghost-enforce", "enforce": 1},
        {"meter": "b_calls", "customer": "ghost-properties", "properties": []},
    ]
    with as_key(roles, usage.b_member_key) as conn:
        rows = conn.execute(
            "select outcome from tenancy.track_usage_batch(%s)",
            (Jsonb([*invalid, {"meter": "b_calls", "customer": "real"}]),),
        ).fetchall()
        assert [r[0] for r in rows] == ["invalid"] * len(invalid) + ["recorded"]
    with psycopg.connect(roles.superuser) as conn:
        made = [
            r[0]
            for r in conn.execute(
                "select external_id from tenancy.customers where tenant_id = %s"
                " and external_id <> 'cust-b' order by 1",
                (b.id,),
            )
        ]
    assert made == ["real"]


def test_a_huge_value_cannot_stop_a_counter(roles: Roles, usage: Usage) -> None:
    """Values have no upper bound: a member records 10^131072 - 1 (the largest numeric), and
    every later event of that customer and meter in the period fails with 22003 instead of
    counting; two such values in one batch abort the whole batch."""
    b = usage.b
    huge = '{"meter": "b_calls", "customer": "big-batch", "value": ' + "9" * 131_072 + "}"
    with as_key(roles, usage.b_member_key) as conn:
        assert (
            refused(conn, "select tenancy.track_usage_batch(%s::jsonb)", (f"[{huge}, {huge}]",))
            is None
        )
        refused(conn, "select tenancy.track_usage('b_calls', 'big', repeat('9', 131072)::numeric)")
    with as_key(roles, usage.b_member_key) as conn:
        assert refused(conn, "select tenancy.track_usage('b_calls', 'big', 1)") is None
    assert counters_of(roles, b, "big", "b_calls")[0][3] >= 1


# -- caps, periods and holds ------------------------------------------------------------------


def test_a_hold_committed_in_a_later_period_cannot_exceed_a_hard_cap(
    roles: Roles, usage: Usage
) -> None:
    """commit_reservation records the held amount at commit time, unenforced: a hold taken at
    the end of one period and committed in the next counts on top of the next period's full
    cap (10 used against a hard cap of 5)."""
    b = usage.b
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, b.id, b.owner):
        conn.execute("select tenancy.create_meter('b_daily', p_reset_period => 'day')")
        conn.execute("select tenancy.create_tier('daily', 0, '{\"b_daily\": 5}')")
        # Daily periods anchored 1.5 seconds from now: the current period is about to end.
        conn.execute(
            "select tenancy.subscribe('roll', 'daily',"
            " pg_catalog.clock_timestamp() - interval '1 day' + interval '1.5 seconds')"
        )
    with as_key(roles, usage.b_member_key) as conn:
        hold, allowed = one(
            conn, "select reservation_id, allowed from tenancy.reserve_usage('roll', 'b_daily', 5)"
        )
        assert allowed
        left = one(
            conn,
            "select extract(epoch from period_end - clock_timestamp())::float8"
            " from tenancy.check_usage_enforcement('roll', 'b_daily')",
        )
        assert 0 < left < 1.5  # the hold is in the period about to end
    time.sleep(left + 0.2)
    with as_key(roles, usage.b_member_key) as conn:
        assert (
            one(
                conn,
                "select outcome from tenancy.track_usage('b_daily', 'roll', 5, p_enforce => true)",
            )
            == "recorded"
        )
        conn.execute("select tenancy.commit_reservation(%s)", (hold,))
    counters = counters_of(roles, b, "roll", "b_daily")
    assert len(counters) == 2
    assert all(used + reserved <= 5 for _, used, reserved, _ in counters), counters


def race_once(conn: Conn, customer: str, way: int) -> int:
    """Units of meter race recorded for ``customer`` by one attempt: two enforced batch events
    (way 0), a hold of 1 committed (way 1) or one enforced event (way 2)."""
    if way == 0:
        batch = Jsonb([{"meter": "race", "customer": customer, "enforce": True}] * 2)
        return int(
            one(
                conn,
                "select count(*) filter (where outcome = 'recorded')"
                " from tenancy.track_usage_batch(%s)",
                (batch,),
            )
        )
    if way == 1:
        hold, allowed = one(
            conn,
            "select reservation_id, allowed from tenancy.reserve_usage(%s, 'race', 1)",
            (customer,),
        )
        if not allowed:
            return 0
        outcome = one(conn, "select outcome from tenancy.commit_reservation(%s)", (hold,))
    else:
        outcome = one(
            conn,
            "select outcome from tenancy.track_usage('race', %s, p_enforce => true)",
            (customer,),
        )
    return int(outcome == "recorded")


def test_hard_caps_are_exact_under_concurrency_in_every_isolation_level(
    roles: Roles, usage: Usage
) -> None:
    """Single events, enforced batch events and holds committed at once race for one hard cap
    in each isolation level: exactly the cap is recorded, once, and the log agrees."""
    b = usage.b
    cap = 12
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, b.id, b.owner):
        conn.execute("select tenancy.create_meter('race')")
        conn.execute("select tenancy.create_tier('race tier', 0, %s)", (Jsonb({"race": cap}),))
        for level in psycopg.IsolationLevel:
            conn.execute("select tenancy.subscribe(%s, 'race tier')", (f"racer-{level.name}",))
    errors: list[BaseException] = []

    def worker(level: psycopg.IsolationLevel, n: int, recorded: list[int]) -> None:
        try:
            with psycopg.connect(roles.app) as conn:
                conn.isolation_level = level
                for i in range(6):
                    while True:
                        try:
                            with authenticated_transaction(conn, token_for(b.id, usage.b_member)):
                                got = race_once(conn, f"racer-{level.name}", (n + i) % 3)
                        except (
                            psycopg.errors.SerializationFailure,
                            psycopg.errors.DeadlockDetected,
                        ):
                            continue
                        recorded.append(got)
                        break
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    for level in psycopg.IsolationLevel:
        recorded: list[int] = []
        threads = [threading.Thread(target=worker, args=(level, n, recorded)) for n in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sum(recorded) == cap, level
        assert counters_of(roles, b, f"racer-{level.name}", "race")[0][1:] == (cap, 0, cap)
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, b.id, b.owner):
        summary = conn.execute(
            "select customer, value, events from tenancy.usage_summary('-infinity', 'infinity')"
            " where meter = 'race'"
        ).fetchall()
    assert sorted(summary) == sorted(
        (f"racer-{level.name}", cap, cap) for level in psycopg.IsolationLevel
    )


# -- session settings, temporary objects, EXPLAIN ---------------------------------------------


def test_periods_and_windows_stay_utc_whatever_the_session_settings(
    roles: Roles, usage: Usage
) -> None:
    b = usage.b
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, b.id, b.owner):
        conn.execute("select tenancy.create_meter('b_day', p_reset_period => 'day')")
    now = datetime.datetime.now(UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (month + datetime.timedelta(days=32)).replace(day=1)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    settings = [
        "set timezone = 'Pacific/Chatham'",
        "set datestyle = 'SQL, DMY'",
        "set intervalstyle = 'sql_standard'",
        "set search_path = pg_temp, public",
        "set extra_float_digits = -15",
    ]
    with psycopg.connect(roles.app, autocommit=True) as conn:
        for setting in settings:  # left in the session, as by an earlier borrower
            conn.execute(setting)
        conn.autocommit = False
        with authenticated_transaction(conn, token_for(b.id, usage.b_member)):
            # Binary results: psycopg cannot read timestamps in DateStyle SQL as text.
            periods = [
                conn.execute(query, binary=True).fetchone()
                for query in (
                    "select period_start, period_end from tenancy.track_usage('b_calls', 'no-sub')",
                    "select period_start, period_end from tenancy.track_usage('b_day', 'no-sub')",
                    "select period_start, period_end"
                    " from tenancy.check_usage_enforcement('no-sub', 'b_day')",
                    "select period_start, period_end from tenancy.customer_usage('no-sub')"
                    " where meter = 'b_calls'",
                )
            ]
            a_day = (day, day + datetime.timedelta(days=1))
            assert periods == [(month, next_month), a_day, a_day, (month, next_month)]
            iso = now.astimezone(datetime.timezone(datetime.timedelta(hours=13, minutes=45)))
            old = now - datetime.timedelta(days=2)
            rows = conn.execute(
                "select outcome, error_code from tenancy.track_usage_batch(%s)",
                (
                    Jsonb(
                        [
                            {
                                "meter": "b_day",
                                "customer": "no-sub",
                                "occurred_at": iso.isoformat(),
                            },
                            {
                                "meter": "b_day",
                                "customer": "no-sub",
                                "occurred_at": old.isoformat(),
                            },
                        ]
                    ),
                ),
            ).fetchall()
            assert rows == [("recorded", None), ("invalid", "TN018")]
            assert (
                refused(
                    conn,
                    "select tenancy.track_usage('b_day', 'no-sub', p_occurred_at => %s)",
                    (old,),
                )
                == "TN018"
            )


def test_statement_timeout_mid_batch_writes_nothing(roles: Roles, usage: Usage) -> None:
    b = usage.b
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, b.id, b.owner):
        conn.execute("select tenancy.create_tier('roomy', 0, '{\"b_calls\": 1000000}')")
        conn.execute("select tenancy.subscribe('st-capped', 'roomy')")
    events = [
        {"meter": "b_calls", "customer": f"st-{i % 100}", "idempotency_key": f"st-{i}"}
        for i in range(3000)
    ] + [
        {
            "meter": "b_calls",
            "customer": "st-capped",
            "idempotency_key": f"st-e{i}",
            "enforce": True,
        }
        for i in range(1000)
    ]
    before = rows_of(roles, b)
    with psycopg.connect(roles.app, autocommit=True) as conn:
        conn.execute("set statement_timeout = '300ms'")  # left by an earlier borrower
        conn.autocommit = False
        with (
            pytest.raises(psycopg.errors.QueryCanceled),
            authenticated_transaction(conn, token_for(b.id, usage.b_member)),
        ):
            conn.execute("select * from tenancy.track_usage_batch(%s)", (Jsonb(events),))
        assert rows_of(roles, b) == before
        conn.autocommit = True
        conn.execute("reset statement_timeout")
        conn.autocommit = False
        with authenticated_transaction(conn, token_for(b.id, usage.b_member)):
            outcomes = conn.execute(
                "select outcome, count(*) from tenancy.track_usage_batch(%s) group by 1",
                (Jsonb(events),),
            ).fetchall()
    assert outcomes == [("recorded", 4000)]


# The usage types, and a function and an operator (pg_temp is never searched for these: planted
# to show it), on top of test_hostile_session's shadows of every relation and type name.
PLANT_USAGE = """
create domain pg_temp.usage_key as pg_catalog.text
    check (pg_temp.shadow_spy('type usage_key'));
create type pg_temp.usage_batch_item as (idx pg_catalog.int4);
create function pg_temp.jsonb_typeof(pg_catalog.jsonb) returns pg_catalog.text
    language sql as $f$ select pg_temp.shadow_spy('function jsonb_typeof')::pg_catalog.text $f$;
create function pg_temp.spy_eq(pg_catalog.text, pg_catalog.text) returns pg_catalog.bool
    language sql as $f$ select pg_temp.shadow_spy('operator =') $f$;
create operator pg_temp.= (
    leftarg = pg_catalog.text, rightarg = pg_catalog.text, function = pg_temp.spy_eq
);
"""


def test_temporary_shadows_are_never_used_by_the_usage_functions(
    roles: Roles, usage: Usage, database_url: str
) -> None:
    """pg_temp shadows every relation of schema tenancy (the usage tables and partitions
    included) and every type name, plus the usage types and a temporary function and operator,
    planted before the session compiles any usage function; every function then runs in B with
    the right results and never touches a planted object."""
    b = usage.b
    name = f"t_hostile_usage_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create role {} login in role tenancy_app, tenancy_session_objects").format(
                sql.Identifier(name)
            )
        )
        conn.execute(
            sql.SQL("grant temporary on database {} to {}").format(
                sql.Identifier(testing.dbname_of(database_url)), sql.Identifier(name)
            )
        )
    session = open_hostile(testing.as_login(database_url, name))
    conn = session.conn
    try:
        conn.autocommit = True
        conn.execute(PLANT_USAGE)
        conn.autocommit = False
        with authenticated_transaction(conn, token_for(b.id, b.owner)):
            conn.execute(
                "select tenancy.create_meter('h_seats', p_aggregation => 'unique_count',"
                " p_property => 'user')"
            )
            conn.execute("select tenancy.create_meter('h_latest', p_aggregation => 'latest')")
            conn.execute(
                "select tenancy.create_tier('hostile', 1, '{\"b_calls\": 4, \"h_seats\": 2}',"
                " '{sso}')"
            )
            conn.execute("select tenancy.update_tier('hostile', p_price => 2)")
            conn.execute("select tenancy.create_customer('hc', 'Hostile customer')")
            conn.execute("select tenancy.subscribe('hc', 'hostile')")
            conn.execute("select tenancy.change_tier('hc', 'hostile')")
            conn.execute(
                "select tenancy.set_subscription_overrides('hc', '{\"b_calls\": 5}', '{extra}')"
            )
            assert one(
                conn,
                "select outcome, used from tenancy.track_usage('b_calls', 'hc', 2,"
                " p_idempotency_key => 'hk', p_enforce => true)",
            ) == ("recorded", 2)
            assert (
                one(
                    conn,
                    "select outcome from tenancy.track_usage('b_calls', 'hc', 2,"
                    " p_idempotency_key => 'hk', p_enforce => true)",
                )
                == "duplicate"
            )
            rows = conn.execute(
                "select outcome from tenancy.track_usage_batch(%s)",
                (
                    Jsonb(
                        [
                            {"meter": "b_calls", "customer": "hc", "value": 2, "enforce": True},
                            {"meter": "b_calls", "customer": "hc", "value": 2, "enforce": True},
                            {"meter": "h_seats", "customer": "hc", "properties": {"user": "u1"}},
                            {"meter": "h_latest", "customer": "hc", "value": 7},
                            {
                                "meter": "b_calls",
                                "customer": "hc",
                                "idempotency_key": "hk",
                                "value": 2,
                            },
                        ]
                    ),
                ),
            ).fetchall()
            assert [r[0] for r in rows] == [
                "recorded",
                "refused",
                "recorded",
                "recorded",
                "duplicate",
            ]
            hold = one(conn, "select reservation_id from tenancy.reserve_usage('hc', 'b_calls', 1)")
            assert one(conn, "select outcome from tenancy.commit_reservation(%s)", (hold,)) == (
                "recorded"
            )
            hold = one(conn, "select reservation_id from tenancy.reserve_usage('hc', 'b_calls', 1)")
            assert hold is None  # the cap of 5 is reached
            hold = one(
                conn, "select reservation_id from tenancy.reserve_usage('cust-b', 'b_calls', 1)"
            )
            conn.execute("select tenancy.release_reservation(%s)", (hold,))
            assert one(
                conn,
                "select allowed, used, cap from tenancy.check_usage_enforcement('hc', 'b_calls')",
            ) == (False, 5, 5)
            assert one(conn, "select tenancy.has_entitlement('hc', 'extra')") is True
            assert one(conn, "select tenancy.has_entitlement('hc', 'sso')") is True
            usage_rows = conn.execute(
                "select meter, used from tenancy.customer_usage('hc') order by 1"
            ).fetchall()
            assert usage_rows == [("b_calls", 5), ("h_latest", 7), ("h_seats", 1)]
            summary = conn.execute(
                "select meter, value from tenancy.usage_summary('-infinity', 'infinity')"
                " where customer = 'hc' order by 1"
            ).fetchall()
            assert summary == usage_rows
        recorded = session.recorded()
    finally:
        conn.close()
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
            admin.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))
    assert recorded == [], report(recorded)


def test_explain_analyze_is_no_per_value_oracle(roles: Roles, usage: Usage) -> None:
    """Every key of the usage tables leads with tenant_id: EXPLAIN ANALYZE of B's query on A's
    values reads the same as on values nobody has, index scan or forced sequential scan (the
    count of all other tenants' rows in the latter is the documented aggregate leak,
    docs/key-layout.md)."""
    a, b = usage.a, usage.b
    probes = [
        ("customers", "external_id", "cust-a", "no-such-customer"),
        ("meters", "key", "seats", "no_such_meter"),
        ("tiers", "name", "pro", "no such tier"),
        ("usage_idempotency_keys", "key", "key-a", "no-such-key"),
        ("usage_unique_values", "value", "alice", "nobody"),
        ("usage_counters", "used", "8", "9"),
        ("usage_events", "value", "8", "9"),
        ("usage_reservations", "amount", "1", "2"),
        ("usage_alerts", "threshold", "0.8", "0.9"),
    ]

    def plan(conn: Conn, table: str, column: str, value: str) -> str:
        query = sql.SQL(
            "explain (analyze, costs off, timing off, summary off)"
            " select * from {} where {}::pg_catalog.text = {}"
        ).format(sql.Identifier("tenancy", table), sql.Identifier(column), sql.Literal(value))
        text = "\n".join(r[0] for r in conn.execute(query))
        return text.replace(sql.Literal(value).as_string(conn), "?")

    scans = {
        "index": ("set local enable_seqscan = off", "set local enable_bitmapscan = off"),
        "sequential": ("set local enable_indexscan = off", "set local enable_bitmapscan = off"),
    }
    with as_user(roles, b, b.owner) as conn:
        for scan, settings in scans.items():
            with conn.transaction():
                for setting in settings:
                    conn.execute(setting)
                for table, column, theirs, nobodys in probes:
                    assert plan(conn, table, column, theirs) == plan(
                        conn, table, column, nobodys
                    ), (scan, table)
                raise psycopg.Rollback  # the next scan's settings alone
    with as_user(roles, a, a.owner) as conn:
        for table, column, theirs, _ in probes:
            assert "actual rows=1 " in plan(conn, table, column, theirs), table


# -- the usage log's partitions (shared by every tenant) ---------------------------------------


@contextmanager
def missing_partition(roles: Roles) -> Iterator[str]:
    """The partition a monthly job makes next, missing (as early in a month before the job
    ran); made again with the default settings afterwards."""
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        name = one(conn, NEXT_PARTITION)
        conn.execute("set lock_timeout = '10s'")
        conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier("tenancy", name)))
    try:
        yield name
    finally:
        with psycopg.connect(roles.superuser, autocommit=True) as conn:
            conn.execute("set lock_timeout = '10s'")
            conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier("tenancy", name)))
            conn.execute("select tenancy.ensure_usage_partitions(3)")


def test_partition_bounds_do_not_depend_on_the_callers_session_settings(
    roles: Roles, usage: Usage
) -> None:
    """ensure_usage_partitions writes the bounds as UTC text: a job whose session prints zone
    abbreviations ('SQL' DateStyle; IST, Asia/Kolkata, would read back as Israel's +02) still
    makes months that start at midnight UTC."""
    with missing_partition(roles) as name:
        with psycopg.connect(roles.service, autocommit=True) as conn:
            conn.execute("set timezone = 'Asia/Kolkata'")
            conn.execute("set datestyle = 'SQL, MDY'")
            assert one(conn, "select tenancy.ensure_usage_partitions(3)") >= 1
        with psycopg.connect(roles.superuser) as conn:
            bounds = conn.execute(PARTITION_BOUNDS, (name,)).fetchone()
        year, month = int(name[-7:-3]), int(name[-2:])
        start = datetime.datetime(year, month, 1, tzinfo=UTC)
        end = datetime.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        assert bounds == (start, end)
    # and an application role cannot run it at all, whatever its settings
    with as_user(roles, usage.b, usage.b.owner) as conn:
        assert refused(conn, "select tenancy.ensure_usage_partitions(3)") == "42501"


def test_create_meter_does_not_lock_every_tenants_usage_log(roles: Roles, usage: Usage) -> None:
    """A tenant's open transaction that created a meter while a partition is missing holds no
    lock that another tenant's track_usage waits for (partitions are the job's: create_meter
    makes none)."""
    a, b = usage.a, usage.b
    track = "select tenancy.track_usage('seats', 'cust-a', p_properties => %s)"
    with missing_partition(roles), as_user(roles, b, b.owner) as attacker:
        attacker.execute("select tenancy.create_meter('b_lock_meter')")
        with psycopg.connect(roles.service) as conn, tenant_transaction(conn, a.id, a.owner):
            conn.execute("set local lock_timeout = '1s'")
            assert refused(conn, track, (Jsonb({"user": "bo"}),)) is None


def test_partition_maintenance_cannot_be_blocked_by_an_advisory_lock(
    roles: Roles, usage: Usage
) -> None:
    """ensure_usage_partitions serialises on pg_advisory_xact_lock(oid of usage_events): any
    login may take that advisory lock at session level and keep it past its transactions, and
    the maintenance job (and create_meter of every tenant) then waits for it."""
    with missing_partition(roles), psycopg.connect(roles.app, autocommit=True) as attacker:
        attacker.execute("select pg_advisory_lock('tenancy.usage_events'::regclass::oid::bigint)")
        with psycopg.connect(roles.service) as conn:
            conn.execute("set lock_timeout = '1s'")
            assert refused(conn, "select tenancy.ensure_usage_partitions(3)") is None
