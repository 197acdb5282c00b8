"""Usage metering workloads: batches, period rollover, tier versions, expiring holds, random mixes.

Every call runs as the application login in an owner's or a member's context (one transaction
each, as an application sends them); the database's own state (counters, log, keys, holds) is
read as a superuser to check that what the calls answered is what was written. Time is frozen
by passing instants: a subscription started in the past puts a period boundary inside the 24
hours an event may be backdated, and events name their p_occurred_at on either side of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from conftest import Roles, Tenant, add_member, token_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.abc import Buffer
from psycopg.rows import dict_row
from psycopg.types.datetime import TimestamptzLoader
from psycopg.types.json import Jsonb

from pgtenancy import authenticated_transaction

Row = dict[str, Any]
Conn = psycopg.Connection[Row]

BATCH = "select * from tenancy.track_usage_batch(%s) order by event_index"
TRACK = (
    "select * from tenancy.track_usage(%s, %s, %s, p_properties => %s, p_idempotency_key => %s,"
    " p_occurred_at => %s, p_enforce => %s)"
)
CHECK = "select * from tenancy.check_usage_enforcement(%s, %s, %s)"

# The period of a 'never' meter runs from -infinity to infinity.
BEGINNING = datetime.min.replace(tzinfo=UTC)
END = datetime.max.replace(tzinfo=UTC)


class InfinityLoader(TimestamptzLoader):
    """timestamptz ±infinity as BEGINNING and END (psycopg refuses them by default)."""

    def load(self, data: Buffer) -> datetime:
        if bytes(data) == b"infinity":
            return END
        if bytes(data) == b"-infinity":
            return BEGINNING
        return super().load(data)


def connect(url: str) -> Conn:
    conn = psycopg.connect(url, row_factory=dict_row)
    conn.adapters.register_loader("timestamptz", InfinityLoader)
    return conn


@dataclass
class Shop:
    """A tenant with an owner's and a member's token, and a connection of the application login
    (each call a transaction of its own on it) and one of a superuser (reading what is stored)."""

    roles: Roles
    tenant: Tenant
    owner: str
    member: str
    _app: Conn | None = field(default=None, repr=False)
    _superuser: Conn | None = field(default=None, repr=False)

    @contextmanager
    def tx(self, token: str | None = None) -> Iterator[Conn]:
        """One transaction in ``token``'s context (the owner's by default)."""
        if self._app is None:
            self._app = connect(self.roles.app)
        with authenticated_transaction(self._app, token or self.owner):
            yield self._app

    def superuser(self) -> Conn:
        if self._superuser is None:
            self._superuser = connect(self.roles.superuser)
            self._superuser.autocommit = True
        return self._superuser

    def close(self) -> None:
        for conn in (self._app, self._superuser):
            if conn is not None:
                conn.close()

    def one(self, query: str, params: Any = None, token: str | None = None) -> Row:
        with self.tx(token) as conn:
            row = conn.execute(query, params).fetchone()
        assert row is not None
        return row

    def rows(self, query: str, params: Any = None, token: str | None = None) -> list[Row]:
        with self.tx(token) as conn:
            return conn.execute(query, params).fetchall()

    def track(
        self,
        meter: str,
        customer: str,
        value: Any = 1,
        *,
        properties: dict[str, Any] | None = None,
        key: str | None = None,
        at: datetime | None = None,
        enforce: bool = False,
    ) -> Row:
        """tenancy.track_usage in a member's context."""
        params = (meter, customer, value, Jsonb(properties or {}), key, at, enforce)
        return self.one(TRACK, params, self.member)

    def batch(self, events: list[Any]) -> list[Row]:
        """tenancy.track_usage_batch in a member's context."""
        return self.rows(BATCH, (Jsonb(events),), self.member)

    def check(self, customer: str, meter: str, requested: Any = 1) -> Row:
        return self.one(CHECK, (customer, meter, requested), self.member)

    def db_now(self) -> datetime:
        row = self.superuser().execute("select now()").fetchone()
        assert row is not None
        now: datetime = row["now"]
        return now

    def superuser_rows(self, query: str) -> list[Row]:
        """``query`` as a superuser, with %(t)s bound to this tenant's id."""
        return self.superuser().execute(query, {"t": self.tenant.id}).fetchall()

    def counters(self) -> dict[tuple[str, str, datetime], tuple[Any, int]]:
        """(customer, meter, period start) -> (used, events) of every counter of the tenant."""
        rows = self.superuser_rows(
            """
            select cu.external_id as customer, m.key as meter, c.period_start, c.used, c.events
            from tenancy.usage_counters as c
            join tenancy.customers as cu on cu.tenant_id = c.tenant_id and cu.id = c.customer_id
            join tenancy.meters as m on m.tenant_id = c.tenant_id and m.id = c.meter_id
            where c.tenant_id = %(t)s
            """
        )
        return {
            (r["customer"], r["meter"], r["period_start"]): (r["used"], r["events"]) for r in rows
        }

    def summary(
        self, start: datetime, end: datetime
    ) -> dict[tuple[str, str, datetime], tuple[Any, int]]:
        """tenancy.usage_summary over [start, end), in the owner's context."""
        rows = self.rows("select * from tenancy.usage_summary(%s, %s)", (start, end))
        assert all(r["group_value"] is None for r in rows)
        return {
            (r["customer"], r["meter"], r["period_start"]): (r["value"], r["events"]) for r in rows
        }

    def log_ids(self) -> list[int]:
        rows = self.superuser_rows("select id from tenancy.usage_events where tenant_id = %(t)s")
        return [r["id"] for r in rows]

    def customers(self) -> set[str]:
        rows = self.superuser_rows(
            "select external_id from tenancy.customers where tenant_id = %(t)s"
        )
        return {r["external_id"] for r in rows}


