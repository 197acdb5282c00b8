"""API key benchmark: tenancy.authenticate_api_key(key) against tenancy.authenticate(HS256 token).

1,000 tenants, each with an owner, an owner's HS256 token and an API key (made with
tenancy.create_api_key). pgbench (-M prepared, 2 clients, 2 threads) runs, as a tenancy_app
login, with the tenant picked at random and its token and key read from a side table first
(the same read in every script):

* authenticate:         begin; select tenancy.authenticate(:token); commit;
* authenticate_api_key: begin; select tenancy.authenticate_api_key(:key); commit;
* floor:                begin; select 1; commit;

Runs alternate, each script once per round; the TPS of each is the median of the rounds. Printed:
TPS, the ratio to authenticate, and each call's own cost (its latency less the floor's), with
the ratio of those costs (target: the API key path costs no more than authenticate, ratio <= 1).
Then the same two calls timed inside the server, free of client and network noise: one DO block
per round calling each 5,000 times in one transaction (so the key's last_used_at is written once),
alternating, median per call. Every figure comes from the same run on the same data. Not part of
``make test``.

Usage: python bench/api_key_auth.py [--seconds 8] [--rounds 3] [--rebuild]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql
from run import machine, pgbench  # bench/run.py: the pgbench runner and machine description

from pgtenancy import testing
from pgtenancy.migrate import migrate
from pgtenancy.testing import as_login, cluster
from pgtenancy.testing.tokens import tenant_token

DB = "pgtenancy_bench_api_keys"
TENANTS = 1000
LOGIN = "bench_api_key_app"
SECRET = "bench-secret-" + "0123456789abcdef" * 3

HEADER = f"""\\set n random(1, {TENANTS})
select token, api_key from bench.credentials where n = :n \\gset
begin;
"""
SCRIPTS = {
    "authenticate (HS256)": "select tenant_id from tenancy.authenticate(:token);",
    "authenticate_api_key": "select tenant_id from tenancy.authenticate_api_key(:api_key);",
    "floor (select 1)": "select 1;",
}
AUTHENTICATE = "authenticate (HS256)"
FLOOR = "floor (select 1)"


def prepare(rebuild: bool) -> str:
    base = cluster.database_url()
    url = testing.with_dbname(base, DB)
    with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (DB,)).fetchone()
        if exists and not rebuild:
            migrate(url)
            print(f"reusing database {DB}", flush=True)
            set_tokens(url)
            return url
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(DB)))
    print(f"building {DB}: {TENANTS:,} tenants, each with a token and an API key", flush=True)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = %s", (LOGIN,)).fetchone():
            conn.execute(f"create role {LOGIN} login in role tenancy_app")
        conn.execute(
            "create schema bench; create table bench.credentials "
            "(n integer primary key, tenant_id uuid not null, user_id text not null, "
            "token text, api_key text not null)"
        )
        conn.execute(f"grant usage on schema bench to {LOGIN}")
        conn.execute(f"grant select on bench.credentials to {LOGIN}")
        conn.execute("set role tenancy_admin")
        conn.execute("select tenancy.configure_jwt(%s, null, null)", (SECRET,))
        with conn.transaction():
            for n in range(1, TENANTS + 1):
                conn.execute(
                    "select tenancy.create_tenant(%s, %s, %s)",
                    (f"bench-{n}", f"Bench {n}", f"auth0|bench-{n}"),
                )
        conn.execute("reset role")
        # The keys are made as each tenant's owner would make them.
        conn.execute("set role tenancy_service")
        with conn.transaction():
            for n in range(1, TENANTS + 1):
                user = f"auth0|bench-{n}"
                row = conn.execute(
                    "select t.id from tenancy.tenants t where t.slug = %s", (f"bench-{n}",)
                ).fetchone()
                assert row is not None
                conn.execute("select tenancy.set_context(%s, %s)", (row[0], user))
                key = conn.execute(
                    "select key from tenancy.create_api_key('bench', 'member')"
                ).fetchone()
                assert key is not None
                conn.execute("select tenancy.clear_context()")
                conn.execute("reset role")
                conn.execute(
                    "insert into bench.credentials (n, tenant_id, user_id, api_key) "
                    "values (%s, %s, %s, %s)",
                    (n, row[0], user, key[0]),
                )
                conn.execute("set role tenancy_service")
        conn.execute("reset role")
        conn.execute(
            "vacuum (analyze) tenancy.tenants, tenancy.memberships, tenancy.api_keys, "
            "tenancy.api_key_secrets, bench.credentials"
        )
    set_tokens(url)
    return url


def set_tokens(url: str) -> None:
    """Fresh long-lived tokens for every tenant (tokens expire, so rebuild them each run)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("select n, tenant_id, user_id from bench.credentials").fetchall()
        with conn.cursor() as cur:
            cur.executemany(
                "update bench.credentials set token = %s where n = %s",
                [(tenant_token(SECRET, t, u, ttl=7200), n) for n, t, u in rows],
            )


