"""Tenant move benchmark: move time and write-fence duration for a tenant of N rows, each
against a baseline measured in the same run.

Two PostgreSQL clusters of the benchmark's own (``wal_level = logical``), each with a database
migrated with pgtenancy's test template (the fixture application). The tenant ``big`` gets
``--rows`` documents (written as the application would, in a service context) plus a few
projects, customers and orders; ``small`` stays behind. A writer inserts a project for ``big``
every few milliseconds throughout, wherever the directory says ``big`` lives, retrying on TN021.

Measured for each size in ``--sizes`` (default 100000 and 1000000):

1. **Move** (``pgtenancy.move.move``: publication with row filters, subscription with the initial
   copy, catch-up, fence, drain, checksums of every table on both sides, flip): total seconds,
   the initial copy, and the **fence**: from the fence to the flip, while the tenant's writes are
   refused. Against the baseline: the downtime of an offline move of the same rows: ``COPY (select
   … where tenant_id = …) TO STDOUT`` of every table on the source straight into ``COPY … FROM
   STDIN`` on the destination (what a move by dump and load keeps the tenant read-only for).
2. The writer's view: writes refused by the fence, and the longest a write waited (from its
   first refusal to its commit on the new placement).

Usage: python bench/move.py [--sizes 100000,1000000]
Not part of ``make test``; prints the machine and a table of ratios.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import machine  # noqa: E402  (bench/run.py)

from pgtenancy import move, testing  # noqa: E402
from pgtenancy.testing import cluster  # noqa: E402

LOGICAL = (
    "wal_level=logical",
    "max_replication_slots=40",
    "max_wal_senders=40",
    "max_worker_processes=24",
    "max_logical_replication_workers=16",
    "max_sync_workers_per_subscription=4",
)


@dataclass
class Writer:
    service: dict[str, str]
    directory: str
    tenant_id: uuid.UUID
    committed: dict[str, int] = field(default_factory=lambda: {"home": 0, "dedicated": 0})
    refused: int = 0
    longest_wait: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        directory = psycopg.connect(self.directory, autocommit=True)
        conns: dict[str, psycopg.Connection[Any]] = {}
        first_refusal: float | None = None
        n = 0
        while not self.stop.is_set():
            placement = str(
                directory.execute(
                    "select placement from tenancy.tenant_placement(%s)", (self.tenant_id,)
                ).fetchone()[0]  # type: ignore[index]
            )
            conn = conns.get(placement) or conns.setdefault(
                placement, psycopg.connect(self.service[placement])
            )
            n += 1
            try:
                with conn.transaction():
                    conn.execute("select tenancy.set_context(%s)", (self.tenant_id,))
                    conn.execute("insert into app.projects (name) values (%s)", (f"w-{n}",))
                self.committed[placement] += 1
                if first_refusal is not None:
                    self.longest_wait = max(self.longest_wait, time.monotonic() - first_refusal)
                    first_refusal = None
            except psycopg.Error as exc:
                if exc.sqlstate != "TN021":
                    raise
                self.refused += 1
                first_refusal = first_refusal or time.monotonic()
            time.sleep(0.005)
        directory.close()
        for c in conns.values():
            c.close()


def logins(url: str) -> str:
    name = "bench_move_service"
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone():
            conn.execute(f"create role {name} login in role tenancy_service")
    return testing.as_login(url, name)


def fill(service: str, admin_url: str, slug: str, rows: int) -> uuid.UUID:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("set role tenancy_admin")
        tenant_id = conn.execute(
            "select tenancy.create_tenant(%s, %s, %s)", (slug, slug.title(), f"auth0|{slug}")
        ).fetchone()[0]  # type: ignore[index]
    with psycopg.connect(service) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s)", (tenant_id,))
        conn.execute("insert into app.projects (name) values ('p1'), ('p2')")
        conn.execute(
            "insert into app.documents (project_id, title, body)"
            " select (select min(id) from app.projects), 'document ' || n, repeat('x', 60)"
            " from generate_series(1, %s) as n",
            (rows,),
        )
        conn.execute(
            "insert into app.customers (email, full_name)"
            " select 'c' || n || '@example.com', 'Customer ' || n"
            " from generate_series(1, 100) as n"
        )
        conn.execute("insert into app.orders (customer_id, total) select id, 10 from app.customers")
    return uuid.UUID(str(tenant_id))


def offline_copy(src_url: str, dst_url: str, tenant_id: uuid.UUID) -> tuple[float, int]:
    """The baseline: every move table's rows of the tenant, COPY out of the source straight into
    COPY into a scratch copy of each table on the destination."""
    rows = 0
    started = time.monotonic()
    with psycopg.connect(src_url) as src, psycopg.connect(dst_url) as dst:
        tables = src.execute(
            "select table_name, predicate, value from tenancy.move_tables(%s)", (tenant_id,)
        ).fetchall()
        for name, predicate, value in tables:
            scratch = "bench_" + str(name).replace(".", "_").replace('"', "")
            dst.execute(
                sql.SQL("create temp table {} (like {})").format(
                    sql.Identifier(scratch), sql.SQL(name)
                )
            )
            where = str(predicate).replace("$1", sql.Literal(str(value)).as_string(src))
            with (
                src.cursor().copy(
                    sql.SQL("copy (select * from {} as t where {}) to stdout").format(
                        sql.SQL(name), sql.SQL(where)
                    )
                ) as out,
                dst.cursor().copy(
                    sql.SQL("copy {} from stdin").format(sql.Identifier(scratch))
                ) as into,
            ):
                for chunk in out:
                    into.write(chunk)
            rows += int(
                dst.execute(
                    sql.SQL("select count(*) from {}").format(sql.Identifier(scratch))
                ).fetchone()[0]  # type: ignore[index]
            )
        dst.commit()
    return time.monotonic() - started, rows


def one_size(servers: tuple[cluster.Cluster, cluster.Cluster], rows: int) -> dict[str, Any]:
    template = testing.project_template()
    home = testing.create_test_database(servers[0].url(), template)
    dedicated = testing.create_test_database(servers[1].url(), template)
    try:
        with psycopg.connect(home, autocommit=True) as conn:
            conn.execute("set role tenancy_admin")
            conn.execute("select tenancy.configure_placement('dedicated', 'dedicated')")
        with psycopg.connect(dedicated, autocommit=True) as conn:
            conn.execute("set role tenancy_admin")
            conn.execute(
                "select tenancy.configure_placement('dedicated', 'dedicated', p_here => true)"
            )
        service = {"home": logins(home), "dedicated": logins(dedicated)}
        t0 = time.monotonic()
        big = fill(service["home"], home, "big", rows)
        fill(service["home"], home, "small", 100)
        print(f"  filled {rows:,} rows in {time.monotonic() - t0:.1f} s", flush=True)
        with psycopg.connect(home, autocommit=True) as conn:
            conn.execute("vacuum analyze")
        baseline, copied = offline_copy(home, dedicated, big)
        writer = Writer(service, service["home"], big)
        thread = threading.Thread(target=writer.run, daemon=True)
        thread.start()
        time.sleep(1.0)
        report = move.move(
            str(big),
            move.MoveOptions(source_url=home, destination_url=dedicated, destination="dedicated"),
        )
        time.sleep(1.0)
        writer.stop.set()
        thread.join(30)
        return {
            "rows": report.rows,
            "baseline_rows": copied,
            "baseline": baseline,
            "total": report.times["total"],
            "copy": report.times["copy"],
            "verify": report.times["verify"],
            "fence": report.times["fence"],
            "refused": writer.refused,
            "longest_wait": writer.longest_wait,
            "committed": dict(writer.committed),
        }
    finally:
        for url in (dedicated, home):
            with psycopg.connect(url, autocommit=True) as conn:
                for (name,) in conn.execute("select subname from pg_subscription").fetchall():
                    conn.execute(f'alter subscription "{name}" disable')
                    conn.execute(f'alter subscription "{name}" set (slot_name = none)')
                    conn.execute(f'drop subscription "{name}"')
            testing.drop_test_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    args = parser.parse_args()
    print(machine())
    root = Path(tempfile.mkdtemp(prefix="pgt-bench-move-"))
    root.chmod(0o755)
    servers = (
        cluster.Cluster(root / "home", settings=LOGICAL),
        cluster.Cluster(root / "dedicated", settings=LOGICAL),
    )
    try:
        for server in servers:
            server.ensure()
        results = []
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"tenant of {size:,} documents", flush=True)
            results.append(one_size(servers, size))
        print()
        print(
            "| rows moved | move, total | initial copy | verify | **fence** | offline copy"
            " (baseline) | fence / baseline | writes refused | longest write wait |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in results:
            cells = [
                f"{r['rows']:,}",
                f"{r['total']:.1f} s",
                f"{r['copy']:.1f} s",
                f"{r['verify'] * 1000:.0f} ms",
                f"**{r['fence'] * 1000:.0f} ms**",
                f"{r['baseline']:.1f} s ({r['baseline_rows']:,} rows)",
                f"{r['fence'] / r['baseline']:.3f}",
                str(r["refused"]),
                f"{r['longest_wait'] * 1000:.0f} ms",
            ]
            print("| " + " | ".join(cells) + " |")
        print()
        for r in results:
            print(f"writer commits by placement ({r['rows']:,} rows): {r['committed']}")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