def new_shop(roles: Roles, make_tenant: Callable[[], Tenant]) -> Shop:
    tenant = make_tenant()
    member = add_member(roles, tenant, "member")
    return Shop(
        roles=roles,
        tenant=tenant,
        owner=token_for(tenant.id, tenant.owner, ttl=3600),
        member=token_for(tenant.id, member, ttl=3600),
    )


@pytest.fixture
def shop(roles: Roles, make_tenant: Callable[[], Tenant]) -> Iterator[Shop]:
    shop = new_shop(roles, make_tenant)
    yield shop
    shop.close()


def setup_meters(shop: Shop, statements: list[tuple[str, Any]]) -> None:
    """Owner's set-up calls (meters, tiers, subscriptions), in one transaction."""
    with shop.tx() as conn:
        for query, params in statements:
            conn.execute(query, params)


def sqlstate_of(call: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
    """The SQLSTATE ``call(*args, **kwargs)`` fails with; None when it succeeds."""
    try:
        call(*args, **kwargs)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def iso(at: datetime) -> str:
    return at.isoformat()


# -- a batch with duplicates and invalid events --------------------------------------------------


def test_batch_reports_each_event_and_writes_only_the_valid_ones(shop: Shop) -> None:
    now = shop.db_now()
    seats = (
        "select tenancy.create_meter('seats', p_aggregation => 'unique_count',"
        " p_property => 'user')"
    )
    setup_meters(
        shop,
        [
            ("select tenancy.create_meter('api_calls')", None),
            (seats, None),
            ("select tenancy.create_tier('pro', 10, %s)", (Jsonb({"api_calls": 10}),)),
            # a month from two days ago: events backdated by 23 hours share its period
            ("select tenancy.subscribe('cust-1', 'pro', %s)", (now - timedelta(days=2),)),
        ],
    )
    earlier = shop.track("api_calls", "cust-1", 2, key="early")
    assert earlier["outcome"] == "recorded"
    ok = {"meter": "api_calls", "customer": "cust-1"}
    events: list[tuple[Any, str, str | None]] = [  # (event, outcome, error_code)
        ({**ok, "value": 3, "idempotency_key": "b1"}, "recorded", None),  # 0
        ({**ok, "value": 3, "idempotency_key": "b1"}, "duplicate", None),  # 1: in the batch
        ({**ok, "value": 2, "idempotency_key": "early"}, "duplicate", None),  # 2: earlier
        ({**ok, "value": 5, "idempotency_key": "early"}, "invalid", "TN019"),  # 3: earlier key
        ({**ok, "value": 4, "idempotency_key": "b1"}, "invalid", "TN019"),  # 4: batch's key
        (5, "invalid", "22023"),  # 5: not an object
        ({"customer": "cust-1"}, "invalid", "22023"),  # 6: no meter
        ({"meter": 1, "customer": "cust-1"}, "invalid", "22023"),  # 7: meter not a string
        ({"meter": "nope", "customer": "cust-1"}, "invalid", "P0002"),  # 8: unknown meter
        ({"meter": "api_calls"}, "invalid", "22023"),  # 9: no customer
        ({"meter": "api_calls", "customer": ""}, "invalid", "22023"),  # 10: empty customer
        ({"meter": "api_calls", "customer": "c" * 256}, "invalid", "22023"),  # 11: too long
        ({"meter": "api_calls", "customer": 7}, "invalid", "22023"),  # 12: not a string
        ({**ok, "value": -1}, "invalid", "22023"),  # 13: negative value
        ({**ok, "value": "5"}, "invalid", "22023"),  # 14: value not a number
        ({**ok, "value": None}, "invalid", "22023"),  # 15: null value
        ({**ok, "properties": [1]}, "invalid", "22023"),  # 16: properties not an object
        ({**ok, "properties": {"x": "y" * 17000}}, "invalid", "22023"),  # 17: over 16 KB
        ({"meter": "seats", "customer": "cust-1"}, "invalid", "22023"),  # 18: no 'user'
        ({**ok, "idempotency_key": ""}, "invalid", "22023"),  # 19: empty key
        ({**ok, "idempotency_key": 5}, "invalid", "22023"),  # 20: key not a string
        ({**ok, "idempotency_key": "k" * 256}, "invalid", "22023"),  # 21: key too long
        ({**ok, "enforce": "yes"}, "invalid", "22023"),  # 22: enforce not a boolean
        ({**ok, "occurred_at": "2026-13-01T00:00:00Z"}, "invalid", "22007"),  # 23: no such month
        ({**ok, "occurred_at": "yesterday"}, "invalid", "22007"),  # 24: not ISO 8601
        ({**ok, "occurred_at": 1700000000}, "invalid", "22007"),  # 25: epoch number
        ({**ok, "occurred_at": "2026-01-01T00:00:00"}, "invalid", "22007"),  # 26: no offset
        ({**ok, "occurred_at": iso(now - timedelta(hours=25))}, "invalid", "TN018"),  # 27: too old
        ({**ok, "occurred_at": iso(now + timedelta(minutes=10))}, "invalid", "TN018"),  # 28: ahead
        ({"meter": "seats", "customer": "cust-1", "properties": {"user": "a"}}, "recorded", None),
        ({"meter": "seats", "customer": "cust-1", "properties": {"user": "a"}}, "recorded", None),
        ({"meter": "seats", "customer": "cust-1", "properties": {"user": "b"}}, "recorded", None),
        ({**ok, "value": 4, "enforce": True, "idempotency_key": "e1"}, "recorded", None),  # 32
        ({**ok, "value": 10, "enforce": True}, "refused", None),  # 33: over the hard cap
        ({"meter": "api_calls", "customer": "cust-2", "value": 7}, "recorded", None),  # 34: new
        ({**ok, "value": 1, "occurred_at": iso(now - timedelta(hours=23))}, "recorded", None),
    ]
    rows = shop.batch([e for e, _, _ in events])
    assert [r["event_index"] for r in rows] == list(range(len(events)))
    got = [(r["outcome"], r["error_code"]) for r in rows]
    assert got == [(outcome, code) for _, outcome, code in events]
    for row in rows:
        if row["outcome"] == "invalid":
            assert row["error"], row
            assert (row["event_id"], row["used"], row["cap"], row["remaining"]) == (None,) * 4
        else:
            assert row["error"] is None, row

    recorded = [r["event_id"] for r in rows if r["outcome"] == "recorded"]
    assert None not in recorded and len(set(recorded)) == len(recorded)
    assert rows[1]["event_id"] == rows[0]["event_id"] and rows[1]["first_outcome"] == "recorded"
    assert rows[2]["event_id"] == earlier["event_id"] and rows[2]["first_outcome"] == "recorded"
    assert rows[33]["event_id"] is None
    # cust-1's api_calls after the batch: 2 earlier + 3 + 4 (enforced) + 1 (backdated) of 10
    for i in (0, 1, 2, 32, 33, 35):
        assert (rows[i]["used"], rows[i]["cap"], rows[i]["remaining"]) == (10, 10, 0), rows[i]
    assert (rows[31]["used"], rows[31]["cap"]) == (2, None)  # seats: a and b
    assert (rows[34]["used"], rows[34]["cap"]) == (7, None)  # cust-2 has no subscription

    # nothing half-written: the log holds exactly the recorded events, the counters equal it
    assert sorted(shop.log_ids()) == sorted([earlier["event_id"], *recorded])
    counters = shop.counters()
    assert {(c, m): v for (c, m, _), v in counters.items()} == {
        ("cust-1", "api_calls"): (10, 4),
        ("cust-1", "seats"): (2, 3),
        ("cust-2", "api_calls"): (7, 1),
    }
    assert shop.summary(now - timedelta(days=2), now + timedelta(days=1)) == counters
    keys = shop.superuser_rows(
        "select key, outcome from tenancy.usage_idempotency_keys where tenant_id = %(t)s"
    )
    assert {(k["key"], k["outcome"]) for k in keys} == {
        ("early", "recorded"),
        ("b1", "recorded"),
        ("e1", "recorded"),
    }
    values = shop.superuser_rows(
        "select value from tenancy.usage_unique_values where tenant_id = %(t)s"
    )
    assert sorted(v["value"] for v in values) == ["a", "b"]
    assert shop.customers() == {"cust-1", "cust-2"}


def test_batch_refuses_a_malformed_batch_as_a_whole(shop: Shop) -> None:
    setup_meters(shop, [("select tenancy.create_meter('api_calls')", None)])
    one = {"meter": "api_calls", "customer": "cust-1"}
    for bad in ({"events": [one]}, "[]", None):
        assert sqlstate_of(shop.batch, bad) == "22023", bad
    assert sqlstate_of(lambda: shop.batch([one] * 10_001)) == "22023"
    assert shop.batch([]) == []
    assert shop.log_ids() == [] and shop.counters() == {}


def test_batch_invalid_events_of_new_customers_leave_no_customer(shop: Shop) -> None:
    """An invalid event counts nothing and writes nothing, as tenancy.track_usage would: not
    even the customer it names for the first time."""
    setup_meters(shop, [("select tenancy.create_meter('api_calls')", None)])
    now = shop.db_now()
    for single in (
        lambda: shop.track("api_calls", "ghost-1", -1),
        lambda: shop.track("api_calls", "ghost-2", at=now - timedelta(days=3)),
    ):
        assert sqlstate_of(single) in {"22023", "TN018"}
    rows = shop.batch(
        [
            {"meter": "api_calls", "customer": "ghost-3", "value": -1},
            {
                "meter": "api_calls",
                "customer": "ghost-4",
                "occurred_at": iso(now - timedelta(days=3)),
            },
            {"meter": "api_calls", "customer": "ghost-5", "occurred_at": "not a time"},
            {"meter": "api_calls", "customer": "ghost-6", "enforce": 1},
            {"meter": "api_calls", "customer": "real", "value": 1},
        ]
    )
    assert [r["outcome"] for r in rows] == ["invalid"] * 4 + ["recorded"]
    assert shop.customers() == {"real"}


def test_batch_keys_shared_by_enforced_and_unenforced_events(shop: Shop) -> None:
    """Within a batch the first event of a key counts and the later ones are its duplicates,
    where enforced events come after every unenforced one (they are counted last, in order):
    an enforced event sharing its key with an unenforced one is that one's duplicate, even when
    it comes first in the batch. Between enforced events, batch order decides."""
    setup_meters(
        shop,
        [
            ("select tenancy.create_meter('api_calls')", None),
            ("select tenancy.create_tier('pro', 10, %s)", (Jsonb({"api_calls": 2}),)),
            ("select tenancy.subscribe('cust-1', 'pro')", None),
        ],
    )
    assert shop.track("api_calls", "cust-1", 2, enforce=True)["outcome"] == "recorded"  # at cap
    ev = {"meter": "api_calls", "customer": "cust-1"}
    rows = shop.batch(
        [
            {**ev, "idempotency_key": "mixed", "enforce": True},
            {**ev, "idempotency_key": "mixed"},
            {**ev, "idempotency_key": "enforced", "enforce": True},
            {**ev, "idempotency_key": "enforced", "enforce": True},
            {**ev, "idempotency_key": "plain"},
            {**ev, "idempotency_key": "plain"},
        ]
    )
    assert [(r["outcome"], r["first_outcome"]) for r in rows] == [
        ("duplicate", "recorded"),
        ("recorded", None),
        ("refused", None),
        ("duplicate", "refused"),
        ("recorded", None),
        ("duplicate", "recorded"),
    ]
    assert rows[0]["event_id"] == rows[1]["event_id"] is not None
    assert rows[2]["event_id"] is None and rows[3]["event_id"] is None
    assert rows[5]["event_id"] == rows[4]["event_id"] is not None
    # the unenforced events passed the cap, as unenforced events do; the enforced one did not
    assert shop.check("cust-1", "api_calls", 0)["used"] == 4
    assert len(shop.log_ids()) == 3


# -- idempotency keys of refused events ----------------------------------------------------------


def test_a_refused_event_resent_with_its_key_stays_refused(shop: Shop) -> None:
    """A key's first outcome is final, refused included: re-sent once room has been made (a
    hold released), with or without enforcement, it is a duplicate that counts nothing."""
    setup_meters(
        shop,
        [
            ("select tenancy.create_meter('api_calls')", None),
            ("select tenancy.create_tier('pro', 10, %s)", (Jsonb({"api_calls": 2}),)),
            ("select tenancy.subscribe('cust-1', 'pro')", None),
        ],
    )
    assert shop.track("api_calls", "cust-1", key="k1", enforce=True)["outcome"] == "recorded"
    hold = shop.one(
        "select * from tenancy.reserve_usage('cust-1', 'api_calls', 1)", token=shop.member
    )
    assert hold["allowed"]
    refused = shop.track("api_calls", "cust-1", key="k2", enforce=True)
    assert (refused["outcome"], refused["event_id"]) == ("refused", None)
    shop.one("select tenancy.release_reservation(%s)", (hold["reservation_id"],), shop.member)
    for enforce in (True, False, False):
        again = shop.track("api_calls", "cust-1", key="k2", enforce=enforce)
        assert (again["outcome"], again["first_outcome"], again["event_id"], again["used"]) == (
            "duplicate",
            "refused",
            None,
            1,
        ), again
    assert len(shop.log_ids()) == 1


# -- period rollover ------------------------------------------------------------------------


def test_events_backdated_across_a_period_boundary_count_in_their_own_period(shop: Shop) -> None:
    """cust-1 subscribed 7 days and 12 hours ago: its day and week periods turned 12 hours ago
    (the boundary), its month period did not. Events 18 and 6 hours ago fall on either side."""
    now = shop.db_now()
    anchor = now - timedelta(days=7, hours=12)
    boundary = now - timedelta(hours=12)
    setup_meters(
        shop,
        [
            ("select tenancy.create_meter('daily', p_reset_period => 'day')", None),
            ("select tenancy.create_meter('weekly', p_reset_period => 'week')", None),
            ("select tenancy.create_meter('monthly', p_reset_period => 'month')", None),
            ("select tenancy.create_meter('forever', p_reset_period => 'never')", None),
            (
                "select tenancy.create_tier('pro', 10, %s)",
                (Jsonb({"daily": 3, "weekly": 3, "monthly": 100, "forever": 100}),),
            ),
            ("select tenancy.subscribe('cust-1', 'pro', p_started_at => %s)", (anchor,)),
        ],
    )
    before, after = boundary - timedelta(hours=6), boundary + timedelta(hours=6)
    periods: dict[str, tuple[datetime, datetime]] = {
        "daily": (boundary - timedelta(days=1), boundary),
        "weekly": (boundary - timedelta(days=7), boundary),
    }
    for meter in ("daily", "weekly"):
        # the old period fills up to its cap of 3 ...
        for i in range(3):
            row = shop.track(meter, "cust-1", at=before + timedelta(minutes=i), enforce=True)
            assert row["outcome"] == "recorded" and row["used"] == i + 1, row
            assert (row["period_start"], row["period_end"]) == periods[meter]
        refused = shop.track(meter, "cust-1", at=before + timedelta(minutes=5), enforce=True)
        assert (refused["outcome"], refused["used"]) == ("refused", 3)
        # ... and the new one starts from nothing
        row = shop.track(meter, "cust-1", at=after, enforce=True)
        assert (row["outcome"], row["used"], row["remaining"]) == ("recorded", 1, 2)
        assert row["period_start"] == boundary
        # late events of the old period still land in it, after the new one has begun
        late = shop.track(meter, "cust-1", 0, at=boundary - timedelta(microseconds=1))
        assert (late["outcome"], late["period_end"], late["used"]) == ("recorded", boundary, 3)
        check = shop.check("cust-1", meter)
        assert (check["used"], check["remaining"], check["period_start"]) == (1, 2, boundary)

    rows = shop.batch(
        [
            {"meter": m, "customer": "cust-1", "value": 2, "occurred_at": iso(at)}
            for m in ("monthly", "forever")
            for at in (before, after)
        ]
    )
    assert [r["outcome"] for r in rows] == ["recorded"] * 4
    month = shop.check("cust-1", "monthly")
    assert (month["used"], month["period_start"]) == (4, anchor)  # one period on both sides
    forever = shop.check("cust-1", "forever")
    assert (forever["used"], forever["period_start"], forever["period_end"]) == (4, BEGINNING, END)

    assert shop.counters() == {
        ("cust-1", "daily", boundary - timedelta(days=1)): (3, 4),
        ("cust-1", "daily", boundary): (1, 1),
        ("cust-1", "weekly", boundary - timedelta(days=7)): (3, 4),
        ("cust-1", "weekly", boundary): (1, 1),
        ("cust-1", "monthly", anchor): (4, 2),
        ("cust-1", "forever", BEGINNING): (4, 2),
    }
    assert shop.summary(now - timedelta(days=2), now + timedelta(days=1)) == shop.counters()
    # older than the grace window: refused, whatever side
    assert (
        sqlstate_of(lambda: shop.track("daily", "cust-1", at=now - timedelta(hours=25))) == "TN018"
    )


def test_customers_without_a_subscription_roll_over_at_utc_midnight(shop: Shop) -> None:
    """Without a subscription, periods are the calendar's in UTC. With a backdating grace of
    48 hours, the last midnight has room for an event on each side of it at any time of day."""
    now = shop.db_now().astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    before, after = midnight - timedelta(hours=1), midnight + (now - midnight) / 2
    daily = "select tenancy.create_meter('daily', p_reset_period => 'day', p_backdate_grace => %s)"
    setup_meters(shop, [(daily, (timedelta(hours=48),))])
    old = shop.track("daily", "walk-in", 5, at=before)
    new = shop.track("daily", "walk-in", 7, at=after)
    assert (old["period_start"], old["period_end"], old["used"]) == (
        midnight - timedelta(days=1),
        midnight,
        5,
    )
    assert (new["period_start"], new["period_end"], new["used"]) == (
        midnight,
        midnight + timedelta(days=1),
        7,
    )
    assert shop.check("walk-in", "daily")["used"] == 7


# -- tier versions --------------------------------------------------------------------------


def test_tier_versions_keep_subscribers_on_theirs_until_change_tier(shop: Shop) -> None:
    setup_meters(
        shop,
        [
            ("select tenancy.create_meter('api_calls')", None),
            (
                "select tenancy.create_tier('pro', 10, %s, '{api_access}')",
                (Jsonb({"api_calls": 3}),),
            ),
            ("select tenancy.create_tier('spare', 1, %s)", (Jsonb({"api_calls": 1}),)),
            ("select tenancy.subscribe('old-1', 'pro')", None),
        ],
    )
    v1 = shop.one("select tenancy.subscribe('old-2', 'pro') as id")["id"]
    # no subscribers: changed in place
    spare = shop.one("select * from tenancy.update_tier('spare', p_price => 2)")
    assert (spare["version"], spare["new_version"]) == (1, False)
    # subscribers: a new version
    v2 = shop.one(
        "select * from tenancy.update_tier('pro', p_usage_caps => %s,"
        " p_feature_entitlements => '{api_access,sso}')",
        (Jsonb({"api_calls": 5}),),
    )
    assert (v2["version"], v2["new_version"]) == (2, True) and v2["tier_id"] != v1
    new_sub = shop.one("select tenancy.subscribe('new-1', 'pro') as id")["id"]
    assert new_sub == v2["tier_id"]

    def entitled(customer: str, feature: str) -> bool:
        return bool(
            shop.one(
                "select tenancy.has_entitlement(%s, %s) as e", (customer, feature), shop.member
            )["e"]
        )

    def outcomes(customer: str, n: int) -> list[str]:
        return [shop.track("api_calls", customer, enforce=True)["outcome"] for _ in range(n)]

    # version 1's subscribers keep its cap of 3 and its entitlements
    assert outcomes("old-1", 4) == ["recorded"] * 3 + ["refused"]
    assert shop.check("old-1", "api_calls")["cap"] == 3
    assert not entitled("old-1", "sso") and entitled("old-1", "api_access")
    # version 2's: 5 and sso
    assert outcomes("new-1", 6) == ["recorded"] * 5 + ["refused"]
    assert entitled("new-1", "sso")
    # a third version while both have subscribers; nobody moves
    v3 = shop.one("select * from tenancy.update_tier('pro', p_price => 99)")
    assert (v3["version"], v3["new_version"]) == (3, True)
    assert shop.check("old-1", "api_calls")["cap"] == 3
    assert shop.check("new-1", "api_calls")["cap"] == 5

    # change_tier moves old-1 to version 3 (cap 5, sso), keeping this period's usage
    assert shop.one("select tenancy.change_tier('old-1', 'pro') as id")["id"] == v3["tier_id"]
    check = shop.check("old-1", "api_calls")
    assert (check["used"], check["cap"], check["remaining"], check["allowed"]) == (3, 5, 2, True)
    assert entitled("old-1", "sso")
    assert outcomes("old-1", 3) == ["recorded"] * 2 + ["refused"]
    assert shop.check("old-2", "api_calls")["cap"] == 3  # still on version 1

    tiers = shop.superuser_rows(
        "select name, version, is_current, superseded_at is not null as superseded, price, id"
        " from tenancy.tiers where tenant_id = %(t)s order by name, version"
    )
    assert [
        (t["name"], t["version"], t["is_current"], t["superseded"], t["price"]) for t in tiers
    ] == [
        ("pro", 1, False, True, 10),
        ("pro", 2, False, True, 10),
        ("pro", 3, True, False, 99),
        ("spare", 1, True, False, 2),
    ]
    subs = shop.superuser_rows(
        "select cu.external_id, t.version from tenancy.subscriptions as s"
        " join tenancy.customers as cu on cu.tenant_id = s.tenant_id and cu.id = s.customer_id"
        " join tenancy.tiers as t on t.tenant_id = s.tenant_id and t.id = s.tier_id"
        " where s.tenant_id = %(t)s"
    )
    assert {s["external_id"]: s["version"] for s in subs} == {"old-1": 3, "old-2": 1, "new-1": 2}


# -- holds expiring ---------------------------------------------------------------------------


def test_expired_holds_free_their_quota(shop: Shop) -> None:
    setup_meters(
        shop,
        [
            ("select tenancy.create_meter('api_calls')", None),
            ("select tenancy.create_tier('pro', 10, %s)", (Jsonb({"api_calls": 5}),)),
            ("select tenancy.subscribe('cust-1', 'pro')", None),
        ],
    )
    reserve = "select * from tenancy.reserve_usage('cust-1', 'api_calls', %s, p_ttl => %s)"
    # one transaction, so one now(): the short hold is live throughout, however slow the machine
    with shop.tx(shop.member) as conn:

        def one(query: str, *params: Any) -> Row:
            row = conn.execute(query, params).fetchone()
            assert row is not None
            return row

        short = one(reserve, 3, timedelta(milliseconds=300))
        long = one(reserve, 2, timedelta(hours=1))
        assert short["allowed"] and long["allowed"] and long["remaining"] == 0
        assert not one(reserve, 1, timedelta(hours=1))["allowed"]
        refused = one(TRACK, "api_calls", "cust-1", 1, Jsonb({}), None, None, True)
        assert refused["outcome"] == "refused"
        check = one(CHECK, "cust-1", "api_calls", 1)
        assert (check["allowed"], check["reserved"], check["remaining"]) == (False, 5, 0)

    time.sleep(max(0.0, (short["expires_at"] - shop.db_now()).total_seconds()) + 0.2)

    # readers ignore the expired hold (nothing has swept it yet)
    check = shop.check("cust-1", "api_calls", 3)
    assert (check["allowed"], check["used"], check["reserved"], check["remaining"]) == (
        True,
        0,
        2,
        3,
    )
    usage = shop.rows("select * from tenancy.customer_usage('cust-1')", token=shop.member)
    assert [(u["meter"], u["used"], u["reserved"], u["remaining"]) for u in usage] == [
        ("api_calls", 0, 2, 3)
    ]
    # the expired hold's quota is usable again by enforced events; the live hold still counts
    row = shop.track("api_calls", "cust-1", 3, enforce=True)
    assert (row["outcome"], row["used"], row["remaining"]) == ("recorded", 3, 0)
    assert shop.track("api_calls", "cust-1", enforce=True)["outcome"] == "refused"
    # the expired hold can be neither committed nor released; the live one can
    for settle in ("commit_reservation", "release_reservation"):
        query = f"select * from tenancy.{settle}(%s)"
        assert sqlstate_of(shop.one, query, (short["reservation_id"],), shop.member) == "TN020"
    committed = shop.one(
        "select * from tenancy.commit_reservation(%s)", (long["reservation_id"],), shop.member
    )
    assert (committed["outcome"], committed["used"], committed["remaining"]) == ("recorded", 5, 0)
    states = shop.superuser_rows(
        "select id, state from tenancy.usage_reservations where tenant_id = %(t)s"
    )
    assert {s["id"]: s["state"] for s in states} == {
        short["reservation_id"]: "expired",
        long["reservation_id"]: "committed",
    }
    counter = shop.superuser_rows(
        "select used, reserved, events from tenancy.usage_counters where tenant_id = %(t)s"
    )
    assert counter == [{"used": 5, "reserved": 0, "events": 2}]


def test_an_expired_hold_is_swept_by_a_new_hold_too(shop: Shop) -> None:
    setup_meters(
        shop,
        [
            ("select tenancy.create_meter('api_calls')", None),
            ("select tenancy.create_tier('pro', 10, %s)", (Jsonb({"api_calls": 4}),)),
            ("select tenancy.subscribe('cust-1', 'pro')", None),
        ],
    )
    reserve = "select * from tenancy.reserve_usage('cust-1', 'api_calls', %s, p_ttl => %s)"
    short = shop.one(reserve, (4, timedelta(milliseconds=300)), shop.member)
    assert short["allowed"]
    time.sleep(max(0.0, (short["expires_at"] - shop.db_now()).total_seconds()) + 0.2)
    again = shop.one(reserve, (4, timedelta(minutes=5)), shop.member)
    assert (again["allowed"], again["reserved"], again["remaining"]) == (True, 4, 0)
    assert shop.check("cust-1", "api_calls")["reserved"] == 4


# -- a random workload: the summary recomputed from the log equals the counters ----------------

METERS = {
    "m_sum": ("sum", "month", None),
    "m_count": ("count", "day", None),
    "m_max": ("max", "week", None),
    "m_unique": ("unique_count", "day", "u"),
    "m_latest": ("latest", "never", None),
}
CUSTOMERS = ["c-anchored", "c-fresh", "c-walk-in"]
KEYS = [f"k{i}" for i in range(6)]
SAFE = {"22023", "TN019"}  # what the generated events may be refused with

event_strategy = st.fixed_dictionaries(
    {
        "meter": st.sampled_from(sorted(METERS)),
        "customer": st.sampled_from(CUSTOMERS),
        "value": st.one_of(
            st.integers(0, 6).map(Decimal),
            st.decimals(min_value=0, max_value=20, places=2, allow_nan=False, allow_infinity=False),
        ),
        "user": st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])),
        "key": st.one_of(st.none(), st.none(), st.sampled_from(KEYS)),
        # seconds before the start of the example: up to 23 hours back, a few minutes ahead
        "ago": st.one_of(st.none(), st.integers(-240, 23 * 3600)),
        "enforce": st.booleans(),
    }
)
# A batch may end with a copy of one of its events (an in-batch retry); a "retry" re-sends an
# earlier event of the workload unchanged, as a client does after a lost response.
batch_strategy = st.tuples(
    st.lists(event_strategy, min_size=1, max_size=8), st.one_of(st.none(), st.integers(0, 7))
).map(lambda b: b[0] if b[1] is None else [*b[0], b[0][b[1] % len(b[0])]])
workload_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("single"), event_strategy),
        st.tuples(st.just("batch"), batch_strategy),
        st.tuples(st.just("retry"), st.integers(0, 1_000)),
    ),
    min_size=1,
    max_size=12,
)


