"""The write fence under attack: the application's login, under SQL injection, writing when fenced.

A tenant being moved (``pgtenancy tenant move``) is fenced on its old placement
(``tenancy.fence_tenant``): from the fence's commit on, its contexts still read there, but every
write is refused (TN021), so that no write lands where the move would leave it behind.
Transactions that set a context before the commit may finish their writes; the fence is complete
once they have ended (``tenancy.fence_transactions``, ``tenancy.fence_pending``), and the move's
``fence()`` waits for that. The attacker has SQL injection as the application's login (a member
of ``tenancy_app``) on a pooled connection, authenticated as the owner of the fenced tenant F or
of an unfenced tenant B, sometimes with a login that may create temporary objects. In a
transaction begun after the fence it forges the settings and the sequences that carry the
context and its fence value, plants pg_temp shadows, rolls savepoints and exception blocks back,
switches contexts, cancels context calls half-way with a statement timeout of 1 ms, prepares
statements and tries every isolation level; it holds session advisory locks to stall other
tenants' contexts or a fence. Each refusal is paired with the same operation succeeding for the
rightful tenant (B, or F once unfenced). Real PostgreSQL, nothing mocked.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from conftest import Roles, Tenant, one, token_for
from psycopg import sql
from test_hostile_session import hostile_login as hostile_login_fixture

from pgtenancy import move

Conn = psycopg.Connection[Any]
hostile_login = hostile_login_fixture  # a login with TEMP (test_hostile_session's fixture)

OLD_FENCE_CLASS = 1886151022  # the advisory lock class an earlier design of the fence took
AUTHENTICATE = "select tenancy.authenticate(%s)"
INSERT = "insert into app.projects (name) values (%s)"
ISOLATIONS = ["read committed", "repeatable read", "serializable"]


@dataclass
class Pair:
    fenced: Tenant  # F: fenced for the whole test unless the test lifts the fence
    other: Tenant  # B: never fenced


def admin(roles: Roles, query: str, params: Any = None) -> Any:
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        return one(conn, query, params)


def written(roles: Roles, tenant: Tenant, name: str) -> int:
    """How many projects of that name the tenant has (read by the superuser)."""
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        return int(
            one(
                conn,
                "select count(*) from app.projects where tenant_id = %s and name = %s",
                (tenant.id, name),
            )
        )


def written_like(roles: Roles, tenant: Tenant, prefix: str) -> int:
    """How many projects whose name starts with the prefix the tenant has."""
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        return int(
            one(
                conn,
                "select count(*) from app.projects where tenant_id = %s and starts_with(name, %s)",
                (tenant.id, prefix),
            )
        )


def attempt(conn: Conn, *statements: tuple[str, Any] | str | sql.Composed) -> str | None:
    """The SQLSTATE of the statements run in a savepoint of the open transaction; None when
    they all ran."""
    try:
        with conn.transaction():
            for statement in statements:
                if isinstance(statement, tuple):
                    conn.execute(statement[0], statement[1])
                else:
                    conn.execute(statement)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def attempt_autocommit(conn: Conn, query: str, params: Any = None) -> str | None:
    try:
        conn.execute(query, params)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def owner_conn(roles: Roles, tenant: Tenant, isolation: str | None = None) -> Conn:
    """The application login in a transaction authenticated as the tenant's owner."""
    conn = psycopg.connect(roles.app)
    if isolation:
        conn.execute(f"set transaction isolation level {isolation}")
    conn.execute(AUTHENTICATE, (token_for(tenant.id, tenant.owner),))
    return conn


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


def restore(value: str) -> tuple[str, Any]:
    """A context value put back by hand, with the mark of a keyed session."""
    return (
        "select set_config('tenancy.context', %s, true),"
        " set_config('tenancy.context_keyed', 'on', false)",
        (value,),
    )


def fence_options(roles: Roles, **kw: Any) -> move.MoveOptions:
    """Options of a move from this database: fence() uses the fence's wait and attempts, and
    waits for a quiet moment (no transaction older than half the wait) up to copy_timeout."""
    kw.setdefault("copy_timeout", 2.0)
    return move.MoveOptions(
        source_url=roles.superuser, destination_url=roles.superuser, destination="elsewhere", **kw
    )


