"""Tenant lifecycle benchmark: export, import and offboarding of a large tenant, and a subject's
export and erasure in it, each against a baseline measured in the same run.

Two fresh databases on the bench server (``pgtenancy_bench_lifecycle`` and
``pgtenancy_bench_lifecycle_copy``, rebuilt on every run, dropped at the end unless ``--keep``),
both migrated with the example application (``examples/app``: schema and generated policies).
The first gets a tenant ``big`` with ``--rows`` rows (default 1,000,000: a tenth in
``app.customers``, the rest in ``app.orders``, nine orders per customer, written as the
application would, so each row has its audit row) and a tenant ``small`` with a few rows of each.
Measured, in this order:

1. **Export** of ``big`` (``pgtenancy.tenant_export.export_tenant``: every tenant table, the
   audit trail as an archive, one snapshot, files and manifest with checksums) against the
   baseline: the same rows of ``app.customers`` and ``app.orders`` read with a bare ``COPY (select
   … where tenant_id = …) TO STDOUT`` each, in one REPEATABLE READ transaction, written to a file.
   Seconds, rows/s (the tenant's data rows; the archive counted apart), ratio.
2. **Import** of that export into the second database (``import_tenant``: checks, one
   transaction, the destination's audit trail records each row), rows/s.
3. **Offboarding** of ``big`` in the second database (``tenancy.offboard_tenant`` called step by
   step by a ``tenancy_admin`` login, each step its own transaction, as ``pgtenancy tenant
   offboard`` does): total seconds, rows/s, the longest step (the longest any row lock of the
   tenant is held) against the baseline: the same rows deleted by one ``DELETE`` per table in a
   single transaction in the first database (what a hand-written offboarding holds its locks for).
4. **A subject** of ``big`` (one customer and its nine orders among all the others; measured
   right after the export, in the first database):
   ``tenancy.export_subject`` and ``tenancy.erase_subject`` in a service context, milliseconds,
   against reading the same rows with plain ``SELECT``\\ s (the baseline).

Usage: python bench/lifecycle.py [--rows 1000000] [--batch-rows 10000] [--keep]
Uses ``$DATABASE_URL``'s server, else the throwaway cluster; not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import machine  # noqa: E402  (bench/run.py)

from pgtenancy import testing  # noqa: E402
from pgtenancy.migrate import migrate  # noqa: E402
from pgtenancy.tenant_export import export_tenant, import_tenant  # noqa: E402
from pgtenancy.testing import as_login, cluster  # noqa: E402

DB = "pgtenancy_bench_lifecycle"
COPY_DB = "pgtenancy_bench_lifecycle_copy"
ADMIN_LOGIN = "bench_lifecycle_admin"
APP = Path(__file__).resolve().parent.parent / "examples" / "app"


def say(text: str) -> None:
    print(text, flush=True)


def server_url() -> str:
    given = os.environ.get("DATABASE_URL")
    return given if given else cluster.database_url()


def fresh(base: str, name: str) -> str:
    url = testing.with_dbname(base, name)
    with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for path in [APP / "schema.sql", *sorted((APP / "policies").glob("*.sql"))]:
            conn.execute(path.read_text().encode())
        if not conn.execute("select 1 from pg_roles where rolname = %s", (ADMIN_LOGIN,)).fetchone():
            conn.execute(f"create role {ADMIN_LOGIN} login in role tenancy_admin")
    return url


def load(url: str, rows: int) -> tuple[uuid.UUID, int]:
    """Tenants big (``rows`` rows) and small; returns big's id and the subject customer's id."""
    customers = max(rows // 10, 1)
    orders = rows - customers
    with psycopg.connect(url, autocommit=True) as conn:
        big = conn.execute(
            "select tenancy.create_tenant('big', 'Big Corp', 'owner-big')"
        ).fetchone()[0]  # type: ignore[index]
        small = conn.execute(
            "select tenancy.create_tenant('small', 'Small Corp', 'owner-small')"
        ).fetchone()[0]  # type: ignore[index]
        started = time.perf_counter()
        with conn.transaction():
            conn.execute("select from tenancy.set_context(%s)", (big,))
            conn.execute(
                "insert into app.customers (email, full_name, phone) "
                "select 'c' || n || '@example.com', 'Customer ' || n, '+1 555 ' || n "
                "from generate_series(1, %s) as n",
                (customers,),
            )
            conn.execute(
                "insert into app.orders (customer_id, shipping_address, total) "
                "select c.id, n || ' Long Road, Town ' || c.id, n "
                "from app.customers as c cross join generate_series(1, %s) as n "
                "where c.id <= %s",
                (max(orders // customers, 1), customers),
            )
        with conn.transaction():
            conn.execute("select from tenancy.set_context(%s)", (small,))
            conn.execute(
                "insert into app.customers (email) select 's' || n || '@example.com' "
                "from generate_series(1, 10) as n"
            )
        total = conn.execute(
            "select (select count(*) from app.customers where tenant_id = %(t)s)"
            " + (select count(*) from app.orders where tenant_id = %(t)s)",
            {"t": big},
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("analyze")
        subject = conn.execute(
            "select min(id) + 7 from app.customers where tenant_id = %s", (big,)
        ).fetchone()[0]  # type: ignore[index]
    say(
        f"loaded tenant big: {total:,} rows ({customers:,} customers, {total - customers:,} "
        f"orders) and as many audit rows, in {time.perf_counter() - started:.0f} s"
    )
    return big, int(subject)


def baseline_export(url: str, tenant: uuid.UUID, out: Path) -> tuple[float, int]:
    started = time.perf_counter()
    rows = 0
    with psycopg.connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction(), out.open("wb") as f:
            for table in ("app.customers", "app.orders"):
                query = sql.SQL(
                    "copy (select * from {} where tenant_id = {} order by id) to stdout"
                ).format(sql.SQL(table), sql.Literal(str(tenant)))
                with conn.cursor().copy(query) as copy:
                    for data in copy:
                        f.write(data)
                        rows += bytes(data).count(b"\n")
    return time.perf_counter() - started, rows


def offboard(url: str, tenant: uuid.UUID, batch_rows: int) -> tuple[float, float, int, int]:
    """Offboard step by step as a tenancy_admin login: total s, longest step s, steps, rows."""
    steps = 0
    longest = 0.0
    deleted = 0
    started = time.perf_counter()
    with psycopg.connect(as_login(url, ADMIN_LOGIN), autocommit=True) as conn:
        while True:
            t0 = time.perf_counter()
            with conn.transaction():
                result: dict[str, Any] = conn.execute(
                    "select tenancy.offboard_tenant(%s, 'benchmark', %s)", (tenant, batch_rows)
                ).fetchone()[0]  # type: ignore[index]
            longest = max(longest, time.perf_counter() - t0)
            steps += 1
            deleted += int(result.get("deleted", 0) or 0)
            if result.get("done"):
                break
    return time.perf_counter() - started, longest, steps, deleted


def baseline_delete(url: str, tenant: uuid.UUID) -> tuple[float, int]:
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.transaction():
        n = conn.execute("delete from app.orders where tenant_id = %s", (tenant,)).rowcount
        n += conn.execute("delete from app.customers where tenant_id = %s", (tenant,)).rowcount
    return time.perf_counter() - started, n


# The subject's rows and its customer row's audit history, read with plain SELECTs.
BASELINE_SUBJECT = """
select
    (select jsonb_agg(c) from app.customers c where c.tenant_id = %(t)s and c.id = %(c)s),
    (select jsonb_agg(o) from app.orders o where o.tenant_id = %(t)s and o.customer_id = %(c)s),
    (select jsonb_agg(l) from tenancy.audit_logs l
     where l.tenant_id = %(t)s and l.entity_type = '"app"."customers"'
         and l.entity_id = jsonb_build_object('id', %(c)s)::text)
