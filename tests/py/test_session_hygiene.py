"""What one borrower of a shared login or pooled session can leave or do to the next.

* ``migrate`` revokes TEMPORARY on the database from PUBLIC (``--keep-temp-privilege`` keeps
  it): a login may no longer plant temporary objects unless it was granted TEMPORARY itself.
* ``reset_session`` / ``areset_session`` as psycopg_pool's ``reset=`` callback: temporary
  objects, holdable cursors, session settings and prepared statements left by one borrower do
  not reach the next. Without the callback they do (shown here, that is why it exists).
* Cross-tenant denial of service from the shared login: ``LOCK TABLE`` needs no context and is
  bounded by the victims' ``lock_timeout``; ``pg_terminate_backend``/``pg_cancel_backend`` of a
  sibling session are refused once EXECUTE on them is revoked from PUBLIC.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import Roles, run_cli, seed, token_for, visible
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pgtenancy import (
    ContextError,
    areset_session,
    authenticated_transaction,
    reset_session,
    testing,
)
from pgtenancy import migrate as migrate_mod

PGTENANCY = Path(sys.executable).with_name("pgtenancy")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_db(base_url: str) -> Iterator[str]:
    """A database cloned from the migrated template: database ACLs are not copied by CREATE
    DATABASE, so PUBLIC holds TEMPORARY on it as on any new database."""
    url = testing.create_test_database(base_url)
    yield url
    testing.drop_test_database(url)


@pytest.fixture
def logins(base_url: str) -> Iterator[Any]:
    """Factory for login roles in tenancy_app, dropped at the end.

    Request it before ``fresh_db``, so that the database holding their grants is dropped first.
    """
    made: list[str] = []

    def factory(*groups: str) -> str:
        name = f"t_login_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(sql.SQL("create role {} login").format(sql.Identifier(name)))
            for group in groups or ("tenancy_app",):
                conn.execute(
                    sql.SQL("grant {} to {}").format(sql.Identifier(group), sql.Identifier(name))
                )
        made.append(name)
        return name

    yield factory
    with psycopg.connect(base_url, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))


def as_login(url: str, name: str) -> str:
    return testing.as_login(url, name)


def can_create_temp_table(url: str) -> bool:
    """True when the login of ``url`` may create a temporary table; False on 42501."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute("create temporary table probe (i int)")
        except psycopg.errors.InsufficientPrivilege:
            return False
    return True


def public_has_temp(url: str) -> bool:
    return migrate_mod.temp_privilege(url).public_has_temp


# -- migrate revokes TEMPORARY from PUBLIC ---------------------------------------------------


def test_migrate_revokes_temporary_from_public(logins: Any, fresh_db: str) -> None:
    web, batch = logins(), logins()
    # Before: any login may create temporary objects (the PUBLIC default).
    assert public_has_temp(fresh_db)
    assert can_create_temp_table(as_login(fresh_db, web))

    assert migrate_mod.migrate(fresh_db) == []  # up to date; the privilege is what changes
    assert not public_has_temp(fresh_db)
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege) as info,
        psycopg.connect(as_login(fresh_db, web), autocommit=True) as conn,
    ):
        conn.execute("create temporary table probe (i int)")
    assert info.value.sqlstate == "42501"
    assert "permission denied to create temporary tables" in str(info.value)

    # What to do instead for a login that needs temporary tables: grant it explicitly.
    dbname = testing.dbname_of(fresh_db)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(
            sql.SQL("grant temporary on database {} to {}").format(
                sql.Identifier(dbname), sql.Identifier(batch)
            )
        )
    assert can_create_temp_table(as_login(fresh_db, batch))
    assert not can_create_temp_table(as_login(fresh_db, web))

    # Idempotent: a second migrate changes nothing, and keeps the explicit grant.
    assert migrate_mod.migrate(fresh_db) == []
    assert migrate_mod.revoke_public_temp(fresh_db) is False
    assert can_create_temp_table(as_login(fresh_db, batch))


def test_cli_migrate_reports_the_revoke_and_keep_temp_privilege_opts_out(
    logins: Any, fresh_db: str
) -> None:
    web = logins()
    res = run_cli("migrate", "--keep-temp-privilege", "--database-url", fresh_db)
    assert res.returncode == 0, res.stderr
    assert "TEMPORARY" not in res.stdout
    assert public_has_temp(fresh_db)
    assert can_create_temp_table(as_login(fresh_db, web))

    res = run_cli("migrate", "--database-url", fresh_db)
    assert res.returncode == 0, res.stderr
    assert "revoked TEMPORARY on the database from PUBLIC" in res.stdout
    assert not public_has_temp(fresh_db)
    assert not can_create_temp_table(as_login(fresh_db, web))

    res = run_cli("migrate", "--database-url", fresh_db)
    assert res.returncode == 0, res.stderr
    assert "TEMPORARY" not in res.stdout