@pytest.fixture
def pair(roles: Roles, make_tenant: Any) -> Iterator[Pair]:
    fenced, other = make_tenant(), make_tenant()
    for tenant in (fenced, other):
        with owner_conn(roles, tenant) as conn:
            conn.execute(INSERT, ("seeded",))
    admin(roles, "select tenancy.fence_tenant(%s, 'move to dedicated-1')", (fenced.id,))
    yield Pair(fenced, other)
    admin(roles, "select tenancy.unfence_tenant(%s)", (fenced.id,))
    admin(roles, "select tenancy.unfence_tenant(%s)", (other.id,))


def rightful_writes(roles: Roles, pair: Pair, label: str) -> None:
    """The same write by the unfenced tenant succeeds; so does the fenced one's once unfenced
    (the fence is set again after)."""
    name = unique(label)
    with owner_conn(roles, pair.other) as conn:
        conn.execute(INSERT, (name,))
    assert written(roles, pair.other, name) == 1
    assert admin(roles, "select tenancy.unfence_tenant(%s)", (pair.fenced.id,)) is True
    try:
        with owner_conn(roles, pair.fenced) as conn:
            conn.execute(INSERT, (name,))
        assert written(roles, pair.fenced, name) == 1
    finally:
        admin(roles, "select tenancy.fence_tenant(%s, 'move to dedicated-1')", (pair.fenced.id,))


# -- the placement directory and the fence's functions ---------------------------------------------


def test_the_application_reads_no_placement_and_calls_no_fence_function(
    roles: Roles, pair: Pair
) -> None:
    f = pair.fenced.id
    with owner_conn(roles, pair.other) as conn:
        for query in (
            "select * from tenancy.placements",
            "select * from tenancy.tenant_moves",
            "select * from tenancy.move_markers",
            f"select * from tenancy.tenant_placement('{f}')",
            f"select tenancy.unfence_tenant('{f}')",
            f"select tenancy.fence_tenant('{pair.other.id}', 'stop B')",
            "select tenancy.fence_transactions()",
            "select * from tenancy.fence_pending('{1/1}')",
            f"select tenancy.set_tenant_placement('{f}', 'home')",
            "select tenancy.configure_placement('rogue', 'rogue')",
            f"select tenancy.release_moved_tenant('{f}')",
            f"select tenancy.log_move('{f}', 'tenant.moved', '{{}}')",
            f"select * from tenancy.move_checksums('{f}')",
            f"select * from tenancy.move_tables('{f}')",
            f"select tenancy.require_placement_region('{f}', 'home', null)",
        ):
            assert attempt(conn, query) == "42501", query
    # The rightful readers: routers (tenancy_service) read the directory, operators the moves and
    # the fence's transactions.
    with psycopg.connect(roles.service, autocommit=True) as conn:
        assert one(conn, "select count(*) from tenancy.placements where here") == 1
        row = conn.execute(
            "select placement, fenced from tenancy.tenant_placement(%s)", (f,)
        ).fetchone()
        assert row == ("home", True)
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        assert (
            one(conn, "select count(*) from tenancy.tenant_moves where tenant_id = %s", (f,)) == 0
        )
        watched = one(conn, "select tenancy.fence_transactions()")
        assert isinstance(watched, list)
        assert one(conn, "select count(*) from tenancy.fence_pending('{1/1}')") == 0


# -- forged settings and the fence value ---------------------------------------------------------


