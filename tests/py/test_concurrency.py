"""Concurrent sessions: owners are never all removed, slugs stay unique, contexts stay apart.

Races are made deterministic where the outcome depends on the order: both sessions are
released together by a barrier, and the session that wins the lock commits only once the
other one is seen waiting for it (pg_blocking_pids), so the loser is tested against the
committed result of the winner, as in a real collision. Member management is raced in each
isolation level: a serialisation failure (40001) is an acceptable refusal, a tenant without an
owner or a removed admin acting on her old role never is.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from conftest import Roles, Tenant, new_user_id, token_for, wait_until_blocked

TIMEOUT = 30.0


@dataclass
class Outcome:
    """What one session got: None when it succeeded, else the SQLSTATE and message."""

    actor: str
    sqlstate: str | None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.sqlstate is None


def owners(roles: Roles, tenant_id: uuid.UUID) -> set[uuid.UUID]:
    with psycopg.connect(roles.superuser) as conn:
        return {
            r[0]
            for r in conn.execute(
                "select user_id from tenancy.memberships where tenant_id = %s and role = 'owner'",
                (tenant_id,),
            )
        }


def add_members(roles: Roles, tenant: Tenant, users: list[uuid.UUID], role: str) -> None:
    """Added by a trusted backend through tenancy.set_context()."""
    with psycopg.connect(roles.service) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s)", (tenant.id,))
        for user in users:
            conn.execute("select tenancy.add_member(%s, %s)", (user, role))


Action = Callable[[psycopg.Connection[Any]], None]

READ_COMMITTED = psycopg.IsolationLevel.READ_COMMITTED
REPEATABLE_READ = psycopg.IsolationLevel.REPEATABLE_READ
SERIALIZABLE = psycopg.IsolationLevel.SERIALIZABLE

every_isolation_level = pytest.mark.parametrize(
    "isolation",
    [READ_COMMITTED, REPEATABLE_READ, SERIALIZABLE],
    ids=["read-committed", "repeatable-read", "serializable"],
)


def connect(conninfo: str, isolation: psycopg.IsolationLevel | None) -> psycopg.Connection[Any]:
    conn = psycopg.connect(conninfo)
    conn.isolation_level = isolation
    return conn


def race(
    superuser_url: str,
    conninfo: str,
    actions: dict[str, Action],
    isolation: psycopg.IsolationLevel | None = None,
) -> dict[str, Outcome]:
    """Run each action in its own session and transaction, released together.

    Each action runs up to its racing statement; a session whose statement returns first keeps
    its transaction open until every other session is blocked on a lock or has finished, then
    commits.
    """
    names = list(actions)
    barrier = threading.Barrier(len(names))
    pids: dict[str, int] = {}
    done: set[str] = set()
    lock = threading.Lock()

    def run(name: str) -> Outcome:
        with connect(conninfo, isolation) as conn:
            pids[name] = conn.info.backend_pid
            try:
                barrier.wait(TIMEOUT)
                actions[name](conn)
            except psycopg.Error as exc:
                conn.rollback()
                with lock:
                    done.add(name)
                return Outcome(name, exc.sqlstate, str(exc))
            with lock:
                others = [n for n in names if n != name and n not in done]
            for other in others:
                deadline = time.monotonic() + TIMEOUT
                while other not in done:
                    try:
                        wait_until_blocked(superuser_url, pids[other], timeout=0.2)
                        break
                    except AssertionError:
                        if time.monotonic() > deadline:
                            raise
            conn.commit()
            with lock:
                done.add(name)
            return Outcome(name, None)

    with ThreadPoolExecutor(len(names)) as pool:
        futures = {name: pool.submit(run, name) for name in names}
        return {name: f.result(timeout=TIMEOUT * 2) for name, f in futures.items()}


def as_member(token: str, statement: str, *params: Any) -> Action:
    def action(conn: psycopg.Connection[Any]) -> None:
        conn.execute("select tenancy.authenticate(%s)", (token,))
        conn.execute(statement, params)

    return action


def run_alone(conninfo: str, action: Action, isolation: psycopg.IsolationLevel | None) -> None:
    with connect(conninfo, isolation) as conn:
        action(conn)
        conn.commit()


def retry_serialization_failures(
    outcomes: dict[str, Outcome],
    conninfo: str,
    actions: dict[str, Action],
    isolation: psycopg.IsolationLevel,
) -> dict[str, Outcome]:
    """Run again, alone, the actions that failed with 40001: what an application does under
    SERIALIZABLE, where predicate locks on a small table can make any two writers conflict."""
    assert isolation == SERIALIZABLE or all(o.sqlstate != "40001" for o in outcomes.values()), (
        outcomes
    )
    result = dict(outcomes)
    for name, outcome in outcomes.items():
        if outcome.sqlstate == "40001":
            run_alone(conninfo, actions[name], isolation)
            result[name] = Outcome(name, None)
    return result


def members(roles: Roles, tenant_id: uuid.UUID) -> dict[uuid.UUID, str]:
    with psycopg.connect(roles.superuser) as conn:
        return {
            r[0]: r[1]
            for r in conn.execute(
                "select user_id, role from tenancy.memberships where tenant_id = %s", (tenant_id,)
            )
        }


# -- the last owner ------------------------------------------------------------------------

# Why the loser of two owners racing is refused: TN005 when it would remove the last owner;
# 42501 when, by the time it holds the tenant lock, the winner has removed or demoted it (READ
# COMMITTED re-reads its membership); 40001 when its snapshot predates the winner's change
# (REPEATABLE READ, SERIALIZABLE). Never both through, never zero owners.
REFUSED_OWNER_RACE = {"TN005", "42501", "40001"}


@every_isolation_level
@pytest.mark.parametrize(
    ("statement", "target"),
    [
        ("select tenancy.remove_member(%s)", "other"),
        ("select tenancy.remove_member(%s)", "self"),
        ("select tenancy.set_member_role(%s, 'member')", "other"),
        ("select tenancy.set_member_role(%s, 'admin')", "other"),
    ],
    ids=[
        "remove-each-other",
        "each-removes-self",
        "demote-each-other-to-member",
        "demote-to-admin",
    ],
)
def test_two_owners_racing_never_leave_zero_owners(
    roles: Roles,
    make_tenant: Callable[[], Tenant],
    statement: str,
    target: str,
    isolation: psycopg.IsolationLevel,
) -> None:
    tenant = make_tenant()
    x, y = tenant.owner, new_user_id()
    add_members(roles, tenant, [y], "owner")
    assert owners(roles, tenant.id) == {x, y}

    def victim(actor: uuid.UUID, other: uuid.UUID) -> uuid.UUID:
        return actor if target == "self" else other

    outcomes = race(
        roles.superuser,
        roles.app,
        {
            "x": as_member(token_for(tenant.id, x), statement, victim(x, y)),
            "y": as_member(token_for(tenant.id, y), statement, victim(y, x)),
        },
        isolation,
    )

    winners = [o for o in outcomes.values() if o.ok]
    losers = [o for o in outcomes.values() if not o.ok]
    assert len(winners) == 1, outcomes
    assert losers[0].sqlstate in REFUSED_OWNER_RACE, outcomes
    if losers[0].sqlstate == "TN005":
        assert "last owner" in losers[0].message
    if target == "self" and isolation == READ_COMMITTED:
        # Its own membership is untouched, so the loser gets to the rule itself (above READ
        # COMMITTED its snapshot still shows the winner as an owner: 40001).
        assert losers[0].sqlstate == "TN005", outcomes
    remaining = owners(roles, tenant.id)
    assert len(remaining) == 1
    # The loser tried to take away the one owner left.
    loser_victim = victim(*((x, y) if losers[0].actor == "x" else (y, x)))
    assert remaining == {loser_victim}


@every_isolation_level
@pytest.mark.parametrize("change", ["both-leave", "both-demote-another"])
def test_owners_racing_with_owners_to_spare_both_succeed(
    roles: Roles, make_tenant: Callable[[], Tenant], change: str, isolation: psycopg.IsolationLevel
) -> None:
    """The legitimate side: with a third owner left either way, both changes go through."""
    tenant = make_tenant()
    x, y, z, w = tenant.owner, new_user_id(), new_user_id(), new_user_id()
    add_members(roles, tenant, [y, z, w], "owner")
    if change == "both-leave":
        actions = {
            "x": as_member(token_for(tenant.id, x), "select tenancy.remove_member(%s)", x),
            "y": as_member(token_for(tenant.id, y), "select tenancy.remove_member(%s)", y),
        }
        expected = {z: "owner", w: "owner"}
    else:
        demote = "select tenancy.set_member_role(%s, 'member')"
        actions = {
            "x": as_member(token_for(tenant.id, x), demote, z),
            "y": as_member(token_for(tenant.id, y), demote, w),
        }
        expected = {x: "owner", y: "owner", z: "member", w: "member"}

    outcomes = race(roles.superuser, roles.app, actions, isolation)
    outcomes = retry_serialization_failures(outcomes, roles.app, actions, isolation)

    assert all(o.ok for o in outcomes.values()), outcomes
    assert members(roles, tenant.id) == expected


@every_isolation_level
def test_owner_can_leave_when_another_owner_is_added_concurrently(
    roles: Roles, make_tenant: Callable[[], Tenant], isolation: psycopg.IsolationLevel
) -> None:
    """The legitimate side: with an owner added first, the original owner may leave."""
    tenant = make_tenant()
    x, y, z = tenant.owner, new_user_id(), new_user_id()
    add_members(roles, tenant, [y], "owner")
    actions = {
        "x-adds-z": as_member(token_for(tenant.id, x), "select tenancy.add_member(%s, 'owner')", z),
        "y-leaves": as_member(token_for(tenant.id, y), "select tenancy.remove_member(%s)", y),
    }

    outcomes = race(roles.superuser, roles.app, actions, isolation)
    outcomes = retry_serialization_failures(outcomes, roles.app, actions, isolation)

    assert all(o.ok for o in outcomes.values()), outcomes
    assert owners(roles, tenant.id) == {x, z}


# -- a manager removed or demoted meanwhile ------------------------------------------------


def one_after_the_other(
    superuser_url: str,
    conninfo: str,
    isolation: psycopg.IsolationLevel,
    late_context: Action,
    early: Action,
    late: Action,
    overlap: str,
) -> tuple[Outcome, Outcome]:
    """The late session sets its context; the early one then makes its change. With overlap
    "blocked" the late session acts while the early one holds its locks and commits once the
    late one waits for them; with "after" the early one commits first. Returns both outcomes."""
    with connect(conninfo, isolation) as late_conn, connect(conninfo, isolation) as early_conn:
        late_context(late_conn)  # the context (and, above READ COMMITTED, the snapshot)
        early(early_conn)
        result: list[Outcome] = []

        def act() -> None:
            try:
                late(late_conn)
                late_conn.commit()
                result.append(Outcome("late", None))
            except psycopg.Error as exc:
                late_conn.rollback()
                result.append(Outcome("late", exc.sqlstate, str(exc)))

        if overlap == "blocked":
            thread = threading.Thread(target=act)
            thread.start()
            try:
                # Until it waits for the early session's locks; it must not get past them.
                deadline = time.monotonic() + TIMEOUT
                while True:
                    try:
                        wait_until_blocked(superuser_url, late_conn.info.backend_pid, timeout=0.2)
                        break
                    except AssertionError:
                        assert thread.is_alive(), f"the late session never waited: {result}"
                        if time.monotonic() > deadline:
                            raise
            finally:
                early_conn.commit()
                thread.join(TIMEOUT)
        else:
            early_conn.commit()
            act()
    return Outcome("early", None), result[0]


def authenticated(token: str) -> Action:
    def action(conn: psycopg.Connection[Any]) -> None:
        conn.execute("select tenancy.authenticate(%s)", (token,))

    return action


def steps(*actions: Action) -> Action:
    def action(conn: psycopg.Connection[Any]) -> None:
        for step in actions:
            step(conn)

    return action


def statement(sql: str, *params: Any) -> Action:
    def action(conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql, params)

    return action


ADMIN_ACTS = pytest.mark.parametrize(
    "act",
    ["re-adds-herself", "adds-someone", "changes-a-role", "removes-someone"],
)
OVERLAPS = pytest.mark.parametrize("overlap", ["blocked", "after"])


@dataclass
class Team:
    tenant: Tenant
    admin: uuid.UUID
    member: uuid.UUID
    viewer: uuid.UUID
    newcomer: uuid.UUID


def make_team(roles: Roles, make_tenant: Callable[[], Tenant]) -> Team:
    team = Team(make_tenant(), new_user_id(), new_user_id(), new_user_id(), new_user_id())
    add_members(roles, team.tenant, [team.admin], "admin")
    add_members(roles, team.tenant, [team.member], "member")
    add_members(roles, team.tenant, [team.viewer], "viewer")
    return team


def admin_act(team: Team, act: str) -> Action:
    return {
        "re-adds-herself": statement("select tenancy.add_member(%s, 'admin')", team.admin),
        "adds-someone": statement("select tenancy.add_member(%s, 'member')", team.newcomer),
        "changes-a-role": statement("select tenancy.set_member_role(%s, 'viewer')", team.member),
        "removes-someone": statement("select tenancy.remove_member(%s)", team.member),
    }[act]


@every_isolation_level
@OVERLAPS
@ADMIN_ACTS
@pytest.mark.parametrize("change", ["removed", "demoted"])
def test_admin_removed_or_demoted_by_an_owner_cannot_act_on_her_old_role(
    roles: Roles,
    make_tenant: Callable[[], Tenant],
    isolation: psycopg.IsolationLevel,
    overlap: str,
    act: str,
    change: str,
) -> None:
    team = make_team(roles, make_tenant)
    owner_change = (
        statement("select tenancy.remove_member(%s)", team.admin)
        if change == "removed"
        else statement("select tenancy.set_member_role(%s, 'viewer')", team.admin)
    )

    early, late = one_after_the_other(
        roles.superuser,
        roles.app,
        isolation,
        late_context=authenticated(token_for(team.tenant.id, team.admin)),
        early=steps(authenticated(token_for(team.tenant.id, team.tenant.owner)), owner_change),
        late=admin_act(team, act),
        overlap=overlap,
    )

    assert early.ok
    # 42501: she holds the tenant lock and her membership, read again, is gone or lowered;
    # 40001: her snapshot predates the owner's change. When the owner committed before she
    # acted, her context itself may already be refused (TN001).
    refusals = {"42501", "40001"} | ({"TN001"} if overlap == "after" else set())
    assert late.sqlstate in refusals, late
    if late.sqlstate == "42501":
        assert str(team.admin) in late.message or "role viewer" in late.message, late
    expected = {team.tenant.owner: "owner", team.member: "member", team.viewer: "viewer"}
    if change == "demoted":
        expected[team.admin] = "viewer"
    assert members(roles, team.tenant.id) == expected


@every_isolation_level
@OVERLAPS
@pytest.mark.parametrize("act", ["adds-someone", "changes-a-role"])
def test_admin_keeps_managing_while_an_owner_removes_someone_else(
    roles: Roles,
    make_tenant: Callable[[], Tenant],
    isolation: psycopg.IsolationLevel,
    overlap: str,
    act: str,
) -> None:
    """The legitimate side: the same admin, not removed, acts in the same interleavings."""
    team = make_team(roles, make_tenant)

    def owner_removes_viewer(conn: psycopg.Connection[Any]) -> None:
        authenticated(token_for(team.tenant.id, team.tenant.owner))(conn)
        conn.execute("select tenancy.remove_member(%s)", (team.viewer,))

    admin_context = authenticated(token_for(team.tenant.id, team.admin))
    early, late = one_after_the_other(
        roles.superuser,
        roles.app,
        isolation,
        late_context=admin_context,
        early=owner_removes_viewer,
        late=admin_act(team, act),
        overlap=overlap,
    )

    if isolation == SERIALIZABLE and late.sqlstate == "40001":
        run_alone(
            roles.app,
            steps(admin_context, admin_act(team, act)),
            isolation,
        )
    else:
        assert late.ok, late
    assert early.ok
    expected = {team.tenant.owner: "owner", team.admin: "admin", team.member: "member"}
    if act == "adds-someone":
        expected[team.newcomer] = "member"
    else:
        expected[team.member] = "viewer"
    assert members(roles, team.tenant.id) == expected


@every_isolation_level
def test_owner_removes_an_admin(
    roles: Roles, make_tenant: Callable[[], Tenant], isolation: psycopg.IsolationLevel
) -> None:
    """The legitimate side: an owner removing an admin alone just works."""
    team = make_team(roles, make_tenant)
    run_alone(
        roles.app,
        as_member(
            token_for(team.tenant.id, team.tenant.owner),
            "select tenancy.remove_member(%s)",
            team.admin,
        ),
        isolation,
    )
    assert team.admin not in members(roles, team.tenant.id)


@every_isolation_level
def test_many_sessions_shuffling_owners_always_keep_one(
    roles: Roles, make_tenant: Callable[[], Tenant], isolation: psycopg.IsolationLevel
) -> None:
    """Free-running sessions add, remove and demote owners; the tenant always keeps one."""
    tenant = make_tenant()
    users = [tenant.owner, *(new_user_id() for _ in range(5))]
    add_members(roles, tenant, users[1:3], "owner")
    add_members(roles, tenant, users[3:], "member")
    expected_refusals = {
        "TN005",  # last owner
        "TN003",  # the actor was removed before it authenticated
        "TN001",  # the actor's context was invalidated by a concurrent change
        "42501",  # the actor was demoted or removed before it held the tenant lock
        "P0002",  # the target was removed meanwhile
        "23505",  # the target was added meanwhile
    }
    if isolation != READ_COMMITTED:
        expected_refusals.add("40001")  # a row the change relies on changed after the snapshot
    stop = threading.Event()
    seen_zero = threading.Event()
    errors: list[BaseException] = []
    tallies: dict[str, int] = {}
    tally_lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with connect(roles.app, isolation) as conn:
                for _ in range(40):
                    # Mostly act as someone who is an owner right now, so that the sessions
                    # really collide on the owner rule rather than fail to authenticate.
                    current = sorted(owners(roles, tenant.id))
                    actor = rng.choice(current if current and rng.random() < 0.8 else users)
                    target = rng.choice([u for u in users if u != actor])
                    op = rng.choice(["remove", "remove-self", "demote", "promote", "re-add"])
                    try:
                        with conn.transaction():
                            conn.execute(
                                "select tenancy.authenticate(%s)", (token_for(tenant.id, actor),)
                            )
                            if op == "remove":
                                conn.execute("select tenancy.remove_member(%s)", (target,))
                            elif op == "remove-self":
                                conn.execute("select tenancy.remove_member(%s)", (actor,))
                            elif op == "demote":
                                conn.execute(
                                    "select tenancy.set_member_role(%s, 'member')", (target,)
                                )
                            elif op == "promote":
                                conn.execute(
                                    "select tenancy.set_member_role(%s, 'owner')", (target,)
                                )
                            else:
                                conn.execute("select tenancy.add_member(%s, 'owner')", (target,))
                        key = "ok"
                    except psycopg.Error as exc:
                        if exc.sqlstate not in expected_refusals:
                            raise
                        key = str(exc.sqlstate)
                    with tally_lock:
                        tallies[key] = tallies.get(key, 0) + 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def watcher() -> None:
        with psycopg.connect(roles.superuser, autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute(
                    "select count(*) from tenancy.memberships"
                    " where tenant_id = %s and role = 'owner'",
                    (tenant.id,),
                ).fetchone()
                if row is None or row[0] == 0:
                    seen_zero.set()
                time.sleep(0.002)

    watch = threading.Thread(target=watcher)
    watch.start()
    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT * 4)
    finally:
        stop.set()
        watch.join()

    assert errors == []
    assert not seen_zero.is_set()
    assert len(owners(roles, tenant.id)) >= 1
    assert tallies.get("ok", 0) > 0, tallies
    # Legitimate work still goes through for whoever is an owner now.
    survivor = sorted(owners(roles, tenant.id))[0]
    newcomer = new_user_id()
    with psycopg.connect(roles.app) as conn, conn.transaction():
        conn.execute("select tenancy.authenticate(%s)", (token_for(tenant.id, survivor),))
        conn.execute("select tenancy.add_member(%s, 'viewer')", (newcomer,))


# -- unique slugs --------------------------------------------------------------------------


def create_tenant(slug: str) -> Callable[[psycopg.Connection[Any]], None]:
    def action(conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            "select tenancy.create_tenant(%s, %s, %s)", (slug, slug.title(), new_user_id())
        )

    return action


def test_concurrent_create_tenant_with_the_same_slug(roles: Roles) -> None:
    slug = f"race-{uuid.uuid4().hex[:10]}"

    outcomes = race(
        roles.superuser, roles.admin, {"a": create_tenant(slug), "b": create_tenant(slug)}
    )

    assert sorted(str(o.sqlstate) for o in outcomes.values()) == ["23505", "None"], outcomes
    loser = next(o for o in outcomes.values() if not o.ok)
    assert slug in loser.message and "already taken" in loser.message
    with psycopg.connect(roles.superuser) as conn:
        rows = conn.execute(
            """
            select t.id, count(m.*) from tenancy.tenants as t
            left join tenancy.memberships as m on m.tenant_id = t.id
            where t.slug = %s group by t.id
            """,
            (slug,),
        ).fetchall()
    assert len(rows) == 1 and rows[0][1] == 1  # one tenant, one owner, no orphan membership


def test_slug_is_free_again_when_the_first_creator_rolls_back(roles: Roles) -> None:
    """Paired case: the waiting session gets the slug when the holder does not commit."""
    slug = f"race-{uuid.uuid4().hex[:10]}"
    barrier = threading.Barrier(2)
    holder_pid: list[int] = []
    outcome: list[Outcome] = []

    def waiter() -> None:
        with psycopg.connect(roles.admin) as conn:
            barrier.wait(TIMEOUT)
            try:
                create_tenant(slug)(conn)
                conn.commit()
                outcome.append(Outcome("waiter", None))
            except psycopg.Error as exc:
                outcome.append(Outcome("waiter", exc.sqlstate, str(exc)))

    with psycopg.connect(roles.admin) as holder:
        create_tenant(slug)(holder)
        holder_pid.append(holder.info.backend_pid)
        t = threading.Thread(target=waiter)
        t.start()
        barrier.wait(TIMEOUT)
        with psycopg.connect(roles.superuser, autocommit=True) as mon:
            deadline = time.monotonic() + TIMEOUT
            while True:
                row = mon.execute(
                    "select pid from pg_stat_activity where %s = any(pg_blocking_pids(pid))",
                    (holder_pid[0],),
                ).fetchone()
                if row:
                    break
                assert time.monotonic() < deadline, "the second creator never waited"
                time.sleep(0.01)
        holder.rollback()
        t.join(TIMEOUT)

    assert outcome == [Outcome("waiter", None)]
    with psycopg.connect(roles.superuser) as conn:
        row = conn.execute(
            "select count(*) from tenancy.tenants where slug = %s", (slug,)
        ).fetchone()
    assert row == (1,)


# -- many tenants at once ------------------------------------------------------------------


def test_many_sessions_authenticating_different_tenants_see_only_their_own_rows(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    tenants = [make_tenant() for _ in range(8)]
    with psycopg.connect(roles.service) as conn:
        for t in tenants:
            with conn.transaction():
                conn.execute("select tenancy.set_context(%s)", (t.id,))
                for n in range(3):
                    conn.execute(
                        "insert into app.projects (tenant_id, name) values (%s, %s)",
                        (t.id, f"{t.slug}-seed-{n}"),
                    )
    sessions = 16
    rounds = 25
    barrier = threading.Barrier(sessions)
    problems: list[str] = []

    def session(index: int) -> None:
        tenant = tenants[index % len(tenants)]
        # Half the sessions are applications with a JWT, half trusted backends.
        url = roles.app if index % 2 == 0 else roles.service
        try:
            with psycopg.connect(url) as conn:
                for r in range(rounds):
                    barrier.wait(TIMEOUT)
                    with conn.transaction():
                        if url == roles.app:
                            conn.execute(
                                "select tenancy.authenticate(%s)",
                                (token_for(tenant.id, tenant.owner),),
                            )
                        else:
                            conn.execute("select tenancy.set_context(%s)", (tenant.id,))
                        conn.execute(
                            "insert into app.projects (name) values (%s)",
                            (f"{tenant.slug}-s{index}-r{r}",),
                        )
                        rows = conn.execute("select tenant_id, name from app.projects").fetchall()
                        current = conn.execute("select tenancy.current_tenant_id()").fetchone()
                    foreign = [row for row in rows if row[0] != tenant.id]
                    if foreign or current != (tenant.id,):
                        problems.append(f"session {index} round {r}: {foreign[:3]} {current}")
                    if not any(name == f"{tenant.slug}-s{index}-r{r}" for _, name in rows):
                        problems.append(f"session {index} round {r}: own row not visible")
                # After the last transaction nothing is left on the connection.
                with conn.transaction():
                    left = conn.execute("select count(*) from app.projects").fetchone()
                if left != (0,):
                    problems.append(f"session {index}: {left} rows visible without a context")
        except Exception as exc:  # reported by the main thread
            problems.append(f"session {index}: {exc!r}")
            barrier.abort()

    threads = [threading.Thread(target=session, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 4)

    assert problems == []
    per_tenant = sessions // len(tenants)
    with psycopg.connect(roles.superuser) as conn:
        for t in tenants:
            row = conn.execute(
                "select count(*), count(*) filter (where name like %s) from app.projects"
                " where tenant_id = %s",
                (f"{t.slug}-%", t.id),
            ).fetchone()
            assert row == (3 + per_tenant * rounds, 3 + per_tenant * rounds)