"""


def subject(url: str, tenant: uuid.UUID, customer: int) -> dict[str, float]:
    times: dict[str, float] = {}
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("select from tenancy.set_context(%s)", (tenant,))
        t0 = time.perf_counter()
        conn.execute(
            BASELINE_SUBJECT,
            {"t": tenant, "c": customer},
        ).fetchone()
        times["baseline select"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        exported = conn.execute("select tenancy.export_subject(%s)", (str(customer),)).fetchone()[0]  # type: ignore[index]
        times["export_subject"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        erased = conn.execute(
            "select tenancy.erase_subject(%s, 'benchmark')", (str(customer),)
        ).fetchone()[0]  # type: ignore[index]
        times["erase_subject"] = time.perf_counter() - t0
    say(
        f"subject {customer}: exported {sum(len(v) for v in exported['tables'].values())} rows and "
        f"{len(exported['audit'])} audit rows; erased {erased['tables']}, {erased['audit_rows']} "
        "audit rows redacted"
    )
    return times


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--rows", type=int, default=int(os.environ.get("BENCH_LIFECYCLE_ROWS", "1000000"))
    )
    ap.add_argument("--batch-rows", type=int, default=10000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    say(f"machine: {machine()}")
    base = server_url()
    url = fresh(base, DB)
    copy_url = fresh(base, COPY_DB)
    big, customer = load(url, args.rows)
    work = Path(tempfile.mkdtemp(prefix="pgtenancy-bench-lifecycle-"))
    try:
        b_seconds, b_rows = baseline_export(url, big, work / "baseline.copy")
        done = export_tenant(url, "big", work / "export")
        data_rows = sum(t.rows for t in done.tables if getattr(t, "role", "data") == "data")
        archive_rows = sum(t.rows for t in done.tables if getattr(t, "role", "data") != "data")
        size = sum(p.stat().st_size for p in (work / "export").iterdir())
        say(
            f"1. export: {done.seconds:.1f} s for {data_rows:,} data rows "
            f"({data_rows / done.seconds:,.0f} rows/s) and {archive_rows:,} archive rows, "
            f"{size / 1e6:.0f} MB; baseline bare COPY of the app rows: {b_seconds:.1f} s for "
            f"{b_rows:,} rows ({b_rows / b_seconds:,.0f} rows/s); "
            f"ratio {done.seconds / b_seconds:.2f}"
        )
        times = subject(url, big, customer)
        say(
            "4. subject: "
            + ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in times.items())
            + f"; ratios {times['export_subject'] / times['baseline select']:.1f} (export), "
            f"{times['erase_subject'] / times['baseline select']:.1f} (erase)"
        )
        imported = import_tenant(copy_url, work / "export")
        loaded = sum(n for _, n in imported.loaded)
        say(
            f"2. import: {imported.seconds:.1f} s for {loaded:,} rows "
            f"({loaded / imported.seconds:,.0f} rows/s), {imported.audited:,} audit rows written"
        )
        total, longest, steps, deleted = offboard(copy_url, big, args.batch_rows)
        d_seconds, d_rows = baseline_delete(url, big)
        say(
            f"3. offboard (batches of {args.batch_rows:,} rows): {total:.1f} s for "
            f"{deleted:,} rows "
            f"({deleted / total:,.0f} rows/s) in {steps} steps; longest step (longest lock held) "
            f"{longest * 1000:.0f} ms; baseline one-transaction DELETE: {d_seconds:.1f} s for "
            f"{d_rows:,} rows, every lock held {d_seconds * 1000:.0f} ms; lock ratio "
            f"{longest / d_seconds:.3f}, time ratio {total / d_seconds:.2f}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not args.keep:
        with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
            for name in (DB, COPY_DB):
                conn.execute(
                    sql.SQL("drop database if exists {} (force)").format(sql.Identifier(name))
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