def test_migrate_by_a_user_who_cannot_revoke_fails_before_applying_anything(
    logins: Any, fresh_db: str
) -> None:
    migrator = logins("tenancy_owner")  # not the database owner, not a superuser
    url = as_login(fresh_db, migrator)
    dbname = testing.dbname_of(fresh_db)
    res = run_cli("migrate", "--database-url", url)
    assert res.returncode == 2
    assert res.stderr.startswith("pgtenancy: ")
    assert repr(dbname) in res.stderr
    assert "--keep-temp-privilege" in res.stderr
    assert "Nothing was applied" in res.stderr
    assert f'revoke temporary on database "{dbname}" from public' in res.stderr
    assert public_has_temp(fresh_db)

    # A member of the role that owns the database may revoke it (it acts as the owner).
    owner_role = logins()
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(
            sql.SQL("alter database {} owner to {}").format(
                sql.Identifier(dbname), sql.Identifier(owner_role)
            )
        )
        conn.execute(
            sql.SQL("grant {} to {}").format(sql.Identifier(owner_role), sql.Identifier(migrator))
        )
    assert migrate_mod.revoke_public_temp(url) is True
    assert not public_has_temp(fresh_db)
    with psycopg.connect(fresh_db, autocommit=True) as conn:  # let the fixture drop the role
        conn.execute(sql.SQL("alter database {} owner to postgres").format(sql.Identifier(dbname)))


# -- the pool reset hook ----------------------------------------------------------------------

LEFTOVERS = """
select (select count(*) from pg_catalog.pg_class
        where relnamespace = pg_catalog.pg_my_temp_schema()) as temp_relations,
       (select count(*) from pg_catalog.pg_cursors where is_holdable) as holdable_cursors,
       pg_catalog.current_setting('search_path') as search_path,
       pg_catalog.current_setting('default_transaction_isolation') as isolation,
       pg_catalog.current_setting('default_transaction_read_only') as read_only,
       nullif(pg_catalog.current_setting('leftover.stash', true), '') as stash,
       (select count(*) from pg_catalog.pg_prepared_statements
        where name = 'left_plan') as prepared
"""
CLEAN = (0, 0, '"$user", public', "read committed", "off", None, 0)
LEFT = (1, 1, "pg_temp, public", "serializable", "on", "a stolen token", 1)


def leave_everything(conn: psycopg.Connection[Any]) -> None:
    """What one borrower can leave in a session at the level of SQL, each committed."""
    with conn.transaction():
        conn.execute("create temporary table left_behind (i int)")
        conn.execute("declare left_cursor cursor with hold for select 1")
        conn.execute("prepare left_plan as select 1")
        conn.execute("set search_path = pg_temp, public")
        conn.execute("set default_transaction_isolation = 'serializable'")
        conn.execute("set default_transaction_read_only = on")
        conn.execute("select set_config('leftover.stash', 'a stolen token', false)")


