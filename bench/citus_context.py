"""The signed context of the Citus flavour against the single-node context, on one PostgreSQL.

A fresh test database (dropped at the end) with the signed context form on
(tenancy.configure_context_mac) and two copies of one table of 100,000 rows (two tenants,
50,000 each; primary key (tenant_id, id)), whose SELECT policies differ only in the context
check:

* ``items_postgres``: the postgres flavour, ``tenant_id = (select tenancy.context_tenant_id(
  array[...]))``, evaluated once per statement (an initPlan);
* ``items_citus``: the Citus flavour, ``tenant_id = tenancy.context_tenant_id_mac(array[...])``,
  bare: once per index scan when the comparison is an index condition, once per row of a
  sequential scan.

Measured as ``tenancy_app`` in a service context of one tenant (``tenancy.set_context``), rounds
alternating between the two tables, medians of the rounds:

1. per statement: a transaction of N prepared point lookups by primary key (index scan);
2. per row: ``select count(*)`` over the table with index scans off and no parallel workers (a
   sequential scan of 100,000 rows, the check on each), and the same with PostgreSQL's defaults
   (the planner may choose the tenant column's index);
3. per context: ``tenancy.set_context`` with the form off and on (the signature and its SET LOCAL).

Prints each time and the ratio citus / postgres. Usage: python bench/citus_context.py
[--rounds 7] [--lookups 2000] [--contexts 2000]. Uses ``$DATABASE_URL``'s server, else the
throwaway cluster; not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg

from pgtenancy import testing
from pgtenancy.testing import cluster

ROLES = "array['owner', 'admin', 'member', 'viewer']"
POLICIES = {
    "postgres": f"tenant_id operator(pg_catalog.=) (select tenancy.context_tenant_id({ROLES}))",
    "citus": f"tenant_id operator(pg_catalog.=) tenancy.context_tenant_id_mac({ROLES})",
}
ROWS = 100_000
#: A sequential scan in one process: the check runs once per row, in the backend.
SEQSCAN = (
    "enable_indexscan = off",
    "enable_bitmapscan = off",
    "enable_indexonlyscan = off",
    "max_parallel_workers_per_gather = 0",
)


def setup(conn: psycopg.Connection[Any]) -> Any:
    conn.execute("create schema bench_citus")
    conn.execute("grant usage on schema bench_citus to tenancy_app")
    conn.execute("set role tenancy_admin")
    a = conn.execute("select tenancy.create_tenant('bench-citus-a', 'A')").fetchone()[0]  # type: ignore[index]
    b = conn.execute("select tenancy.create_tenant('bench-citus-b', 'B')").fetchone()[0]  # type: ignore[index]
    conn.execute("select tenancy.configure_context_mac(true, 3600)")
    conn.execute("reset role")
    for flavour, check in POLICIES.items():
        table = f"bench_citus.items_{flavour}"
        conn.execute(
            f"create table {table} (tenant_id uuid not null, id bigint not null, "
            "payload text not null, primary key (tenant_id, id))"
        )
        conn.execute(
            f"insert into {table} select case when mod(i, 2) = 0 then %s::uuid else %s::uuid end, "
            "i, md5(i::text) from generate_series(1, %s) as i",
            (a, b, ROWS),
        )
        conn.execute(f"alter table {table} enable row level security")
        conn.execute(f"alter table {table} force row level security")
        conn.execute(f"create policy readers on {table} for select to public using ({check})")
        conn.execute(f"grant select on {table} to tenancy_app")
        conn.execute(f"vacuum analyze {table}")
    return a


def in_context(conn: psycopg.Connection[Any], tenant: Any) -> None:
    conn.execute("set local role tenancy_service")
    conn.execute("select tenancy.set_context(%s)", (tenant,))
    conn.execute("set local role tenancy_app")


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--lookups", type=int, default=2000)
    ap.add_argument("--contexts", type=int, default=2000)
    args = ap.parse_args()
    base = os.environ.get("DATABASE_URL") or cluster.database_url()
    url = testing.create_test_database(base)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            tenant = setup(conn)
        results: dict[str, dict[str, list[float]]] = {
            k: {"postgres": [], "citus": []} for k in ("lookup", "seqscan", "default")
        }
        contexts: dict[str, list[float]] = {"off": [], "on": []}
        with psycopg.connect(url) as conn:
            ids = [2 * (i % (ROWS // 2)) + 2 for i in range(args.lookups)]
            for _ in range(args.rounds):
                for flavour in ("postgres", "citus"):
                    table = f"bench_citus.items_{flavour}"

                    def lookups(table: str = table) -> None:
                        with conn.transaction():
                            in_context(conn, tenant)
                            for i in ids:
                                conn.execute(
                                    f"select payload from {table} where tenant_id = %s and id = %s",
                                    (tenant, i),
                                    prepare=True,
                                )

                    results["lookup"][flavour].append(timed(lookups) / args.lookups)
                    for kind, settings in (
                        ("seqscan", SEQSCAN),
                        ("default", ()),
                    ):
                        with conn.transaction():
                            in_context(conn, tenant)
                            for setting in settings:
                                conn.execute(f"set local {setting}")
                            start = time.perf_counter()
                            # Never prepared (psycopg prepares a query from its fifth run): a
                            # cached plan would keep the scan chosen under other settings.
                            count = conn.execute(
                                f"select count(*) from {table}", prepare=False
                            ).fetchone()
                            results[kind][flavour].append(time.perf_counter() - start)
                            assert count == (ROWS // 2,), count
                for state in ("off", "on"):
                    with conn.transaction():
                        conn.execute("set local role tenancy_admin")
                        conn.execute(
                            "select tenancy.configure_context_mac(%s, 3600)", (state == "on",)
                        )

                    def establish() -> None:
                        for _ in range(args.contexts):
                            with conn.transaction():
                                conn.execute("set local role tenancy_service")
                                conn.execute(
                                    "select tenancy.set_context(%s)", (tenant,), prepare=True
                                )

                    contexts[state].append(timed(establish) / args.contexts)
                with conn.transaction():
                    conn.execute("set local role tenancy_admin")
                    conn.execute("select tenancy.configure_context_mac(true, 3600)")
    finally:
        testing.drop_test_database(url)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    print(f"signed context (citus flavour) vs single-node context (postgres flavour), "
          f"{args.rounds} rounds, medians")  # fmt: skip
    print(f"{'measure':58} {'postgres':>12} {'citus':>12} {'ratio':>7}")
    lookup_pg, lookup_ci = med(results["lookup"]["postgres"]), med(results["lookup"]["citus"])
    print(
        f"{'point lookup by primary key (per statement, us)':58} {lookup_pg * 1e6:12.1f} "
        f"{lookup_ci * 1e6:12.1f} {lookup_ci / lookup_pg:7.2f}"
    )
    for kind, label in (
        ("seqscan", f"count(*), sequential scan of {ROWS:,} rows (ms)"),
        ("default", f"count(*), planner's choice, {ROWS:,} rows (ms)"),
    ):
        pg, ci = med(results[kind]["postgres"]), med(results[kind]["citus"])
        print(f"{label:58} {pg * 1e3:12.1f} {ci * 1e3:12.1f} {ci / pg:7.2f}")
    pg, ci = med(results["seqscan"]["postgres"]), med(results["seqscan"]["citus"])
    print(f"{'  extra cost per row scanned (us)':58} {'':12} {(ci - pg) / ROWS * 1e6:12.2f}")
    off, on = med(contexts["off"]), med(contexts["on"])
    print(
        f"{'tenancy.set_context, form off / on (per transaction, us)':58} {off * 1e6:12.1f} "
        f"{on * 1e6:12.1f} {on / off:7.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