def test_the_fence_value_and_the_context_settings_cannot_be_forged(
    roles: Roles, pair: Pair
) -> None:
    f, b = pair.fenced, pair.other
    name = unique("forged")
    # A value of B's context from an earlier transaction of this session, and one of F's.
    with owner_conn(roles, b) as conn:
        b_context = one(conn, "select current_setting('tenancy.context')")
    with owner_conn(roles, f) as conn:
        f_context = one(conn, "select current_setting('tenancy.context')")
        assert one(conn, "select count(*) from app.projects") == 1  # F reads
        assert attempt(conn, (INSERT, (name,))) == "TN021"
        # The fence value is a sequence only tenancy_owner may set: set to the key, it would
        # let the context write.
        key = one(conn, "select currval('tenancy.context_key')")
        assert one(conn, "select currval('tenancy.context_fence')") == ~key
        for query in (
            f"select setval('tenancy.context_fence', {key}, true)",
            f"select setval('tenancy.context_fence', {key}, false)",
            f"select setval('tenancy.context_fence'::regclass, {key})",
            "select nextval('tenancy.context_fence')",
            f"alter sequence tenancy.context_fence restart with {key}",
            "alter sequence tenancy.context_fence owned by none",
            f"select setval('tenancy.context_key', {~key}, true)",
            f"select pg_catalog.setval(c.oid, {key}, true) from pg_catalog.pg_class as c"
            " where c.relname = 'context_fence'",
        ):
            assert attempt(conn, query) == "42501", query
        # Settings of the same names change nothing.
        for forged in (
            "select set_config('tenancy.context_fence', '0', true)",
            "select set_config('tenancy.context_fence', '0', false)",
            "select set_config('tenancy.fenced', 'off', true)",
        ):
            assert attempt(conn, forged, (INSERT, (name,))) == "TN021", forged
        # Without the keyed flag there is no context at all; with it on again the fence holds.
        assert (
            attempt(
                conn, "select set_config('tenancy.context_keyed', 'off', false)", (INSERT, (name,))
            )
            == "TN001"
        )
        assert (
            attempt(
                conn, "select set_config('tenancy.context_keyed', 'on', false)", (INSERT, (name,))
            )
            == "TN021"
        )
        # Another context's value, or a role the context does not have: no context, so no write.
        for value in (b_context, f"v3|{f.id}|admin|0|{f.owner}", f"v3|{f.id}|service|0|"):
            assert attempt(conn, restore(value), (INSERT, (name,))) == "TN001", value
        # The transaction's own value, set again: the fence holds.
        assert attempt(conn, restore(f_context), (INSERT, (name,))) == "TN021"
        # pgtenancy's own tables through its functions: fenced too.
        for query in (
            "select tenancy.track_event('clicked', 'u1')",
            "select tenancy.log_connector_event('crm', 'synced', '{}')",
            "select tenancy.add_member('auth0|intruder', 'admin')",
            'select tenancy.set_branding(\'{"display_name": "late"}\')',
        ):
            assert attempt(conn, query) == "TN021", query
    # F's value in a later transaction of the same session, without authenticating again: the
    # context key is bound to the transaction that set it, so there is no context.
    with psycopg.connect(roles.app) as conn:
        conn.execute(AUTHENTICATE, (token_for(f.id, f.owner),))
        conn.commit()
        assert attempt(conn, restore(f_context), (INSERT, (name,))) == "TN001"
    assert not written(roles, f, name)
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        assert (
            one(conn, "select count(*) from tenancy.memberships where user_id = 'auth0|intruder'")
            == 0
        )
    rightful_writes(roles, pair, "forged")


