"""Retention of the audit trail under concurrency: drops and new partitions while writers write.

tenancy.drop_audit_before drops whole monthly partitions of tenancy.audit_logs; writers keep
inserting audited rows into the current month meanwhile. Nothing they commit may be lost and none
of them may fail. A legal hold whose transaction is still open when a drop starts is waited for and
then seen. The tests run in a database of their own: they move the seal frontier, which belongs to
tenancy.seal_audit everywhere else.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
import pytest
from conftest import Roles, wait_until_blocked
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pgtenancy import tenant_transaction, testing

#: Old rows carry transaction ids below this; the frontier is set to it: they count as sealed.
SEALED_BELOW = 1000


@dataclass
class Trail:
    superuser: str
    admin: str
    service: str
    a: uuid.UUID
    b: uuid.UUID


def _month(conn: psycopg.Connection[Any], back: int) -> date:
    row = conn.execute(
        "select (date_trunc('month', now()) - make_interval(months => %s))::date", (back,)
    ).fetchone()
    assert row is not None
    return row[0]


def _partitions(conn: psycopg.Connection[Any]) -> set[str]:
    return {
        r[0]
        for r in conn.execute(
            "select c.relname::text from pg_inherits as i join pg_class as c on c.oid = i.inhrelid"
            " where i.inhparent = 'tenancy.audit_logs'::regclass"
        )
    }


def _old_partition(superuser: str, back: int, tenant: uuid.UUID | None, rows: int) -> str:
    """The partition of the month ``back`` months ago, with ``rows`` sealed rows of ``tenant``."""
    with psycopg.connect(superuser, autocommit=True) as conn:
        month = _month(conn, back)
        name = f"audit_logs_{month:%Y_%m}"
        conn.execute("set role tenancy_audit_owner")
        if name not in _partitions(conn):
            # As migration 0019 makes them (DDL takes no parameters: literals).
            conn.execute(
                sql.SQL(
                    "create table tenancy.{} partition of tenancy.audit_logs"
                    " for values from ({}::date::timestamptz)"
                    " to (({}::date + interval '1 month')::timestamptz)"
                ).format(sql.Identifier(name), sql.Literal(month), sql.Literal(month))
            )
        conn.execute(
            "insert into tenancy.audit_logs (tenant_id, txid, action, entity_type, logged_at)"
            " select %s, 1 + g %% (%s - 1), 'test.old', 'test', %s::date + interval '1 hour'"
            " from generate_series(1, %s) as g",
            (tenant, SEALED_BELOW, month, rows),
        )
        conn.execute("update tenancy.audit_seal_state set frontier = %s", (SEALED_BELOW,))
    return name


@pytest.fixture(scope="module")
def trail(roles: Roles, pgtenancy_make_database: Callable[[], str]) -> Trail:
    db = pgtenancy_make_database()
    admin = testing.as_login(db, conninfo_to_dict(roles.admin)["user"])
    service = testing.as_login(db, conninfo_to_dict(roles.service)["user"])
    ids = []
    with psycopg.connect(admin, autocommit=True) as conn:
        for slug in ("keep-a", "keep-b"):
            row = conn.execute(
                "select tenancy.create_tenant(%s, %s, %s)", (slug, slug.title(), f"auth0|{slug}")
            ).fetchone()
            assert row is not None
            ids.append(row[0])
    return Trail(superuser=db, admin=admin, service=service, a=ids[0], b=ids[1])


def test_a_hold_committed_while_a_drop_waits_is_seen(trail: Trail) -> None:
    """The drop waits for an open hold's transaction, then refuses (TN017) and drops nothing."""
    name = _old_partition(trail.superuser, 2, trail.a, 10)
    with psycopg.connect(trail.superuser, autocommit=True) as conn:
        previous = _month(conn, 1)
    outcome: dict[str, Any] = {}
    with psycopg.connect(trail.admin) as holder:
        holder.execute("select tenancy.set_legal_hold(%s, true, 'matter 12')", (trail.a,))
        with psycopg.connect(trail.admin, autocommit=True) as dropper:

            def drop() -> None:
                try:
                    dropper.execute("select * from tenancy.drop_audit_before(%s)", (previous,))
                    outcome["dropped"] = True
                except psycopg.Error as exc:
                    outcome["sqlstate"] = exc.sqlstate
                    outcome["message"] = str(exc)

            thread = threading.Thread(target=drop)
            thread.start()
            wait_until_blocked(trail.superuser, dropper.info.backend_pid)
            holder.commit()
            thread.join(30)
    assert outcome.get("sqlstate") == "TN017", outcome
    assert str(trail.a) in outcome["message"]
    with psycopg.connect(trail.superuser, autocommit=True) as conn:
        assert name in _partitions(conn)
    with psycopg.connect(trail.admin, autocommit=True) as conn:
        conn.execute("select tenancy.set_legal_hold(%s, false)", (trail.a,))