def leftovers(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    with conn.transaction():
        row = conn.execute(LEFTOVERS).fetchone()
    assert row is not None
    return tuple(row)


def pid(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("select pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("prepare_threshold", [0, 5], ids=["prepare-all", "prepare-default"])
def test_pool_reset_hook_leaves_nothing_for_the_next_borrower(
    roles: Roles, make_tenant: Any, prepare_threshold: int
) -> None:
    a, b = make_tenant(), make_tenant()
    seed(roles, a, ["a1"])
    seed(roles, b, ["b1", "b2"])
    kwargs = {"prepare_threshold": prepare_threshold}
    with ConnectionPool(
        roles.app, min_size=1, max_size=1, kwargs=kwargs, reset=reset_session, open=True
    ) as pool:
        pids = set()
        for round_ in range(8):  # prepared statements keep working across resets
            with pool.connection() as conn:
                pids.add(pid(conn))
                conn.commit()
                with authenticated_transaction(conn, token_for(a.id, a.owner)):
                    assert visible(conn) == ["a1"]
                leave_everything(conn)
                if round_ == 0:
                    assert leftovers(conn) == LEFT
            with pool.connection() as conn:
                pids.add(pid(conn))
                conn.commit()
                assert leftovers(conn) == CLEAN
                with authenticated_transaction(conn, token_for(b.id, b.owner)):
                    iso = conn.execute("show transaction_isolation").fetchone()
                    assert iso == ("read committed",)
                    assert visible(conn) == ["b1", "b2"]
        assert len(pids) == 1  # one backend for every borrower


def test_without_the_reset_hook_a_borrower_inherits_everything(
    roles: Roles, make_tenant: Any
) -> None:
    """Why the hook exists: psycopg_pool alone ends transactions but keeps the session."""
    a, b = make_tenant(), make_tenant()
    seed(roles, a, ["a1", "a2"])
    seed(roles, b, ["b1"])
    with ConnectionPool(roles.app, min_size=1, max_size=1, open=True) as pool:
        with pool.connection() as conn:
            first = pid(conn)
            conn.commit()
            # Tenant A's request leaves a holdable cursor over its rows: WITH HOLD materialises
            # them, under A's context, when the transaction commits.
            with authenticated_transaction(conn, token_for(a.id, a.owner)):
                conn.execute("declare a_rows cursor with hold for select name from app.projects")
            leave_everything(conn)
        with pool.connection() as conn:
            assert pid(conn) == first
            conn.commit()
            # The next borrower, with no context at all, reads tenant A's rows from the cursor.
            with conn.transaction():
                assert conn.execute("fetch all from a_rows").fetchall() == [("a1",), ("a2",)]
                assert visible(conn) == []
            assert leftovers(conn) == (LEFT[0], 2, *LEFT[2:])  # two holdable cursors
            # The settings alone are a denial of service (the objects are dropped first, so
            # nothing else refuses the request): its transaction is read-only by default.
            conn.autocommit = True
            conn.execute("close all")
            conn.execute("discard temp")
            conn.execute("deallocate all")
            conn.autocommit = False
            with (
                pytest.raises(psycopg.Error) as info,
                authenticated_transaction(conn, token_for(b.id, b.owner)),
            ):
                pass
            assert info.value.sqlstate == "25006"
            reset_session(conn)  # the hook's work, done by hand: the same request succeeds
            with authenticated_transaction(conn, token_for(b.id, b.owner)):
                assert visible(conn) == ["b1"]
                assert conn.execute(
                    "select count(*) from pg_cursors where name <> ''"
                ).fetchone() == (0,)


def test_reset_session_restores_autocommit_and_keeps_login_settings(
    roles: Roles, logins: Any, database_url: str
) -> None:
    name = logins()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter role {} set lock_timeout = '2s'").format(sql.Identifier(name)))
    with psycopg.connect(as_login(database_url, name)) as conn:
        conn.execute("set lock_timeout = 0")
        conn.commit()
        reset_session(conn)
        assert conn.autocommit is False
        row = conn.execute("show lock_timeout").fetchone()
        assert row == ("2s",)  # the login's own setting survives DISCARD ALL
        conn.rollback()
        conn.execute("select 1")
        with pytest.raises(ContextError, match="inside a transaction"):
            reset_session(conn)


async def test_async_pool_reset_hook(roles: Roles, make_tenant: Any) -> None:
    b = make_tenant()
    seed(roles, b, ["b1"])
    async with AsyncConnectionPool(
        roles.app,
        min_size=1,
        max_size=1,
        kwargs={"prepare_threshold": 0},
        reset=areset_session,
        open=False,
    ) as pool:
        for _ in range(3):
            async with pool.connection() as conn:
                await conn.set_autocommit(True)
                await conn.execute("create temporary table left_behind (i int)")
                await conn.execute("set default_transaction_read_only = on")
                await conn.execute("select set_config('leftover.stash', 'a stolen token', false)")
                await conn.set_autocommit(False)
            async with pool.connection() as conn:
                cur = await conn.execute(LEFTOVERS)
                row = await cur.fetchone()
                await conn.rollback()
                assert row is not None and tuple(row) == CLEAN
                async with conn.transaction():
                    await conn.execute(
                        "select tenancy.authenticate(%s)", (token_for(b.id, b.owner),)
                    )
                    cur = await conn.execute("select name from app.projects")
                    assert await cur.fetchall() == [("b1",)]


def test_pg_temp_last_in_the_login_search_path_protects_unqualified_names(
    roles: Roles, make_tenant: Any, logins: Any, database_url: str
) -> None:
    """An application that writes ``projects`` for ``app.projects`` is shadowed by a temporary
    table of that name, unless its login's search_path names pg_temp last."""
    a = make_tenant()
    seed(roles, a, ["a1"])
    plain, pinned = logins(), logins()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter role {} set search_path = app").format(sql.Identifier(plain)))
        conn.execute(
            sql.SQL("alter role {} set search_path = app, pg_temp").format(sql.Identifier(pinned))
        )
        # Sessions holding temporary objects may be refused a context unless the login uses
        # them on purpose; this test is about name resolution inside the context.
        if conn.execute("select to_regrole('tenancy_session_objects')").fetchone() != (None,):
            for name in (plain, pinned):
                conn.execute(
                    sql.SQL("grant tenancy_session_objects to {}").format(sql.Identifier(name))
                )
    seen = {}
    for name in (plain, pinned):
        with psycopg.connect(as_login(database_url, name), autocommit=True) as conn:
            conn.execute("create temporary table projects (name text)")
            conn.execute("insert into pg_temp.projects values ('planted')")
            conn.autocommit = False
            with authenticated_transaction(conn, token_for(a.id, a.owner)):
                seen[name] = [r[0] for r in conn.execute("select name from projects")]
    assert seen == {plain: ["planted"], pinned: ["a1"]}


# -- cross-tenant denial of service from the shared login -----------------------------------


def test_lock_table_needs_no_context_and_lock_timeout_bounds_the_wait(
    roles: Roles, make_tenant: Any, logins: Any, database_url: str
) -> None:
    b = make_tenant()
    seed(roles, b, ["b1"])
    victim = logins()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("alter role {} set lock_timeout = '300ms'").format(sql.Identifier(victim))
        )
    victim_url = as_login(database_url, victim)
    with psycopg.connect(roles.app) as attacker:
        # A table tenancy_app may only read allows ACCESS SHARE only (PostgreSQL 15) ...
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            attacker.execute("lock table tenancy.memberships in access exclusive mode")
        attacker.rollback()
        attacker.execute("lock table tenancy.memberships in access share mode")
        attacker.rollback()
        # ... but with no context at all, tenancy_app's UPDATE/DELETE privileges on a tenant
        # table allow every lock mode.
        attacker.execute("lock table app.projects in access exclusive mode")
        with psycopg.connect(victim_url) as conn:
            started = time.monotonic()
            with (
                pytest.raises(psycopg.errors.LockNotAvailable) as info,
                authenticated_transaction(conn, token_for(b.id, b.owner)),
            ):
                visible(conn)
            assert info.value.sqlstate == "55P03"
            assert time.monotonic() - started < 5
        attacker.rollback()
    # Paired: once the lock is gone the same request succeeds.
    with (
        psycopg.connect(victim_url) as conn,
        authenticated_transaction(conn, token_for(b.id, b.owner)),
    ):
        assert visible(conn) == ["b1"]


SIGNAL_FUNCTIONS = "pg_terminate_backend(integer, bigint), pg_cancel_backend(integer)"


def test_revoking_the_signal_functions_protects_sibling_sessions(
    fresh_db: str, roles: Roles
) -> None:
    app = as_login(fresh_db, str(conninfo_to_dict(roles.app)["user"]))
    # Before: a session of the shared login cancels and terminates its siblings.
    with psycopg.connect(app, autocommit=True) as attacker, psycopg.connect(app) as sibling:
        victim = pid(sibling)
        assert attacker.execute("select pg_cancel_backend(%s)", (victim,)).fetchone() == (True,)
        row = attacker.execute("select pg_terminate_backend(%s)", (victim,)).fetchone()
        assert row == (True,)
        with pytest.raises(psycopg.OperationalError):
            sibling.execute("select 1")

    with psycopg.connect(fresh_db, autocommit=True) as conn:  # as a superuser
        conn.execute(f"revoke execute on function {SIGNAL_FUNCTIONS} from public")

    with psycopg.connect(app, autocommit=True) as attacker, psycopg.connect(app) as sibling:
        victim = pid(sibling)
        for call in ("pg_terminate_backend(%s)", "pg_cancel_backend(%s)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
                attacker.execute(f"select {call}", (victim,))
            assert info.value.sqlstate == "42501"
        assert sibling.execute("select 1").fetchone() == (1,)  # still alive
        sibling.rollback()
        # Paired: an operator (superuser, or a role granted EXECUTE) still can.
        with psycopg.connect(fresh_db, autocommit=True) as operator:
            row = operator.execute("select pg_terminate_backend(%s)", (victim,)).fetchone()
            assert row == (True,)
        with pytest.raises(psycopg.OperationalError):
            sibling.execute("select 1")
