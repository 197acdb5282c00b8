"""RLS overhead benchmark: tenant-scoped queries through pgtenancy vs an explicit WHERE.

1,000 tenants and 1,000,000 rows in app.documents. For each query (point lookup by id, a 100-row
range, a count of one tenant's 1,000 rows) pgbench (-M prepared, 2 clients) runs

* RLS: as a tenancy_app login, BEGIN; tenancy.authenticate(token); K x query; COMMIT
* baseline: as a BYPASSRLS login, BEGIN; the same authenticate call; K x query with an explicit
  WHERE tenant_id = ...; COMMIT

and the same scripts with no query. The per-query latency is the difference divided by K, so
authentication and transaction overhead cancel out; the ratio RLS / baseline is printed.
It also prints the TPS of BEGIN; authenticate; one-row SELECT; COMMIT against the same
transaction without authenticate, and, as the ceiling any fourth statement can reach, the same
transaction with SELECT 1 in place of authenticate. Every figure comes from the same run on
the same data.

Usage: python bench/run.py [--seconds 10] [--rounds 3] [--queries 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from pgtenancy import testing
from pgtenancy.migrate import migrate
from pgtenancy.testing import as_login, cluster
from pgtenancy.testing.tokens import tenant_token

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "app"
DB = "pgtenancy_bench"
SECRET = "bench-secret-" + "0123456789abcdef" * 3
TENANTS = 1000
ROWS_PER_TENANT = 1000
PROJECTS_PER_TENANT = 10
APP_LOGIN = "bench_app"
BYPASS_LOGIN = "bench_bypass"

QUERIES = {
    "point lookup": (
        "select title from app.documents where id = :id;",
        "select title from app.documents where tenant_id = :tenant and id = :id;",
    ),
    "100-row range": (
        "select id, title from app.documents where id >= :lo order by id limit 100;",
        "select id, title from app.documents where tenant_id = :tenant and id >= :lo "
        "order by id limit 100;",
    ),
    "count of 1,000": (
        "select count(*) from app.documents;",
        "select count(*) from app.documents where tenant_id = :tenant;",
    ),
}


def bindir() -> Path:
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def prepare(rebuild: bool) -> str:
    base = cluster.database_url()
    url = testing.with_dbname(base, DB)
    with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (DB,)).fetchone()
        if exists and not rebuild:
            with psycopg.connect(url) as db:
                n = db.execute("select count(*) from app.documents").fetchone()
            if n and n[0] == TENANTS * ROWS_PER_TENANT:
                print(f"reusing database {DB} ({n[0]:,} documents)", flush=True)
                migrate(url)  # bring its functions and policies up to the current sources
                with psycopg.connect(url, autocommit=True) as db:
                    for path in sorted((APP / "policies").glob("*.sql")):
                        with db.transaction():
                            db.execute(path.read_bytes())
                return url
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(DB)))
    print(
        f"building {DB}: {TENANTS:,} tenants, {TENANTS * ROWS_PER_TENANT:,} documents", flush=True
    )
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for path in [APP / "schema.sql", *sorted((APP / "policies").glob("*.sql"))]:
            with conn.transaction():
                conn.execute(path.read_bytes())
        for login, extra in ((APP_LOGIN, "in role tenancy_app"), (BYPASS_LOGIN, "bypassrls")):
            if not conn.execute("select 1 from pg_roles where rolname = %s", (login,)).fetchone():
                conn.execute(f"create role {login} login {extra}")
        conn.execute(f"grant usage on schema app, tenancy to {BYPASS_LOGIN}")
        conn.execute(f"grant select on all tables in schema app to {BYPASS_LOGIN}")
        conn.execute(f"grant tenancy_app to {BYPASS_LOGIN}")
        conn.execute("set role tenancy_admin")
        conn.execute("select tenancy.configure_jwt(%s)", (SECRET,))
        conn.execute("reset role")
        # Fixture data, written as the superuser (bypassing RLS) for speed.
        conn.execute("create schema bench")
        conn.execute(
            "create table bench.tenants (n int primary key, tenant_id uuid not null, "
            "user_id text not null, first_id bigint, token text)"
        )
        conn.execute(
            "insert into tenancy.tenants (id, slug, name) "
            "select gen_random_uuid(), 'bench-' || n, 'Bench ' || n from generate_series(1, %s) n",
            (TENANTS,),
        )
        conn.execute(
            "insert into bench.tenants (n, tenant_id, user_id) "
            "select substr(slug, 7)::int, id, 'auth0|' || gen_random_uuid() from tenancy.tenants "
            "where slug like 'bench-%%'"
        )
        conn.execute(
            "insert into tenancy.memberships (tenant_id, user_id, role) "
            "select tenant_id, user_id, 'owner' from bench.tenants"
        )
        conn.execute(
            "insert into app.projects (tenant_id, name) select b.tenant_id, 'project ' || p "
            "from bench.tenants b cross join generate_series(1, %s) p order by b.n, p",
            (PROJECTS_PER_TENANT,),
        )
        conn.execute(
            "insert into app.documents (tenant_id, project_id, title, body) "
            "select b.tenant_id, p.id, 'document ' || d, repeat('lorem ipsum ', 10) "
            "from bench.tenants b "
            "cross join generate_series(1, %s) d "
            "join lateral (select id from app.projects pr where pr.tenant_id = b.tenant_id "
            "  order by id offset (d %% %s) limit 1) p on true "
            "order by b.n, d",
            (ROWS_PER_TENANT, PROJECTS_PER_TENANT),
        )
        conn.execute(
            "update bench.tenants b set first_id = (select min(id) from app.documents d "
            "where d.tenant_id = b.tenant_id)"
        )
        conn.execute(f"grant usage on schema bench to {APP_LOGIN}, {BYPASS_LOGIN}")
        conn.execute(f"grant select on bench.tenants to {APP_LOGIN}, {BYPASS_LOGIN}")
        conn.execute(
            "vacuum (analyze) app.projects, app.documents, tenancy.memberships, bench.tenants"
        )
    return url


def set_tokens(url: str) -> None:
    """Fresh long-lived tokens for every tenant (tokens expire, so rebuild them each run)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("select n, tenant_id, user_id from bench.tenants").fetchall()
        with conn.cursor() as cur:
            cur.executemany(
                "update bench.tenants set token = %s where n = %s",
                [(tenant_token(SECRET, t, u, ttl=7200), n) for n, t, u in rows],
            )