def test_pg_temp_shadows_do_not_lift_the_fence(
    roles: Roles, pair: Pair, hostile_login: Any
) -> None:
    """A login with TEMP plants functions, a table and a sequence named as what the fence uses,
    and puts pg_temp first: pgtenancy's functions pin their search path, so nothing binds."""
    url = hostile_login("tenancy_app")
    name = unique("shadowed")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            create function pg_temp.currval(regclass) returns bigint
                language sql as 'select 0::bigint';
            create function pg_temp.setval(regclass, bigint, boolean) returns bigint
                language sql as 'select 0::bigint';
            create function pg_temp.row_security_active(regclass) returns boolean
                language sql as 'select true';
            create function pg_temp.raise_fenced(text, text, text) returns void
                language sql as 'select';
            create function pg_temp.current_setting(text) returns text
                language sql as 'select ''read committed''';
            create temporary table tenants (id uuid, fenced_at timestamptz, fence_reason text);
            create temporary sequence context_fence;
            """
        )
        conn.execute("insert into pg_temp.tenants values (%s, null, null)", (pair.fenced.id,))
        conn.execute("set search_path = pg_temp, tenancy, app, pg_catalog")
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(pair.fenced.id, pair.fenced.owner),))
            assert one(conn, "select pg_temp.currval('tenancy.context_fence')") == 0
            assert attempt(conn, (INSERT, (name,))) == "TN021"
            assert attempt(conn, ("insert into projects (name) values (%s)", (name,))) == "TN021"
        # The same session writes for B.
        with conn.transaction():
            conn.execute(AUTHENTICATE, (token_for(pair.other.id, pair.other.owner),))
            conn.execute(INSERT, (name,))
    assert not written(roles, pair.fenced, name)
    assert written(roles, pair.other, name) == 1


# -- a transaction begun after the fence: no trick writes --------------------------------------


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_every_isolation_level_is_fenced(roles: Roles, pair: Pair, isolation: str) -> None:
    f, b = pair.fenced, pair.other
    name = unique(isolation)
    with owner_conn(roles, f, isolation) as conn:
        assert one(conn, "select count(*) from app.projects") == 1
        assert attempt(conn, (INSERT, (name,))) == "TN021"
        assert attempt(conn, "update app.projects set name = name || '!'") == "TN021"
        assert attempt(conn, "delete from app.projects") == "TN021"
    # A snapshot taken before the fence, the context set after it: under READ COMMITTED the
    # context reads the fence (a fresh snapshot), under the others it is 40001.
    admin(roles, "select tenancy.unfence_tenant(%s)", (f.id,))
    late = psycopg.connect(roles.app)
    try:
        late.execute(f"set transaction isolation level {isolation}")
        late.execute("select count(*) from pg_catalog.pg_class")  # the snapshot
        admin(roles, "select tenancy.fence_tenant(%s, 'move to dedicated-1')", (f.id,))
        outcome = attempt(late, (AUTHENTICATE, (token_for(f.id, f.owner),)), (INSERT, (name,)))
        assert outcome == ("TN021" if isolation == "read committed" else "40001"), outcome
    finally:
        late.close()
    assert not written(roles, f, name)
    with owner_conn(roles, b, isolation) as conn:
        conn.execute(INSERT, (name,))
    assert written(roles, b, name) == 1


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_savepoints_exception_blocks_and_switches_never_write_for_the_fenced_tenant(
    roles: Roles, pair: Pair, isolation: str
) -> None:
    """One transaction begun after the fence sets F's and B's contexts in every order, in
    savepoints and exception blocks rolled back, and puts F's value back by hand each time: F
    writes nothing, B writes whenever its own context is whole."""
    f, b = pair.fenced, pair.other
    name = unique("tricks")
    f_token, b_token = token_for(f.id, f.owner), token_for(b.id, b.owner)
    b_writes = 0
    conn = psycopg.connect(roles.app)
    try:
        conn.execute(f"set transaction isolation level {isolation}")
        conn.execute(AUTHENTICATE, (f_token,))
        f_value = one(conn, "select current_setting('tenancy.context')")
        assert attempt(conn, (INSERT, (name,))) == "TN021"
        # Switching to an unfenced tenant and back.
        conn.execute(AUTHENTICATE, (b_token,))
        b_value = one(conn, "select current_setting('tenancy.context')")
        assert attempt(conn, (INSERT, (name + " b1",))) is None
        b_writes += 1
        assert attempt(conn, restore(f_value), (INSERT, (name,))) == "TN001"  # B's key
        conn.execute(AUTHENTICATE, (f_token,))
        assert attempt(conn, (INSERT, (name,))) == "TN021"
        # F's context set in a savepoint that is rolled back: B's value comes back over F's key
        # and fence value; F's value put back finds F's fence.
        conn.execute(AUTHENTICATE, (b_token,))
        conn.execute("savepoint s")
        conn.execute(AUTHENTICATE, (f_token,))
        conn.execute("rollback to savepoint s")
        assert one(conn, "select current_setting('tenancy.context')") == b_value
        assert attempt(conn, (INSERT, (name,))) == "TN001"
        assert attempt(conn, restore(f_value), (INSERT, (name,))) == "TN021"
        # B's context set in a savepoint rolled back after F's: F's value over B's key.
        conn.execute(AUTHENTICATE, (f_token,))
        conn.execute("savepoint s")
        conn.execute(AUTHENTICATE, (b_token,))
        conn.execute("rollback to savepoint s")
        assert attempt(conn, (INSERT, (name,))) == "TN001"
        assert attempt(conn, restore(f_value), (INSERT, (name,))) == "TN001"
        # B's own value over B's key and fence value: B's context, whole, writes.
        assert attempt(conn, restore(b_value), (INSERT, (name + " b2",))) is None
        b_writes += 1
        # A PL/pgSQL exception block rolls its subtransaction back, the same way.
        for inner in (f_token, b_token):
            conn.execute(
                sql.SQL(
                    """
                    do $$
                    begin
                        perform tenancy.authenticate({});
                        raise exception 'undo';
                    exception when others then
                        null;
                    end
                    $$
                    """
                ).format(sql.Literal(inner))
            )
            outcome = attempt(conn, restore(f_value), (INSERT, (name,)))
            assert outcome == ("TN021" if inner == f_token else "TN001"), outcome
        # Cleared, then F's value: no key, no context.
        conn.execute("select tenancy.clear_context()")
        assert attempt(conn, restore(f_value), (INSERT, (name,))) == "TN001"
        # The rightful write in the same transaction: B authenticated again.
        conn.execute(AUTHENTICATE, (b_token,))
        assert attempt(conn, (INSERT, (name + " b3",))) is None
        b_writes += 1
        conn.commit()
    finally:
        conn.close()
    assert written_like(roles, f, name) == 0
    assert written_like(roles, b, name) == b_writes == 3
    rightful_writes(roles, pair, f"tricks {isolation}")


@dataclass
class Contexts:
    """F's and B's context in one transaction: the call that sets them, its argument for each,
    and what it set (the context key and the context value)."""

    call: str
    args: dict[str, Any]
    keys: dict[str, int]
    values: dict[str, str]


def _cancelled_calls(conn: Conn, ctx: Contexts, name: str, rounds: range) -> Counter[str]:
    """Calls setting F's and B's contexts in turn under a statement timeout of 1 ms, each in a
    savepoint rolled back, after a busy wait of random length so that the timeout lands anywhere
    in the call; after each, F's value and then B's are put back by hand and a write is tried.
    Counts what was seen: calls cancelled or completed, the (key, fence value) pairs left, and
    the outcome of each write in each."""
    seen: Counter[str] = Counter()
    names = {
        ctx.keys["F"]: "kF",
        ~ctx.keys["F"]: "~kF",
        ctx.keys["B"]: "kB",
        ~ctx.keys["B"]: "~kB",
    }
    # A busy wait of up to 1.5 ms, measured here.
    started = time.perf_counter()
    conn.execute("select count(*) from generate_series(1, 20000)")
    per_row = max((time.perf_counter() - started) / 20000, 1e-8)
    longest = int(0.0015 / per_row)
    for n in rounds:
        target = ctx.args["F" if n % 2 else "B"]
        conn.execute("savepoint s")
        conn.execute("set local statement_timeout = 1")
        try:
            conn.execute(
                sql.SQL(
                    "select c.* from (select count(*) as n from generate_series(1, %s)) as busy"
                    " cross join lateral {}(case when busy.n >= 0 then %s end) as c"
                ).format(sql.SQL(ctx.call)),
                (random.randint(0, longest), target),
            )
            seen["completed"] += 1
        except psycopg.errors.QueryCanceled:
            seen["cancelled"] += 1
        # The 1 ms timeout holds until the rollback has run, and a loaded server may cancel the
        # rollback itself: it is tried again (the transaction stays aborted meanwhile).
        for tries_left in range(99, -1, -1):
            try:
                conn.execute("rollback to savepoint s")
                break
            except psycopg.errors.QueryCanceled:
                if tries_left == 0:
                    raise
        row = conn.execute(
            "select currval('tenancy.context_key'), currval('tenancy.context_fence')"
        ).fetchone()
        assert row is not None
        state = f"{names.get(row[0], '?')},{names.get(row[1], '?')}"
        seen[state] += 1
        for who in ("F", "B"):
            outcome = attempt(conn, restore(ctx.values[who]), (INSERT, (f"{name} #{n}",)))
            seen[f"{who} {state} {outcome}"] += 1
    return seen


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("how", ["authenticate", "set_context"])
def test_context_calls_cancelled_half_way_never_write_for_the_fenced_tenant(
    roles: Roles, pair: Pair, isolation: str, how: str
) -> None:
    """A statement timeout of 1 ms cancels authenticate / set_context anywhere, between the
    setvals of establish_context too (sequences are not rolled back with the savepoint); F's
    context value put back by hand each time never writes: the key and the fence value left by
    two different contexts do not agree. B's value over B's whole context writes."""
    f, b = pair.fenced, pair.other
    name = unique(f"cancelled {how}")
    if how == "authenticate":
        conn = psycopg.connect(roles.app)
        args: dict[str, Any] = {"F": token_for(f.id, f.owner), "B": token_for(b.id, b.owner)}
    else:
        conn = psycopg.connect(roles.service)
        args = {"F": f.id, "B": b.id}
    ctx = Contexts(f"tenancy.{how}", args, {}, {})
    try:
        conn.execute(f"set transaction isolation level {isolation}")
        for who in ("F", "B"):
            conn.execute(sql.SQL("select {}(%s)").format(sql.SQL(ctx.call)), (args[who],))
            ctx.keys[who] = one(conn, "select currval('tenancy.context_key')")
            ctx.values[who] = one(conn, "select current_setting('tenancy.context')")
        seen: Counter[str] = Counter()
        # Until a call of F's has been cancelled between its key and its fence value (F's key
        # with B's fence value): at least 200 calls, at most 4,000.
        for batch in range(20):
            seen += _cancelled_calls(conn, ctx, name, range(batch * 200, batch * 200 + 200))
            if seen["kF,kB"]:
                break
        conn.commit()
    finally:
        conn.close()
    report = dict(sorted(seen.items()))
    assert seen["cancelled"] >= 1 and seen["completed"] >= 1, report
    assert seen["kF,kB"] >= 1, f"no call was cancelled between its setvals: {report}"
    # Every write for F was refused: TN021 over F's key, TN001 over B's.
    f_outcomes = {k: v for k, v in seen.items() if k.startswith("F ")}
    assert all(k.endswith(" TN021") or k.endswith(" TN001") for k in f_outcomes), report
    assert seen["F kF,kB TN021"] >= 1, report
    assert written_like(roles, f, name) == 0
    # B wrote exactly when its key and fence value agreed.
    b_written = sum(v for k, v in seen.items() if k.startswith("B ") and k.endswith(" None"))
    assert b_written == seen["kB,kB"] >= 1, report
    assert written_like(roles, b, name) == b_written
    rightful_writes(roles, pair, f"cancelled {how} {isolation}")


def execute_add(name: str) -> sql.Composed:
    """EXECUTE of the prepared statement add_project (a utility statement takes no parameters)."""
    return sql.SQL("execute add_project ({})").format(name)


def test_prepared_statements_are_fenced(roles: Roles, pair: Pair, hostile_login: Any) -> None:
    """A plain application login gets no context in a session holding prepared statements
    (TN008, the hygiene check); a login allowed to keep them (tenancy_session_objects) runs them
    in the fenced tenant's context and is refused at execution."""
    f, b = pair.fenced, pair.other
    name = unique("prepared")
    prepare = "prepare add_project (text) as insert into app.projects (name) values ($1)"
    with psycopg.connect(roles.app) as conn:
        conn.execute(prepare)
        assert attempt(conn, (AUTHENTICATE, (token_for(f.id, f.owner),))) == "TN008"
        conn.execute("deallocate all")
        conn.execute(AUTHENTICATE, (token_for(b.id, b.owner),))  # the rightful, clean session
        conn.rollback()
    admin(roles, "select tenancy.unfence_tenant(%s)", (f.id,))
    login = hostile_login("tenancy_app")
    # SQL PREPARE (psycopg prepares nothing itself on this connection), and psycopg's own
    # server-side prepared statements on another: psycopg deallocates its statements after an
    # error, which would drop the SQL one too.
    sql_conn = psycopg.connect(login, prepare_threshold=None)
    driver = psycopg.connect(login, prepare_threshold=0)
    try:
        # Prepared while F was writable, in an earlier transaction of the pooled session.
        for conn in (sql_conn, driver):
            with conn.transaction():
                conn.execute(AUTHENTICATE, (token_for(f.id, f.owner),))
                if conn is sql_conn:
                    conn.execute(prepare)
                    conn.execute(execute_add(name + " before"))
                else:
                    conn.execute(INSERT, (name + " before (driver)",))
        assert one(driver, "select count(*) from pg_prepared_statements where not from_sql") >= 1
        driver.commit()
        admin(roles, "select tenancy.fence_tenant(%s, 'move to dedicated-1')", (f.id,))
        for conn in (sql_conn, driver):
            with conn.transaction():
                conn.execute(AUTHENTICATE, (token_for(f.id, f.owner),))
                if conn is sql_conn:
                    assert attempt(conn, execute_add(name)) == "TN021"
                else:
                    assert attempt(conn, (INSERT, (name,))) == "TN021"
        # The rightful tenant runs the same prepared statements.
        for conn in (sql_conn, driver):
            with conn.transaction():
                conn.execute(AUTHENTICATE, (token_for(b.id, b.owner),))
                if conn is sql_conn:
                    conn.execute(execute_add(name))
                else:
                    conn.execute(INSERT, (name + " (driver)",))
    finally:
        sql_conn.close()
        driver.close()
    assert written(roles, f, name + " before") and written(roles, f, name + " before (driver)")
    assert not written(roles, f, name)
    assert written(roles, b, name) and written(roles, b, name + " (driver)")