def workload_shop(roles: Roles, make_tenant: Callable[[], Tenant]) -> tuple[Shop, datetime]:
    shop = new_shop(roles, make_tenant)
    now = shop.db_now()
    statements: list[tuple[str, Any]] = [
        (
            "select tenancy.create_meter(%s, p_aggregation => %s, p_reset_period => %s,"
            " p_property => %s)",
            (key, agg, reset, prop),
        )
        for key, (agg, reset, prop) in METERS.items()
    ]
    caps = {"m_sum": 15, "m_count": 4, "m_max": 10, "m_unique": 2, "m_latest": 8}
    statements += [
        ("select tenancy.create_tier('capped', 5, %s)", (Jsonb(caps),)),
        # its day and week boundaries are 10 hours ago, inside the backdating window
        (
            "select tenancy.subscribe('c-anchored', 'capped', p_started_at => %s)",
            (now - timedelta(days=14, hours=10),),
        ),
        ("select tenancy.subscribe('c-fresh', 'capped')", None),
    ]
    setup_meters(shop, statements)
    return shop, now


def properties_of(event: dict[str, Any]) -> dict[str, str]:
    return {"region": "eu"} if event["user"] is None else {"region": "eu", "u": event["user"]}


def occurred_at(event: dict[str, Any], now: datetime) -> datetime | None:
    return None if event["ago"] is None else now - timedelta(seconds=event["ago"])