LOOP_CALLS = 5000
LOOPS = {
    AUTHENTICATE: "perform tenancy.authenticate(v_token)",
    "authenticate_api_key": "perform tenancy.authenticate_api_key(v_key)",
}


def in_server(login: str, rounds: int) -> dict[str, float]:
    """Microseconds per call of each function, called LOOP_CALLS times in one DO block."""
    times: dict[str, list[float]] = {name: [] for name in LOOPS}
    with psycopg.connect(login) as conn:
        for _ in range(rounds):
            for name, call in LOOPS.items():
                block = (
                    "do $$ declare v_token text; v_key text; begin "
                    "select c.token, c.api_key into v_token, v_key from bench.credentials as c "
                    f"where c.n = 7; for i in 1..{LOOP_CALLS} loop {call}; end loop; end $$"
                )
                start = time.perf_counter()
                conn.execute(block)
                times[name].append((time.perf_counter() - start) * 1e6 / LOOP_CALLS)
                conn.rollback()
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "8")))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    ap.add_argument("--rebuild", action="store_true", help="rebuild the data set")
    args = ap.parse_args()

    url = prepare(args.rebuild)
    login = as_login(url, LOGIN)
    with psycopg.connect(login) as conn:
        version = conn.execute("show server_version").fetchone()[0]  # type: ignore[index]
        # Both calls answer what they should before they are timed.
        tenant, token, key = conn.execute(
            "select tenant_id, token, api_key from bench.credentials where n = 7"
        ).fetchone()  # type: ignore[misc]
        for query, secret in (
            ("select tenant_id from tenancy.authenticate(%s)", token),
            ("select tenant_id from tenancy.authenticate_api_key(%s)", key),
        ):
            assert conn.execute(query, (secret,)).fetchone() == (tenant,), query
            conn.rollback()
    print(f"machine: {machine()}; PostgreSQL {version}", flush=True)
    print(
        f"pgbench -M prepared -c 2 -j 2, {args.seconds}s per run, {args.rounds} rounds (median); "
        "each transaction: read the tenant's credentials, begin, the call, commit",
        flush=True,
    )
    tps: dict[str, list[float]] = {name: [] for name in SCRIPTS}
    with tempfile.TemporaryDirectory(prefix="pgtenancy-bench-") as tmp:
        d = Path(tmp)
        os.chmod(d, 0o755)
        paths = {}
        for i, (name, statement) in enumerate(SCRIPTS.items()):
            paths[name] = d / f"script{i}.sql"
            paths[name].write_text(f"{HEADER}{statement}\ncommit;\n")
        for r in range(args.rounds):
            for name, path in paths.items():
                tps[name].append(pgbench(login, path, args.seconds).tps)
            print(
                f"round {r + 1}: "
                + ", ".join(f"{name} {values[-1]:,.0f} tps" for name, values in tps.items()),
                flush=True,
            )
    median = {name: statistics.median(values) for name, values in tps.items()}
    # Two clients: a transaction's latency is 2 / TPS; a call's own cost is that less the floor's.
    cost = {name: 2e6 / median[name] - 2e6 / median[FLOOR] for name in SCRIPTS if name != FLOOR}
    print()
    print(
        f"| statement | TPS (median of {args.rounds}) | TPS ratio to authenticate "
        "| cost of the call (us) | cost ratio to authenticate |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in SCRIPTS:
        line = f"| {name} | {median[name]:,.0f} | {median[name] / median[AUTHENTICATE]:.2f} |"
        if name in cost:
            line += f" {cost[name]:,.0f} | {cost[name] / cost[AUTHENTICATE]:.2f} |"
        else:
            line += " - | - |"
        print(line)
    print()
    ratio = cost["authenticate_api_key"] / cost[AUTHENTICATE]
    print(f"authenticate_api_key / authenticate: {ratio:.2f} (cost of the call; target <= 1)")
    loop = in_server(login, args.rounds)
    print()
    print(f"in the server, {LOOP_CALLS:,} calls per round, median of {args.rounds} rounds:")
    for name, us in loop.items():
        print(f"  {name}: {us:.1f} us per call")
    ratio = loop["authenticate_api_key"] / loop[AUTHENTICATE]
    print(f"authenticate_api_key / authenticate: {ratio:.2f} (in the server; target <= 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