# -- a transaction running at the fence's commit ---------------------------------------------------


def _own_vxid(conn: Conn) -> str:
    return str(
        one(
            conn,
            "select virtualxid from pg_catalog.pg_locks"
            " where locktype = 'virtualxid' and mode = 'ExclusiveLock' and pid = pg_backend_pid()",
        )
    )


def _pending_pids(roles: Roles, watched: list[str]) -> list[int]:
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        return [r[0] for r in conn.execute("select pid from tenancy.fence_pending(%s)", (watched,))]


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_transaction_running_at_the_fence_is_waited_for(
    roles: Roles, pair: Pair, isolation: str
) -> None:
    """A transaction that set F's context before the fence committed may write until it ends
    (by design): fence_transactions lists it, fence_pending shows it until it ends, and the
    move's fence() returns only once it has ended. Its session's next transaction is fenced."""
    f = pair.fenced
    admin(roles, "select tenancy.unfence_tenant(%s)", (f.id,))
    before, after, waiting = unique("before"), unique("after the commit"), unique("waiting")
    holder = owner_conn(roles, f, isolation)
    try:
        holder.execute("set application_name = 'fence holder'")
        holder.execute(INSERT, (before,))
        holder_pid = one(holder, "select pg_backend_pid()")
        holder_vxid = _own_vxid(holder)
        holder_start = one(holder, "select now()")
        admin(roles, "select tenancy.fence_tenant(%s, 'move to dedicated-1')", (f.id,))
        # Committed: a new context of F is fenced, the holder's context still writes.
        with owner_conn(roles, f) as late:
            assert attempt(late, (INSERT, (after,))) == "TN021"
        holder.execute(INSERT, (after,))
        with psycopg.connect(roles.admin, autocommit=True) as conn:
            watched = one(conn, "select tenancy.fence_transactions()")
            assert holder_vxid in watched, watched
            pending = conn.execute(
                "select pid, application_name from tenancy.fence_pending(%s)", (watched,)
            ).fetchall()
            assert (holder_pid, "fence holder") in pending
        with psycopg.connect(roles.superuser, autocommit=True) as conn:
            assert (
                one(
                    conn,
                    "select xact_start from tenancy.fence_pending(%s) where pid = %s",
                    (watched, holder_pid),
                )
                == holder_start
            )
        # The move's fence waits for it.
        done: list[float] = []
        failed: list[BaseException] = []

        def fence() -> None:
            try:
                with psycopg.connect(roles.superuser, autocommit=True) as src:
                    move.fence(
                        src, f.id, "move to dedicated-1", fence_options(roles, fence_wait=30.0)
                    )
                done.append(time.monotonic())
            except BaseException as exc:  # reported by the test thread
                failed.append(exc)

        thread = threading.Thread(target=fence)
        thread.start()
        time.sleep(0.5)
        assert not done and not failed
        holder.execute(INSERT, (waiting,))  # still before the fence: accepted
        assert holder_pid in _pending_pids(roles, watched)
        assert not done
        assert not done
        committing = time.monotonic()  # the commit ends the transaction before it returns
        holder.commit()
        thread.join(30)
        assert not failed, failed
        assert done and done[0] >= committing
        assert holder_pid not in _pending_pids(roles, watched)
        # The same session, next transaction: fenced; reads go on.
        holder.execute(f"set transaction isolation level {isolation}")
        holder.execute(AUTHENTICATE, (token_for(f.id, f.owner),))
        assert attempt(holder, (INSERT, (unique("next"),))) == "TN021"
        assert one(holder, "select count(*) from app.projects") == 4
        holder.rollback()
    finally:
        holder.close()
    assert written(roles, f, before) == written(roles, f, after) == written(roles, f, waiting) == 1
    assert admin(roles, "select fenced from tenancy.tenant_placement(%s)", (f.id,)) is True
    rightful_writes(roles, pair, f"waited {isolation}")