def test_repeatable_read_is_refused(trail: Trail) -> None:
    """Under REPEATABLE READ a hold committed after the snapshot would go unseen: 55000."""
    with psycopg.connect(trail.superuser, autocommit=True) as conn:
        previous = _month(conn, 1)
    with psycopg.connect(trail.admin) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="READ COMMITTED"):
            conn.execute("select * from tenancy.drop_audit_before(%s)", (previous,))
    with psycopg.connect(trail.admin, autocommit=True) as conn:
        conn.execute("select * from tenancy.drop_audit_before(%s)", (_month(conn, 3),))


def test_drop_while_writers_insert(trail: Trail) -> None:
    """Twelve old partitions dropped and three made ahead while four writers insert: no error,
    every committed row audited."""
    old = {_old_partition(trail.superuser, back, trail.b, 5000) for back in range(2, 14)}
    with psycopg.connect(trail.superuser, autocommit=True) as conn:
        previous = _month(conn, 1)
        ahead = {f"audit_logs_{_month(conn, -k):%Y_%m}" for k in range(7)} - _partitions(conn)
        counts = {
            name: conn.execute(f"select count(*) from tenancy.{name}").fetchone()[0]  # type: ignore[index]
            for name in old
        }
    run = f"w{uuid.uuid4().hex[:6]}"
    stop = threading.Event()
    committed = [0] * 4
    slowest = [0.0] * 4
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        tenant = trail.a if i % 2 else trail.b
        try:
            with psycopg.connect(trail.service) as conn:
                while not stop.is_set():
                    began = time.monotonic()
                    with tenant_transaction(conn, tenant):
                        conn.execute(
                            "insert into app.projects (name) values (%s)",
                            (f"{run}-{i}-{committed[i]}",),
                        )
                    committed[i] += 1
                    slowest[i] = max(slowest[i], time.monotonic() - began)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    with psycopg.connect(trail.admin, autocommit=True) as conn:
        started = time.monotonic()
        dropped = conn.execute(
            "select partition_name, row_count from tenancy.drop_audit_before(%s)", (previous,)
        ).fetchall()
        drop_seconds = time.monotonic() - started
        made = conn.execute("select tenancy.ensure_audit_partitions(6)").fetchone()
    before_stop = sum(committed)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)

    assert not errors, errors
    assert sum(committed) > before_stop > 0, "the writers kept writing after the drop"
    assert dict(dropped) == counts, "every old partition dropped, with its row count"
    assert made == (len(ahead),), "ensure_audit_partitions(6) made the months missing"
    with psycopg.connect(trail.superuser, autocommit=True) as conn:
        left = _partitions(conn)
        assert not (left & old)
        assert ahead <= left
        assert "audit_logs_default" in left
        for i in range(4):
            audited = conn.execute(
                "select count(*) from tenancy.audit_logs"
                " where entity_type = '\"app\".\"projects\"' and action = 'INSERT'"
                " and new_data ->> 'name' like %s",
                (f"{run}-{i}-%",),
            ).fetchone()
            assert audited == (committed[i],), f"writer {i}: every committed row has its audit row"
        retention = conn.execute(
            "select before_month, row_count, cardinality(partitions)"
            " from tenancy.audit_retention order by id desc limit 1"
        ).fetchone()
        assert retention == (previous, sum(counts.values()), len(old))
    print(
        f"drop of {len(old)} partitions ({sum(counts.values())} rows): {drop_seconds:.2f} s;"
        f" {sum(committed)} writes, slowest {max(slowest):.2f} s; {len(ahead)} partitions made"
    )
