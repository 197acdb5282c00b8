"""Concurrent sessions: owners are never all removed, slugs stay unique, contexts stay apart.

Races are made deterministic where the outcome depends on the order: both sessions are
released together by a barrier, and the session that wins the lock commits only once the
other one is seen waiting for it (pg_blocking_pids), so the loser is tested against the
committed result of the winner, as in a real collision.
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
from conftest import Roles, Tenant, token_for

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


def wait_until_blocked(superuser_url: str, pid: int, timeout: float = TIMEOUT) -> None:
    """Return once backend ``pid`` waits for a lock held by another session."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        while True:
            row = conn.execute("select cardinality(pg_blocking_pids(%s))", (pid,)).fetchone()
            if row and row[0]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"backend {pid} never waited for a lock")
            time.sleep(0.01)


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


def race(
    superuser_url: str,
    conninfo: str,
    actions: dict[str, Callable[[psycopg.Connection[Any]], None]],
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
        with psycopg.connect(conninfo) as conn:
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


def as_member(
    token: str, statement: str, *params: Any
) -> Callable[[psycopg.Connection[Any]], None]:
    def action(conn: psycopg.Connection[Any]) -> None:
        conn.execute("select tenancy.authenticate(%s)", (token,))
        conn.execute(statement, params)

    return action


# -- the last owner ------------------------------------------------------------------------


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
    roles: Roles, make_tenant: Callable[[], Tenant], statement: str, target: str
) -> None:
    tenant = make_tenant()
    x, y = tenant.owner, uuid.uuid4()
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
    )

    winners = [o for o in outcomes.values() if o.ok]
    losers = [o for o in outcomes.values() if not o.ok]
    assert len(winners) == 1, outcomes
    assert [o.sqlstate for o in losers] == ["TN005"], outcomes
    assert "last owner" in losers[0].message
    remaining = owners(roles, tenant.id)
    assert len(remaining) == 1
    # The loser tried to take away the one owner left.
    loser_victim = victim(*((x, y) if losers[0].actor == "x" else (y, x)))
    assert remaining == {loser_victim}


def test_owner_can_leave_when_another_owner_is_added_concurrently(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    """The legitimate side: with an owner added first, the original owner may leave."""
    tenant = make_tenant()
    x, y, z = tenant.owner, uuid.uuid4(), uuid.uuid4()
    add_members(roles, tenant, [y], "owner")

    outcomes = race(
        roles.superuser,
        roles.app,
        {
            "x-adds-z": as_member(
                token_for(tenant.id, x), "select tenancy.add_member(%s, 'owner')", z
            ),
            "y-leaves": as_member(token_for(tenant.id, y), "select tenancy.remove_member(%s)", y),
        },
    )

    assert all(o.ok for o in outcomes.values()), outcomes
    assert owners(roles, tenant.id) == {x, z}


def test_many_sessions_shuffling_owners_always_keep_one(
    roles: Roles, make_tenant: Callable[[], Tenant]
) -> None:
    """Free-running sessions add, remove and demote owners; the tenant always keeps one."""
    tenant = make_tenant()
    users = [tenant.owner, *(uuid.uuid4() for _ in range(5))]
    add_members(roles, tenant, users[1:3], "owner")
    add_members(roles, tenant, users[3:], "member")
    expected_refusals = {
        "TN005",  # last owner
        "TN003",  # the actor was removed before it authenticated
        "TN001",  # the actor's context was invalidated by a concurrent change
        "42501",  # the actor was demoted before it authenticated
        "P0002",  # the target was removed meanwhile
        "23505",  # the target was added meanwhile
    }
    stop = threading.Event()
    seen_zero = threading.Event()
    errors: list[BaseException] = []
    tallies: dict[str, int] = {}
    tally_lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(roles.app) as conn:
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
    newcomer = uuid.uuid4()
    with psycopg.connect(roles.app) as conn, conn.transaction():
        conn.execute("select tenancy.authenticate(%s)", (token_for(tenant.id, survivor),))
        conn.execute("select tenancy.add_member(%s, 'viewer')", (newcomer,))


# -- unique slugs --------------------------------------------------------------------------


def create_tenant(slug: str) -> Callable[[psycopg.Connection[Any]], None]:
    def action(conn: psycopg.Connection[Any]) -> None:
        conn.execute("select tenancy.create_tenant(%s, %s, %s)", (slug, slug.title(), uuid.uuid4()))

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
