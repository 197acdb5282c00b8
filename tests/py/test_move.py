"""Tenant moves between two real PostgreSQL clusters, with a writer running throughout.

The writer is a client of the directory (home): it asks where the tenant lives, writes there,
and on TN021 (fenced) asks again. The move must lose no write it saw committed, accept none on
the old placement once fenced, and verify every table on both sides.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from placement_support import Pair

from pgtenancy import move


def tenant_with_rows(pair: Pair, slug: str, documents: int) -> uuid.UUID:
    """A tenant on home with a project, `documents` documents, customers, orders and a ledger."""
    with psycopg.connect(pair.home, autocommit=True) as conn:
        conn.execute("set role tenancy_admin")
        tenant_id = conn.execute(
            "select tenancy.create_tenant(%s, %s, %s, p_key => %s)",
            (
                slug,
                slug.title(),
                f"auth0|{slug}",
                str(uuid.uuid5(uuid.NAMESPACE_DNS, slug).int % 10**9),
            ),
        ).fetchone()[0]  # type: ignore[index]
    with psycopg.connect(pair.service_home, autocommit=True) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s)", (tenant_id,))
        conn.execute("insert into app.projects (name) values ('p1'), ('p2')")
        conn.execute(
            "insert into app.documents (project_id, title, body)"
            " select (select min(id) from app.projects), 'doc ' || n, repeat('x', 40)"
            " from generate_series(1, %s) as n",
            (documents,),
        )
        conn.execute(
            "insert into app.customers (email, full_name)"
            " select 'c' || n || '@example.com', 'Customer ' || n"
            " from generate_series(1, 20) as n"
        )
        conn.execute(
            "insert into app.orders (customer_id, total) select c.id, 10 from app.customers as c"
        )
        conn.execute("insert into app.ledger (amount) values (1.50), (2.25)")
    return tenant_id


def other_tenant(pair: Pair, slug: str) -> uuid.UUID:
    """A tenant that stays on home: its rows must not travel."""
    return tenant_with_rows(pair, slug, 5)


def options(pair: Pair, **kw: Any) -> move.MoveOptions:
    return move.MoveOptions(
        source_url=pair.home, destination_url=pair.dedicated, destination="dedicated", **kw
    )


@dataclass
class Writer:
    """Inserts projects for a tenant wherever the directory says it lives, until stopped."""

    pair: Pair
    tenant_id: uuid.UUID
    committed: list[tuple[str, str, float]] = field(default_factory=list)  # name, placement, at
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def url(self, placement: str) -> str:
        return self.pair.service_home if placement == "home" else self.pair.service_dedicated

    def run(self) -> None:
        n = 0
        directory = psycopg.connect(self.pair.service_home, autocommit=True)
        conns: dict[str, psycopg.Connection[Any]] = {}
        try:
            while not self.stop.is_set():
                row = directory.execute(
                    "select placement from tenancy.tenant_placement(%s)", (self.tenant_id,)
                ).fetchone()
                assert row is not None
                placement = str(row[0])
                conn = conns.get(placement)
                if conn is None:
                    conn = conns[placement] = psycopg.connect(self.url(placement))
                n += 1
                name = f"w-{n}"
                try:
                    with conn.transaction():
                        conn.execute("select tenancy.set_context(%s)", (self.tenant_id,))
                        conn.execute("insert into app.projects (name) values (%s)", (name,))
                    self.committed.append((name, placement, time.time()))
                except psycopg.Error as exc:
                    if exc.sqlstate == "TN021":
                        self.refused += 1
                        time.sleep(0.005)
                    elif exc.sqlstate in ("40001", "40P01"):
                        time.sleep(0.005)
                    else:
                        self.errors.append(f"{exc.sqlstate}: {exc}")
                        time.sleep(0.05)
                time.sleep(0.002)
        finally:
            directory.close()
            for c in conns.values():
                c.close()


def names_on(url: str, tenant_id: uuid.UUID) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select name from app.projects where tenant_id = %s and name like 'w-%%'", (tenant_id,)
        ).fetchall()
    return {str(r[0]) for r in rows}


def test_a_tenant_moves_online_with_no_write_lost(pair: Pair) -> None:
    tenant_id = tenant_with_rows(pair, "moving", 100_000)
    stay = other_tenant(pair, "staying")
    writer = Writer(pair, tenant_id)
    thread = threading.Thread(target=writer.run)
    thread.start()
    time.sleep(0.3)
    lines: list[str] = []
    try:
        report = move.move(str(tenant_id), options(pair), say=lines.append)
        time.sleep(0.5)  # writes on the new placement
    finally:
        writer.stop.set()
        thread.join(30)
    print(
        f"\nmove of {report.rows:,} rows: {report.as_json()['times_s']};"
        f" {writer.refused} writes refused by the fence"
    )
    assert not writer.errors, writer.errors
    assert report.state == "flipped"
    # The fence does not include the copy: the copy ran before it. (Its duration is measured by
    # bench/move.py, not asserted here, where the whole suite shares the cores.)
    assert report.fence_ms is not None
    assert report.times["fence"] < report.times["copy"], str(report.as_json()["times_s"])
    assert report.rows >= 100_000
    before = [c for c in writer.committed if c[1] == "home"]
    after = [c for c in writer.committed if c[1] == "dedicated"]
    assert before and after, (len(before), len(after))
    # No committed write lost: every one is on the destination.
    assert {c[0] for c in writer.committed} <= names_on(pair.dedicated, tenant_id)
    with psycopg.connect(pair.home) as conn:
        # The move records the fence's time once it has committed (tenants.fenced_at is read
        # inside the fence's own transaction: a transaction begun before that commit may
        # still set an unfenced context, and the move waits for it).
        fenced_at, placement, epoch = conn.execute(
            "select m.fenced_at, t.placement, t.placement_epoch from tenancy.tenants as t"
            " inner join tenancy.tenant_moves as m on m.tenant_id = t.id where t.id = %s",
            (tenant_id,),
        ).fetchone()  # type: ignore[misc]
        assert placement == "dedicated" and epoch == 1
        # No write accepted by the old placement after the fence.
        late = conn.execute(
            "select count(*) from app.projects where tenant_id = %s and created_at >= %s",
            (tenant_id, fenced_at),
        ).fetchone()[0]  # type: ignore[index]
        assert late == 0
        # Every write the home placement accepted was begun before the fence, and travelled.
        assert names_on(pair.home, tenant_id) == {c[0] for c in before}
        # Nothing of the other tenant travelled, and the source keeps its rows for now.
        assert conn.execute(
            "select state, report ->> 'rows' from tenancy.tenant_moves where tenant_id = %s",
            (tenant_id,),
        ).fetchone() == ("flipped", str(report.rows))
        audit = conn.execute(
            "select count(*) from tenancy.audit_logs"
            " where tenant_id = %s and action = 'tenant.moved'",
            (tenant_id,),
        ).fetchone()[0]  # type: ignore[index]
        assert audit == 1
    with psycopg.connect(pair.dedicated) as conn:
        assert (
            conn.execute(
                "select count(*) from app.documents where tenant_id <> %s", (tenant_id,)
            ).fetchone()[0]
            == 0
        )  # type: ignore[index]
        assert (
            conn.execute("select count(*) from tenancy.tenants where id = %s", (stay,)).fetchone()[
                0
            ]
            == 0
        )  # type: ignore[index]
        fenced, epoch = conn.execute(
            "select fenced_at is not null, placement_epoch from tenancy.tenants where id = %s",
            (tenant_id,),
        ).fetchone()  # type: ignore[misc]
        assert not fenced and epoch == 1
        # Replication objects are gone on both sides.
        assert conn.execute("select count(*) from pg_subscription").fetchone()[0] == 0  # type: ignore[index]
    with psycopg.connect(pair.home) as conn:
        assert conn.execute("select count(*) from pg_publication").fetchone()[0] == 0  # type: ignore[index]
        assert conn.execute("select count(*) from pg_replication_slots").fetchone()[0] == 0  # type: ignore[index]
    # Ids drawn on the destination after the flip continue above the copied ones.
    with psycopg.connect(pair.service_dedicated) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s)", (tenant_id,))
        new_id = conn.execute(
            "insert into app.documents (project_id, title)"
            " select min(id), 'after' from app.projects returning id"
        ).fetchone()[0]  # type: ignore[index]
        top = conn.execute("select max(id) from app.documents where title <> 'after'").fetchone()[0]  # type: ignore[index]
        assert new_id > top
    # The source's rows go once released; the audit trail stays.
    released = move.release(str(tenant_id), pair.home, force=True, batch_rows=50_000)
    assert released >= 100_000
    with psycopg.connect(pair.home) as conn:
        assert (
            conn.execute(
                "select count(*) from app.documents where tenant_id = %s", (tenant_id,)
            ).fetchone()[0]
            == 0
        )  # type: ignore[index]
        assert (
            conn.execute(
                "select count(*) from app.documents where tenant_id = %s", (stay,)
            ).fetchone()[0]
            == 5
        )  # type: ignore[index]
        assert (
            conn.execute(
                "select state from tenancy.tenant_moves where tenant_id = %s", (tenant_id,)
            ).fetchone()[0]
            == "done"
        )  # type: ignore[index]


def test_the_fence_refuses_writes_from_every_client_while_reads_continue(pair: Pair) -> None:
    tenant_id = tenant_with_rows(pair, "fenced", 3)
    other = other_tenant(pair, "unfenced")
    with psycopg.connect(pair.admin_home, autocommit=True) as admin:
        admin.execute("select tenancy.fence_tenant(%s, 'maintenance')", (tenant_id,))
    for url in (
        pair.service_home,
        pair.home,
    ):  # an application login and a superuser with a context
        with psycopg.connect(url) as conn:
            conn.execute("select tenancy.set_context(%s)", (tenant_id,))
            assert (
                conn.execute(
                    "select count(*) from app.documents"
                    " where tenant_id = tenancy.current_tenant_id()"
                ).fetchone()[0]
                == 3
            )  # type: ignore[index]
            with pytest.raises(psycopg.Error) as refused:
                conn.execute("insert into app.projects (name) values ('late')")
            assert refused.value.sqlstate == "TN021"
            assert "maintenance" in str(refused.value)
    # pgtenancy's own functions write tenant tables as their owner: fenced too.
    with psycopg.connect(pair.service_home) as conn:
        conn.execute("select tenancy.set_context(%s)", (tenant_id,))
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("select tenancy.track_event('x.y', 'u1', '{}')")
        assert refused.value.sqlstate == "TN021"
    # Forging the fence away is refused: only tenancy_owner may setval.
    with psycopg.connect(pair.service_home) as conn:
        conn.execute("select tenancy.set_context(%s)", (tenant_id,))
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("select setval('tenancy.context_fence', 0, true)")
        assert refused.value.sqlstate == "42501"
    # The rightful writes: another tenant, and this one once unfenced.
    with psycopg.connect(pair.service_home) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s)", (other,))
        conn.execute("insert into app.projects (name) values ('fine')")
    with psycopg.connect(pair.admin_home, autocommit=True) as admin:
        assert (
            admin.execute("select tenancy.unfence_tenant(%s)", (tenant_id,)).fetchone()[0] is True
        )  # type: ignore[index]
    with psycopg.connect(pair.service_home) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s)", (tenant_id,))
        conn.execute("insert into app.projects (name) values ('after')")


@pytest.mark.parametrize("isolation", ["read committed", "repeatable read", "serializable"])
def test_the_fence_waits_for_transactions_with_a_context(pair: Pair, isolation: str) -> None:
    tenant_id = tenant_with_rows(pair, "waited", 1)
    # A transaction that set its context before the fence may write until it ends, and the fence
    # is complete only then.
    holder = psycopg.connect(pair.service_home)
    holder.execute(f"set transaction isolation level {isolation}")
    holder.execute("select tenancy.set_context(%s)", (tenant_id,))
    fenced: list[float] = []

    def fence() -> None:
        with psycopg.connect(pair.home, autocommit=True) as src:
            move.fence(src, tenant_id, "wait test", options(pair, fence_wait=10.0))
            fenced.append(time.monotonic())

    t = threading.Thread(target=fence)
    t.start()
    time.sleep(0.5)
    assert not fenced  # still waiting
    holder.execute("insert into app.projects (name) values ('before the fence')")
    released = time.monotonic()
    holder.commit()
    t.join(10)
    assert fenced and fenced[0] >= released
    # A transaction whose snapshot predates the fence, setting its context after it.
    with psycopg.connect(pair.admin_home, autocommit=True) as admin:
        admin.execute("select tenancy.unfence_tenant(%s)", (tenant_id,))
    late = psycopg.connect(pair.service_home)
    late.execute(f"set transaction isolation level {isolation}")
    late.execute("select count(*) from tenancy.tenant_settings")  # snapshot taken
    with psycopg.connect(pair.admin_home, autocommit=True) as admin:
        admin.execute("select tenancy.fence_tenant(%s, 'snapshot test')", (tenant_id,))
    try:
        late.execute("select tenancy.set_context(%s)", (tenant_id,))
        late.execute("insert into app.projects (name) values ('after the fence')")
        raise AssertionError("a write after the fence was accepted")
    except psycopg.Error as exc:
        assert exc.sqlstate in ("TN021", "40001"), exc
    finally:
        late.close()
        holder.close()


def test_a_fence_that_cannot_complete_is_lifted(pair: Pair) -> None:
    tenant_id = tenant_with_rows(pair, "lifted", 1)
    holder = psycopg.connect(pair.service_home)
    holder.execute("select tenancy.set_context(%s)", (tenant_id,))
    lines: list[str] = []
    with psycopg.connect(pair.home, autocommit=True) as src:
        with pytest.raises(move.MoveError):
            move.fence(
                src,
                tenant_id,
                "never",
                options(pair, fence_wait=0.3, fence_attempts=2, copy_timeout=0.1),
                lines.append,
            )
        assert (
            src.execute(
                "select fenced_at from tenancy.tenants where id = %s", (tenant_id,)
            ).fetchone()[0]
            is None
        )  # type: ignore[index]
    assert len(lines) == 2 and "still running" in lines[0]
    holder.execute("insert into app.projects (name) values ('the holder writes on')")
    holder.commit()
    holder.close()


def test_a_killed_move_resumes_and_an_unflipped_move_aborts(pair: Pair) -> None:
    tenant_id = tenant_with_rows(pair, "resumed", 20_000)
    cmd = [
        sys.executable,
        "-m",
        "pgtenancy",
        "tenant",
        "move",
        str(tenant_id),
        "--to",
        "dedicated",
        "--to-url",
        pair.dedicated,
        "--database-url",
        pair.home,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy()
    )
    deadline = time.monotonic() + 60
    with psycopg.connect(pair.dedicated, autocommit=True) as dst:
        while not dst.execute("select count(*) from pg_subscription").fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with psycopg.connect(pair.home) as conn:
        assert (
            conn.execute(
                "select state from tenancy.tenant_moves where tenant_id = %s", (tenant_id,)
            ).fetchone()[0]
            == "copying"
        )  # type: ignore[index]
    # Abort: the destination's copy goes, the source writes again.
    move.abort(str(tenant_id), options(pair))
    with psycopg.connect(pair.dedicated) as conn:
        assert (
            conn.execute(
                "select count(*) from tenancy.tenants where id = %s", (tenant_id,)
            ).fetchone()[0]
            == 0
        )  # type: ignore[index]
        assert conn.execute("select count(*) from app.documents").fetchone()[0] == 0  # type: ignore[index]
        assert conn.execute("select count(*) from pg_subscription").fetchone()[0] == 0  # type: ignore[index]
    with psycopg.connect(pair.service_home) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s)", (tenant_id,))
        conn.execute("insert into app.projects (name) values ('still home')")
    # Killed again mid-way, the same command resumes and finishes the move.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with psycopg.connect(pair.dedicated, autocommit=True) as dst:
        while not dst.execute("select count(*) from pg_subscription").fetchone()[0]:  # type: ignore[index]
            assert proc.poll() is None
            time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    with psycopg.connect(pair.home) as conn:
        assert (
            conn.execute(
                "select placement from tenancy.tenants where id = %s", (tenant_id,)
            ).fetchone()[0]
            == "dedicated"
        )  # type: ignore[index]
    with psycopg.connect(pair.dedicated) as conn:
        assert (
            conn.execute(
                "select count(*) from app.documents where tenant_id = %s", (tenant_id,)
            ).fetchone()[0]
            == 20_000
        )  # type: ignore[index]


def test_pre_flight_refuses_with_every_reason(pair: Pair) -> None:
    tenant_id = tenant_with_rows(pair, "refused", 1)
    with psycopg.connect(pair.home, autocommit=True) as conn:
        conn.execute("set role tenancy_admin")
        conn.execute("select tenancy.configure_regions(array['eu', 'us'])")
        conn.execute("select tenancy.set_tenant_region(%s, 'eu')", (tenant_id,))
    with psycopg.connect(pair.dedicated, autocommit=True) as conn:
        conn.execute("set role tenancy_admin")
        conn.execute("select tenancy.configure_regions(array['eu', 'us'])")
        conn.execute(
            "select tenancy.configure_placement('dedicated', 'dedicated', 'us', p_here => true)"
        )
    with pytest.raises(move.MoveError) as refused:
        move.move(str(tenant_id), options(pair))
    assert "data residency" in str(refused.value)
    with pytest.raises(move.MoveError) as refused:
        move.move(str(tenant_id), move.MoveOptions(pair.home, pair.dedicated, "elsewhere"))
    assert "unknown here" in str(refused.value)
    with psycopg.connect(pair.home) as conn:
        assert conn.execute("select count(*) from tenancy.tenant_moves").fetchone()[0] == 0  # type: ignore[index]
    # The same tenant moves once the destination is of its region.
    with psycopg.connect(pair.dedicated, autocommit=True) as conn:
        conn.execute("set role tenancy_admin")
        conn.execute(
            "select tenancy.configure_placement('dedicated', 'dedicated', 'eu', p_here => true)"
        )
    with psycopg.connect(pair.home, autocommit=True) as conn:
        conn.execute("set role tenancy_admin")
        conn.execute("select tenancy.configure_placement('dedicated', 'dedicated', 'eu')")
    report = move.move(str(tenant_id), options(pair, keep=timedelta(0)))
    assert report.state == "flipped"
