"""Host resolution benchmark: tenancy.resolve_tenant(host) against a plain lookup by slug.

1,000 tenants created with tenancy.create_tenant under one base domain (so each has its
materialised subdomain), plus 1,000 verified custom domains. pgbench (-M prepared, 2 clients,
2 threads) runs, as a tenancy_service login, one statement per transaction, the tenant picked at
random:

* resolve:  select tenancy.resolve_tenant('bench-' || :n || '.bench.example')
* custom:   select tenancy.resolve_tenant('shop-' || :n || '.customer.example:443')
* baseline: select id from tenancy.tenants where slug = 'bench-' || :n

Runs alternate, each script once per round; the TPS of each is the median of the rounds, and the
ratios resolve / baseline and custom / baseline are printed (target: at least 0.8). Every figure
comes from the same run on the same data. Not part of ``make test``.

Usage: python bench/resolve.py [--seconds 8] [--rounds 3] [--rebuild]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql
from run import machine, pgbench  # bench/run.py: the pgbench runner and machine description

from pgtenancy import testing
from pgtenancy.migrate import migrate
from pgtenancy.testing import as_login, cluster

DB = "pgtenancy_bench_resolve"
TENANTS = 1000
LOGIN = "bench_resolver"
BASE = "bench.example"

SCRIPTS = {
    "resolve (subdomain)": "select tenancy.resolve_tenant('bench-' || :n || '.bench.example');",
    "resolve (custom domain, :port)": (
        "select tenancy.resolve_tenant('shop-' || :n || '.customer.example:443');"
    ),
    "baseline (slug lookup)": "select id from tenancy.tenants where slug = 'bench-' || :n;",
}
BASELINE = "baseline (slug lookup)"


def prepare(rebuild: bool) -> str:
    base = cluster.database_url()
    url = testing.with_dbname(base, DB)
    with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (DB,)).fetchone()
        if exists and not rebuild:
            migrate(url)
            print(f"reusing database {DB}", flush=True)
            return url
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(DB)))
    print(f"building {DB}: {TENANTS:,} tenants, {TENANTS:,} custom domains", flush=True)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = %s", (LOGIN,)).fetchone():
            conn.execute(f"create role {LOGIN} login in role tenancy_service")
        conn.execute("set role tenancy_admin")
        conn.execute("select tenancy.configure_domains(%s)", ([BASE],))
        with conn.transaction():
            for n in range(1, TENANTS + 1):
                conn.execute(
                    "select tenancy.create_tenant(%s, %s, %s)",
                    (f"bench-{n}", f"Bench {n}", f"auth0|bench-{n}"),
                )
        conn.execute("reset role")
        # Custom domains, claimed and verified through the functions (as each tenant's owner).
        conn.execute("set role tenancy_service")
        with conn.transaction():
            for n in range(1, TENANTS + 1):
                conn.execute(
                    "select tenancy.set_context(t.id, %s) from tenancy.tenants t where t.slug = %s",
                    (f"auth0|bench-{n}", f"bench-{n}"),
                )
                row = conn.execute(
                    "select txt_value from tenancy.add_custom_domain(%s)",
                    (f"shop-{n}.customer.example",),
                ).fetchone()
                assert row is not None
                conn.execute(
                    "select tenancy.verify_custom_domain(%s, %s)",
                    (f"shop-{n}.customer.example", [row[0]]),
                )
                conn.execute("select tenancy.clear_context()")
        conn.execute("reset role")
        conn.execute("vacuum (analyze) tenancy.tenants, tenancy.domain_claims")
    return url


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "8")))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    ap.add_argument("--rebuild", action="store_true", help="rebuild the data set")
    args = ap.parse_args()

    url = prepare(args.rebuild)
    login = as_login(url, LOGIN)
    with psycopg.connect(url) as conn:
        version = conn.execute("show server_version").fetchone()[0]  # type: ignore[index]
        # The statements answer what they should before they are timed.
        for host, expected in (
            ("bench-7.bench.example", "bench-7"),
            ("shop-7.customer.example:443", "bench-7"),
        ):
            row = conn.execute(
                "select t.slug from tenancy.tenants t where t.id = tenancy.resolve_tenant(%s)",
                (host,),
            ).fetchone()
            assert row == (expected,), (host, row)
    print(f"machine: {machine()}; PostgreSQL {version}", flush=True)
    print(
        f"pgbench -M prepared -c 2 -j 2, {args.seconds}s per run, {args.rounds} rounds (median), "
        "one statement per transaction",
        flush=True,
    )
    tps: dict[str, list[float]] = {name: [] for name in SCRIPTS}
    with tempfile.TemporaryDirectory(prefix="pgtenancy-bench-") as tmp:
        d = Path(tmp)
        os.chmod(d, 0o755)
        paths = {}
        for i, (name, statement) in enumerate(SCRIPTS.items()):
            paths[name] = d / f"script{i}.sql"
            paths[name].write_text(f"\\set n random(1, {TENANTS})\n{statement}\n")
        for r in range(args.rounds):
            for name, path in paths.items():
                tps[name].append(pgbench(login, path, args.seconds).tps)
            print(
                f"round {r + 1}: "
                + ", ".join(f"{name} {values[-1]:,.0f} tps" for name, values in tps.items()),
                flush=True,
            )
    base = statistics.median(tps[BASELINE])
    print()
    print(f"| statement | TPS (median of {args.rounds}) | ratio to the slug lookup |")
    print("| --- | ---: | ---: |")
    for name, values in tps.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {median / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
