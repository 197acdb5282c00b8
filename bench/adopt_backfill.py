"""The backfill written by ``pgtenancy adopt``, on 1,000,000 rows, with a writer running beside it.

``bench.clicks`` (1,000,000 rows) has no tenant column: it reaches its company through
``bench.campaigns`` (10,000 rows, 1,000 companies). The script writes the adoption migration with
``pgtenancy adopt`` and runs it with ``psql -f``, while another session updates one random click
after another (single-row UPDATEs in autocommit) and records how long each one took. For
comparison it first fills the same column in a copy of the table the naive way, with one
``UPDATE … FROM`` statement, under the same writer.

It prints the time of the backfill (the CALL) and of the whole file, the batches, and the
writer's latencies during each run: the longest wait is what matters — with the batched
backfill a writer waits at most for one batch, with the single statement for most of the run.

Usage: python bench/adopt_backfill.py [--rows 1000000] [--batch 10000]

Uses ``$DATABASE_URL``'s server, else the throwaway cluster; builds database
``pgtenancy_bench_adopt`` from scratch each time and drops it at the end. Not part of
``make test``.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from pgtenancy import adopt, testing
from pgtenancy.testing import cluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import machine  # noqa: E402

DB = "pgtenancy_bench_adopt"
COMPANIES = 1000
CAMPAIGNS = 10_000

SCHEMA = """
create schema bench;
create table bench.companies (id bigint primary key, name text not null);
create table bench.campaigns (
    id bigint primary key,
    company_id bigint not null references bench.companies (id),
    name text not null
);
create table bench.clicks (
    id bigint primary key,
    campaign_id bigint not null references bench.campaigns (id),
    clicked_at timestamptz not null default now(),
    url text not null
);
insert into bench.companies select g, 'company ' || g from generate_series(1, {companies}) as g;
insert into bench.campaigns select g, 1 + g % {companies}, 'campaign ' || g
from generate_series(1, {campaigns}) as g;
insert into bench.clicks (id, campaign_id, url)
select g, 1 + (g::bigint * 7919) % {campaigns}, 'https://example.com/' || g
from generate_series(1, {rows}) as g;
create table bench.clicks_naive as table bench.clicks;
alter table bench.clicks_naive add primary key (id);
"""

SPEC = """
[tables."bench.companies"]
tenant_column = "id"
[tables."bench.campaigns"]
tenant_column = "company_id"
[tables."bench.clicks"]
tenant_column = "company_id"
"""


class Writer(threading.Thread):
    """Single-row UPDATEs of random clicks, back to back, each timed."""

    def __init__(self, url: str, table: str, rows: int) -> None:
        super().__init__(daemon=True)
        self.url, self.table, self.rows = url, table, rows
        self.stop = threading.Event()
        self.latencies: list[float] = []

    def run(self) -> None:
        rnd = random.Random(7)
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                row = rnd.randint(1, self.rows)
                started = time.perf_counter()
                conn.execute(
                    f"update {self.table} set url = url where id = %s",  # noqa: S608
                    (row,),
                )
                self.latencies.append(time.perf_counter() - started)
                time.sleep(0.002)

    def report(self) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return "no updates"
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return (
            f"{len(lat)} updates, median {statistics.median(lat) * 1000:.2f} ms, "
            f"p99 {p99 * 1000:.1f} ms, max {lat[-1] * 1000:.0f} ms"
        )


def prepare(rows: int) -> str:
    base = cluster.database_url()
    admin = testing.with_dbname(base, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{DB}" (force)')
        conn.execute(f'create database "{DB}"')
    url = testing.with_dbname(base, DB)
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA.format(companies=COMPANIES, campaigns=CAMPAIGNS, rows=rows).encode())
        conn.execute("vacuum analyze")
    print(f"built {rows:,} clicks in {time.monotonic() - started:.0f} s", flush=True)
    return url


def timed(writer: Writer, action: object) -> float:
    writer.start()
    time.sleep(0.5)
    started = time.monotonic()
    action()  # type: ignore[operator]
    elapsed = time.monotonic() - started
    time.sleep(0.2)
    writer.stop.set()
    writer.join()
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=adopt.DEFAULT_BATCH)
    args = ap.parse_args()
    psql = shutil.which("psql")
    if psql is None:
        print("adopt_backfill: psql is not installed", file=sys.stderr)
        return 2
    url = prepare(args.rows)
    with psycopg.connect(url) as conn:
        version = conn.execute("show server_version").fetchone()[0]  # type: ignore[index]
    print(f"machine: {machine()}; PostgreSQL {version}", flush=True)

    # 1. the naive way: one UPDATE over the whole table
    def naive() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("alter table bench.clicks_naive add column company_id bigint")
            conn.execute(
                "update bench.clicks_naive as c set company_id = p.company_id "
                "from bench.campaigns as p where p.id = c.campaign_id"
            )

    w = Writer(url, "bench.clicks_naive", args.rows)
    t = timed(w, naive)
    print(f"single UPDATE: {t:.1f} s; concurrent writer: {w.report()}", flush=True)
    naive_max = max(w.latencies, default=0.0)

    # 2. the file pgtenancy adopt writes
    with tempfile.TemporaryDirectory(prefix="pgtenancy-adopt-") as tmp:
        spec, out = Path(tmp) / "tenancy.toml", Path(tmp) / "adopt.sql"
        spec.write_text(SPEC)
        adopt.adopt(url, spec, out, batch=args.batch)
        text = out.read_text()
        # the backfill alone (the CALL), then the rest of the file
        call = next(line for line in text.splitlines() if line.startswith("call "))
        head = text.split(call + "\n", 1)[0]
        (Path(tmp) / "head.sql").write_text(head)
        (Path(tmp) / "all.sql").write_text(text)

        def run(name: str) -> None:
            res = subprocess.run(
                [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(Path(tmp) / name), "-d", url],
                capture_output=True,
                text=True,
            )
            if res.returncode != 0:
                raise SystemExit(f"adopt_backfill: {name} failed: {res.stderr}")

        run("head.sql")

        def backfill() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(call.encode())

        w = Writer(url, "bench.clicks", args.rows)
        t_backfill = timed(w, backfill)
        batches = -(-args.rows // args.batch)
        per_batch = t_backfill / batches
        worst = max(w.latencies, default=0.0)
        print(
            f"adopt backfill (CALL, {batches} batches of {args.batch:,}): {t_backfill:.1f} s, "
            f"{per_batch * 1000:.0f} ms per batch; concurrent writer: {w.report()}",
            flush=True,
        )
        print(
            f"longest writer wait: {worst / t_backfill:.3f} of the backfill's time, "
            f"{worst / per_batch:.2f} batch durations (single UPDATE: "
            f"{naive_max / t:.2f} of its time)",
            flush=True,
        )
        started = time.monotonic()
        run("all.sql")  # the whole file: the backfill is done, the rest runs
        print(
            f"rest of the file (NOT NULL, keys rebuilt concurrently, foreign keys): "
            f"{time.monotonic() - started:.1f} s",
            flush=True,
        )
    with psycopg.connect(url) as conn:
        left = conn.execute("select count(*) from bench.clicks where company_id is null")
        assert left.fetchone() == (0,)
    with psycopg.connect(testing.with_dbname(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'drop database "{DB}" (force)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