def as_json(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A generated event as an element of a track_usage_batch array."""
    doc: dict[str, Any] = {
        "meter": event["meter"],
        "customer": event["customer"],
        "value": float(event["value"]),  # at most two decimals: the JSON number is the value
        "properties": properties_of(event),
        "enforce": event["enforce"],
    }
    if event["key"] is not None:
        doc["idempotency_key"] = event["key"]
    at = occurred_at(event, now)
    if at is not None:
        doc["occurred_at"] = iso(at)
    return doc


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(workload=workload_strategy)
def test_usage_summary_equals_the_counters_after_a_random_workload(
    roles: Roles, make_tenant: Callable[[], Tenant], workload: list[tuple[str, Any]]
) -> None:
    shop, now = workload_shop(roles, make_tenant)  # a tenant of its own for each example
    try:
        run_and_check(shop, now, workload)
    finally:
        shop.close()


def run_and_check(shop: Shop, now: datetime, workload: list[tuple[str, Any]]) -> None:
    """Send the workload (in a member's context), then compare the summary with the counters,
    the log with the recorded answers, and every key's answers with its first."""
    answers: list[tuple[str, str | None, Row]] = []  # (customer, key, answer)
    sent: list[dict[str, Any]] = []
    for kind, payload in workload:
        if kind == "retry":
            if not sent:
                continue
            kind, payload = "single", sent[payload % len(sent)]
        if kind == "single":
            sent.append(payload)
            try:
                row = shop.track(
                    payload["meter"],
                    payload["customer"],
                    payload["value"],
                    properties=properties_of(payload),
                    key=payload["key"],
                    at=occurred_at(payload, now),
                    enforce=payload["enforce"],
                )
            except psycopg.Error as exc:
                assert exc.sqlstate in SAFE, exc
                continue
            answers.append((payload["customer"], payload["key"], row))
        else:
            sent.extend(payload)
            rows = shop.batch([as_json(e, now) for e in payload])
            assert len(rows) == len(payload)
            for event, row in zip(payload, rows, strict=True):
                if row["outcome"] == "invalid":
                    assert row["error_code"] in SAFE, row
                else:
                    answers.append((event["customer"], event["key"], row))

    assert {a[2]["outcome"] for a in answers} <= {"recorded", "duplicate", "refused"}
    # the billing aggregate recomputed from the log is the counters, period by period
    # (a counter with no events, made for an enforced event that was refused, holds nothing)
    counters = {k: v for k, v in shop.counters().items() if v != (0, 0)}
    assert shop.summary(now - timedelta(days=3), now + timedelta(days=1)) == counters
    # every recorded event is in the log, once, and the log holds nothing else
    recorded = [a[2]["event_id"] for a in answers if a[2]["outcome"] == "recorded"]
    assert len(set(recorded)) == len(recorded)
    assert sorted(shop.log_ids()) == sorted(recorded)
    # a key counts at most once per customer; its duplicates name its first answer
    firsts: dict[tuple[str, str], Row] = {}
    for customer, key, row in answers:
        if key is None:
            continue
        if row["outcome"] == "duplicate":
            continue
        assert (customer, key) not in firsts, (
            "a key was answered twice",
            firsts[(customer, key)],
            row,
        )
        firsts[(customer, key)] = row
    for customer, key, row in answers:
        if key is not None and row["outcome"] == "duplicate" and (customer, key) in firsts:
            first = firsts[(customer, key)]
            assert (row["first_outcome"], row["event_id"]) == (first["outcome"], first["event_id"])
