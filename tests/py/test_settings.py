"""Concurrent settings changes: region history stays a chain, a region or flag is never removed
from under a tenant that is being given it.

Each race releases two tenancy_admin sessions together (test_concurrency.race): the session
whose statement returns first commits only once the other waits for its locks, so the loser
meets the winner's committed change. In READ COMMITTED the loser works on the winner's result;
above it a serialisation failure (40001) is an acceptable refusal, and is retried alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from conftest import Roles, Tenant
from test_concurrency import READ_COMMITTED, SERIALIZABLE, Action, Outcome, race, run_alone

every_isolation_level = pytest.mark.parametrize(
    "isolation",
    [READ_COMMITTED, psycopg.IsolationLevel.REPEATABLE_READ, SERIALIZABLE],
    ids=["read-committed", "repeatable-read", "serializable"],
)


def statement(sql: str, *params: Any) -> Action:
    def action(conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql, params)

    return action


def retried(
    outcomes: dict[str, Outcome],
    conninfo: str,
    actions: dict[str, Action],
    isolation: psycopg.IsolationLevel,
) -> dict[str, Outcome]:
    """Run again, alone, the actions that failed with 40001 (above READ COMMITTED, a change
    committed after the snapshot), as an application retries them."""
    result = dict(outcomes)
    for name, outcome in outcomes.items():
        if outcome.sqlstate == "40001":
            assert isolation != READ_COMMITTED, outcomes
            run_alone(conninfo, actions[name], isolation)
            result[name] = Outcome(name, None)
    return result


def new_region() -> str:
    return f"r-{uuid.uuid4().hex[:12]}"


def add_regions(roles: Roles, *regions: str) -> None:
    """Configure the regions in use plus these (other tests' regions stay configured)."""
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute(
            "select tenancy.configure_regions("
            "array(select region::text from tenancy.regions) || %s::text[])",
            (list(regions),),
        )


def region_history(roles: Roles, tenant_id: uuid.UUID) -> list[tuple[str | None, str | None]]:
    with psycopg.connect(roles.superuser) as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                "select old_region, new_region from tenancy.tenant_region_changes"
                " where tenant_id = %s order by id",
                (tenant_id,),
            )
        ]


def region_of(roles: Roles, tenant_id: uuid.UUID) -> str | None:
    with psycopg.connect(roles.superuser) as conn:
        row = conn.execute(
            "select region from tenancy.tenant_settings where tenant_id = %s", (tenant_id,)
        ).fetchone()
        return None if row is None else row[0]


@every_isolation_level
def test_concurrent_region_changes_are_recorded_as_a_chain(
    roles: Roles, make_tenant: Callable[[], Tenant], isolation: psycopg.IsolationLevel
) -> None:
    tenant = make_tenant()
    start, x, y = new_region(), new_region(), new_region()
    add_regions(roles, start, x, y)
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.set_tenant_region(%s, %s)", (tenant.id, start))
    move = "select tenancy.set_tenant_region(%s, %s)"
    actions = {
        "to-x": statement(move, tenant.id, x),
        "to-y": statement(move, tenant.id, y),
    }

    outcomes = race(roles.superuser, roles.admin, actions, isolation)
    if isolation == READ_COMMITTED:
        assert all(o.ok for o in outcomes.values()), outcomes
    outcomes = retried(outcomes, roles.admin, actions, isolation)
    assert all(o.ok for o in outcomes.values()), outcomes

    # Each change starts where the previous one ended: no change is recorded from a stale region.
    history = region_history(roles, tenant.id)
    assert len(history) == 3, history
    assert history[0] == (None, start)
    assert history[1][0] == start
    assert history[2][0] == history[1][1]
    assert {history[1][1], history[2][1]} == {x, y}
    assert region_of(roles, tenant.id) == history[2][1]


@every_isolation_level
def test_a_region_is_never_removed_under_a_tenant_being_placed_in_it(
    roles: Roles, make_tenant: Callable[[], Tenant], isolation: psycopg.IsolationLevel
) -> None:
    tenant = make_tenant()
    doomed, kept = new_region(), new_region()
    add_regions(roles, doomed, kept)
    with psycopg.connect(roles.superuser) as conn:
        others = [r[0] for r in conn.execute("select region from tenancy.regions")]
    remaining = [r for r in others if r != doomed]
    actions = {
        "place": statement("select tenancy.set_tenant_region(%s, %s)", tenant.id, doomed),
        "remove": statement("select tenancy.configure_regions(%s::text[])", remaining),
    }

    outcomes = race(roles.superuser, roles.admin, actions, isolation)

    winners = [o for o in outcomes.values() if o.ok]
    losers = [o for o in outcomes.values() if not o.ok]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    loser = losers[0]
    # The removal after the placement: 55000 naming the region. The placement after the
    # removal: 22023, the region is unknown. Above READ COMMITTED either may be 40001. Never
    # the foreign key's 23503.
    refusals = {"place": {"22023"}, "remove": {"55000"}}[loser.actor]
    if isolation != READ_COMMITTED:
        refusals = refusals | {"40001"}
    assert loser.sqlstate in refusals, outcomes
    if loser.sqlstate == "55000":
        assert f"region '{doomed}' is the region of" in loser.message
    with psycopg.connect(roles.superuser) as conn:
        configured = {r[0] for r in conn.execute("select region from tenancy.regions")}
    if winners[0].actor == "place":
        assert region_of(roles, tenant.id) == doomed
        assert doomed in configured
    else:
        assert region_of(roles, tenant.id) is None
        assert doomed not in configured
        assert region_history(roles, tenant.id) == []


@every_isolation_level
def test_a_flag_is_never_removed_under_a_new_override(
    roles: Roles, make_tenant: Callable[[], Tenant], isolation: psycopg.IsolationLevel
) -> None:
    tenant = make_tenant()
    flag = f"race.f_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.set_feature_default(%s, 'false')", (flag,))
    actions = {
        "override": statement("select tenancy.set_feature_flag(%s, %s, 'true')", tenant.id, flag),
        "remove": statement("select tenancy.set_feature_default(%s, null)", flag),
    }

    outcomes = race(roles.superuser, roles.admin, actions, isolation)

    winners = [o for o in outcomes.values() if o.ok]
    losers = [o for o in outcomes.values() if not o.ok]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    loser = losers[0]
    refusals = {"override": {"P0002"}, "remove": {"55000"}}[loser.actor]
    if isolation != READ_COMMITTED:
        refusals = refusals | {"40001"}
    assert loser.sqlstate in refusals, outcomes
    with psycopg.connect(roles.superuser) as conn:
        default = conn.execute(
            "select value from tenancy.feature_defaults where flag = %s", (flag,)
        ).fetchone()
        overrides = conn.execute(
            "select value from tenancy.feature_flags where tenant_id = %s and flag = %s",
            (tenant.id, flag),
        ).fetchall()
    if winners[0].actor == "override":
        assert default == (False,) and overrides == [(True,)]
    else:
        assert default is None and overrides == []
    # What the tenant sees follows: on with its override, nothing once the flag is gone.
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s)", (tenant.id,))
        enabled = conn.execute("select tenancy.feature_enabled(%s)", (flag,)).fetchone()
    assert enabled == (winners[0].actor == "override",)