HEADER = """\\set n random(1, {tenants})
select tenant_id as tenant, token, first_id from bench.tenants where n = :n \\gset
\\set id :first_id + random(0, {last})
\\set lo :first_id + random(0, {range_last})
begin;
select tenant_id from tenancy.authenticate(:token);
"""


def script(dir: Path, name: str, body: str, repeat: int) -> Path:
    text = HEADER.format(
        tenants=TENANTS, last=ROWS_PER_TENANT - 1, range_last=ROWS_PER_TENANT - 100
    )
    text += (body + "\n") * repeat + "commit;\n"
    path = dir / f"{name}.sql"
    path.write_text(text)
    return path


@dataclass
class Run:
    tps: float
    latency_ms: float


def pgbench(conninfo: str, path: Path, seconds: int, extra: list[str] | None = None) -> Run:
    cmd = [
        str(bindir() / "pgbench"), "-n", "-M", "prepared", "-c", "2", "-j", "2",
        "-T", str(seconds), "-f", str(path), *(extra or []), conninfo,
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0 or "failed transactions: 0 " not in res.stdout:
        raise SystemExit(f"pgbench failed for {path.name}:\n{res.stdout}\n{res.stderr}")
    tps = float(re.search(r"tps = ([0-9.]+)", res.stdout).group(1))  # type: ignore[union-attr]
    lat = float(re.search(r"latency average = ([0-9.]+) ms", res.stdout).group(1))  # type: ignore[union-attr]
    return Run(tps, lat)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}){mem}"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "8")))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    ap.add_argument(
        "--queries",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[3, 20],
        help="queries per transaction (K), comma-separated (default 3,20)",
    )
    ap.add_argument("--rebuild", action="store_true", help="rebuild the data set")
    args = ap.parse_args()

    url = prepare(args.rebuild)
    set_tokens(url)
    app = as_login(url, APP_LOGIN)
    bypass = as_login(url, BYPASS_LOGIN)
    with psycopg.connect(url) as conn:
        version = conn.execute("show server_version").fetchone()[0]  # type: ignore[index]
        one = conn.execute(
            "select tenant_id, token, first_id from bench.tenants where n = %s", (TENANTS // 2,)
        ).fetchone()
    assert one is not None
    print(f"machine: {machine()}; PostgreSQL {version}", flush=True)
    print(
        f"pgbench -M prepared -c 2 -j 2, {args.seconds}s per run, {args.rounds} rounds "
        f"(median), K = {', '.join(map(str, args.queries))} queries per transaction",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="pgtenancy-bench-") as tmp:
        d = Path(tmp)
        os.chmod(d, 0o755)
        empty = script(d, "empty", "", 0)
        scripts = {
            (name, k): (
                script(d, f"rls{i}_{k}", rls, k),
                script(d, f"base{i}_{k}", base, k),
            )
            for k in args.queries
            for i, (name, (rls, base)) in enumerate(QUERIES.items())
        }
        tps_auth = d / "tps_auth.sql"
        tps_auth.write_text(
            f"\\set id {one[2]} + random(0, {ROWS_PER_TENANT - 1})\n"
            "begin;\nselect tenant_id from tenancy.authenticate(:token);\n"
            "select title from app.documents where id = :id;\ncommit;\n"
        )
        # The same transaction with BEGIN and authenticate sent in one round trip (pipeline),
        # as the psycopg helpers do.
        tps_pipelined = d / "tps_pipelined.sql"
        tps_pipelined.write_text(
            f"\\set id {one[2]} + random(0, {ROWS_PER_TENANT - 1})\n"
            "\\startpipeline\nbegin;\nselect tenant_id from tenancy.authenticate(:token);\n"
            "\\endpipeline\nselect title from app.documents where id = :id;\ncommit;\n"
        )
        tps_plain = d / "tps_plain.sql"
        tps_plain.write_text(
            f"\\set id {one[2]} + random(0, {ROWS_PER_TENANT - 1})\n"
            "begin;\nselect title from app.documents where tenant_id = :tenant and id = :id;\n"
            "commit;\n"
        )
        tps_extra = d / "tps_extra.sql"
        tps_extra.write_text(
            f"\\set id {one[2]} + random(0, {ROWS_PER_TENANT - 1})\n"
            "begin;\nselect 1;\n"
            "select title from app.documents where tenant_id = :tenant and id = :id;\ncommit;\n"
        )
        defines = ["-D", f"token={one[1]}", "-D", f"tenant={one[0]}"]

        samples: dict[tuple[str, int], list[float]] = {key: [] for key in scripts}
        lat: dict[tuple[str, int], list[tuple[float, float]]] = {key: [] for key in scripts}
        tps_ratio: list[tuple[float, float, float, float]] = []
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", flush=True)
            rls0 = pgbench(app, empty, args.seconds).latency_ms
            base0 = pgbench(bypass, empty, args.seconds).latency_ms
            for (name, k), (rls_s, base_s) in scripts.items():
                rls = (pgbench(app, rls_s, args.seconds).latency_ms - rls0) / k
                base = (pgbench(bypass, base_s, args.seconds).latency_ms - base0) / k
                samples[name, k].append(rls / base)
                lat[name, k].append((rls * 1000, base * 1000))
            a = pgbench(app, tps_auth, args.seconds, defines).tps
            ap_ = pgbench(app, tps_pipelined, args.seconds, defines).tps
            p = pgbench(bypass, tps_plain, args.seconds, defines).tps
            e = pgbench(bypass, tps_extra, args.seconds, defines).tps
            tps_ratio.append((a, ap_, p, e))

    print()
    print(f"{'query':16} {'K':>3} {'RLS µs':>8} {'WHERE µs':>9} {'ratio':>6}  target        rounds")
    for name, k in scripts:
        r = statistics.median(samples[name, k])
        rls_us = statistics.median(x[0] for x in lat[name, k])
        base_us = statistics.median(x[1] for x in lat[name, k])
        flag = "ok" if r <= 1.10 else "MISSED"
        spread = " ".join(f"{x:.2f}" for x in samples[name, k])
        print(f"{name:16} {k:3} {rls_us:8.1f} {base_us:9.1f} {r:6.3f}  <= 1.10 {flag:6}  {spread}")
    a = statistics.median(x[0] for x in tps_ratio)
    ap_ = statistics.median(x[1] for x in tps_ratio)
    p = statistics.median(x[2] for x in tps_ratio)
    e = statistics.median(x[3] for x in tps_ratio)
    print(
        f"{'auth txn TPS':16} {a:12.0f} {p:9.0f} {a / p:6.3f}  "
        "(BEGIN; authenticate; one-row SELECT; COMMIT vs without authenticate)"
    )
    print(
        f"{'  pipelined':16} {ap_:12.0f} {p:9.0f} {ap_ / p:6.3f}  "
        "(BEGIN and authenticate in one round trip, as the psycopg helpers send them)"
    )
    print(
        f"{'extra round trip':16} {e:12.0f} {p:9.0f} {e / p:6.3f}  (ceiling: SELECT 1 in place of "
        "authenticate)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