# -- session advisory locks -----------------------------------------------------------------------


def test_session_advisory_locks_stall_no_context_and_no_fence(roles: Roles, pair: Pair) -> None:
    """The application's login holds session advisory locks of many classes and keys derived from
    both tenants' ids, exclusive in one session and shared in another (an earlier design's fence
    lock among them): contexts of B and F are set at once (B writes, F is refused by its fence,
    not by a lock), and B is fenced at once. Contexts and fences take no advisory lock at all, so
    no class or key can stall them."""
    f, b = pair.fenced, pair.other
    ids = [str(f.id), str(b.id)]
    exclusive = psycopg.connect(roles.app, autocommit=True)
    shared = psycopg.connect(roles.app, autocommit=True)
    try:
        # Exclusive in one session, shared in the other, on keys of their own (the two
        # sessions would wait for each other on the same keys).
        for conn, mode, classes in ((exclusive, "", (-64, -1)), (shared, "_shared", (0, 64))):
            conn.execute(
                f"select count(pg_advisory_lock{mode}(c, uuid_hash(t::uuid)))"
                " from unnest(%s::text[]) as t, generate_series(%s::integer, %s::integer) as c",
                (ids, *classes),
            )
            conn.execute(
                f"select count(pg_advisory_lock{mode}(uuid_hash(t::uuid), c))"
                " from unnest(%s::text[]) as t, generate_series(%s::integer, %s::integer) as c",
                (ids, *classes),
            )
            conn.execute(
                f"select count(pg_advisory_lock{mode}(k + %s::integer))"
                " from unnest(%s::text[]) as t,"
                " lateral (values (uuid_hash_extended(t::uuid, 0)), (hashtext(t)::bigint),"
                " (hashtextextended(t, 0)),"
                " (('x' || left(replace(t, '-', ''), 16))::bit(64)::bigint)) as v (k)",
                (classes[0], ids),
            )
        exclusive.execute(
            "select pg_advisory_lock(%s, uuid_hash(t::uuid)) from unnest(%s::text[]) as t",
            (OLD_FENCE_CLASS, ids),
        )
        shared.execute(
            "select pg_advisory_lock_shared(%s + 1, uuid_hash(t::uuid))"
            " from unnest(%s::text[]) as t",
            (OLD_FENCE_CLASS, ids),
        )
        with psycopg.connect(roles.superuser, autocommit=True) as conn:
            held = one(
                conn,
                "select count(*) from pg_catalog.pg_locks where locktype = 'advisory' and granted"
                " and pid = any(%s)",
                (
                    [
                        one(exclusive, "select pg_backend_pid()"),
                        one(shared, "select pg_backend_pid()"),
                    ],
                ),
            )
        assert held == 2 * 2 * 64 + 2 * 2 * 65 + 2 * 2 * 4 + 4
        name = unique("beside the locks")
        # Contexts: B's writes, F's reads and is refused by the fence; no lock waited for.
        with psycopg.connect(roles.service) as conn:
            conn.execute("set lock_timeout = '500ms'")
            conn.execute("select tenancy.set_context(%s)", (b.id,))
            conn.execute(INSERT, (name,))
            assert (
                one(
                    conn,
                    "select count(*) from pg_catalog.pg_locks where locktype = 'advisory'"
                    " and pid = pg_backend_pid()",
                )
                == 0
            )
            conn.commit()
            conn.execute("set lock_timeout = '500ms'")
            conn.execute("select tenancy.set_context(%s)", (f.id,))
            assert one(conn, "select count(*) from app.projects") == 1
            assert attempt(conn, (INSERT, (name,))) == "TN021"
            conn.rollback()
        with psycopg.connect(roles.app) as conn:
            conn.execute("set lock_timeout = '500ms'")
            conn.execute(AUTHENTICATE, (token_for(b.id, b.owner),))
            conn.execute(INSERT, (name + " (app)",))
            conn.commit()
        # A fence: set at once and complete at once (the attacker's idle sessions run no
        # transaction); fence_tenant and the watch take no advisory lock.
        with psycopg.connect(roles.admin) as conn:
            conn.execute("set lock_timeout = '500ms'")
            conn.execute("select tenancy.fence_tenant(%s, 'probe')", (b.id,))
            conn.execute("select tenancy.fence_pending(tenancy.fence_transactions())")
            assert (
                one(
                    conn,
                    "select count(*) from pg_catalog.pg_locks where locktype = 'advisory'"
                    " and pid = pg_backend_pid()",
                )
                == 0
            )
            conn.rollback()
        started = time.monotonic()
        with psycopg.connect(roles.superuser, autocommit=True) as src:
            src.execute("set lock_timeout = '500ms'")
            move.fence(
                src, b.id, "move of B", fence_options(roles, fence_wait=2.0, fence_attempts=1)
            )
        assert time.monotonic() - started < 2.0
        with owner_conn(roles, b) as conn:
            assert attempt(conn, (INSERT, (name + " fenced",))) == "TN021"
    finally:
        exclusive.close()
        shared.close()
    assert written(roles, b, name) == written(roles, b, name + " (app)") == 1
    assert not written(roles, b, name + " fenced")
    assert not written(roles, f, name)
    assert admin(roles, "select tenancy.unfence_tenant(%s)", (b.id,)) is True
    rightful_writes(roles, pair, "advisory locks")
