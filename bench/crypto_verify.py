"""Signature verification in SQL: milliseconds per RS256 and ES256 verify, against HMAC-SHA256.

In one session of a superuser on a migrated database, a PL/pgSQL loop (a pg_temp function, so
no client round trip is timed) calls each function K times with a valid signature made by the
``cryptography`` package, and the server's clock gives the time per call. Rounds alternate the
functions; each figure is the median over the rounds, and the ratio to one
``tenancy.hmac_sha256`` call over the same message (what HS256 verification computes) is printed.
When the server runs on this machine (the throwaway cluster does), the backend's own CPU time
(/proc/<pid>/schedstat) is printed too: on a loaded machine the clock also counts the time the
backend waited for a core, its CPU time does not.
A last line gives the first RS256 verify in a fresh session, PL/pgSQL compilation included
(median over a few new connections). Every figure comes from the same run. Not part of
``make test``.

Usage: python bench/crypto_verify.py [--rounds 15] [--scale 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from psycopg import sql
from run import machine  # bench/run.py: the machine description

from pgtenancy import testing
from pgtenancy.migrate import migrate
from pgtenancy.testing import cluster

DB = "pgtenancy_bench_crypto"
MESSAGE = b"eyJhbGciOiJSUzI1NiIsImtpZCI6ImJlbmNoIn0.eyJzdWIiOiJhdXRoMHxiZW5jaCIsImV4cCI6MH0"

LOOPS = """
create function pg_temp.time_rsa(p_n numeric, p_e numeric, p_k integer, p_m bytea, p_s bytea,
    p_count integer)
returns double precision language plpgsql as $$
declare
    v_start timestamptz := clock_timestamp();
begin
    for i in 1..p_count loop
        if not tenancy.rsa_sha256_verify(p_n, p_e, p_k, p_m, p_s) then
            raise exception 'RS256 signature not verified';
        end if;
    end loop;
    return extract(epoch from clock_timestamp() - v_start) * 1000 / p_count;
end $$;
create function pg_temp.time_es256(p_x numeric, p_y numeric, p_m bytea, p_s bytea, p_count integer)
returns double precision language plpgsql as $$
declare
    v_start timestamptz := clock_timestamp();
begin
    for i in 1..p_count loop
        if not tenancy.es256_verify(p_x, p_y, p_m, p_s) then
            raise exception 'ES256 signature not verified';
        end if;
    end loop;
    return extract(epoch from clock_timestamp() - v_start) * 1000 / p_count;
end $$;
create function pg_temp.time_hmac(p_m bytea, p_key bytea, p_mac bytea, p_count integer)
returns double precision language plpgsql as $$
declare
    v_start timestamptz := clock_timestamp();
begin
    for i in 1..p_count loop
        if tenancy.hmac_sha256(p_m, p_key) is distinct from p_mac then
            raise exception 'HMAC not verified';
        end if;
    end loop;
    return extract(epoch from clock_timestamp() - v_start) * 1000 / p_count;
end $$;
"""


def prepare() -> str:
    base = cluster.database_url()
    url = testing.with_dbname(base, DB)
    with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (DB,)).fetchone():
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(DB)))
    migrate(url)
    return url


def cpu_ns(pid: int) -> int | None:
    """CPU time of a local backend in nanoseconds (Linux), None when it cannot be read."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Case:
    name: str
    query: str  # a pg_temp.time_* call; its last parameter is the number of calls
    params: tuple[Any, ...]
    calls: int  # per round


def rsa_case(bits: int, calls: int) -> Case:
    key = rsa.generate_private_key(65537, bits)
    numbers = key.public_key().public_numbers()
    signature = key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    return Case(
        f"RS256, RSA-{bits} (e = 65537)",
        "select pg_temp.time_rsa(%s::numeric, %s::numeric, %s, %s, %s, %s)",
        (str(numbers.n), str(numbers.e), bits // 8, MESSAGE, signature),
        calls,
    )


def es256_case(calls: int) -> Case:
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    r, s = decode_dss_signature(key.sign(MESSAGE, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return Case(
        "ES256, P-256",
        "select pg_temp.time_es256(%s::numeric, %s::numeric, %s, %s, %s)",
        (str(numbers.x), str(numbers.y), MESSAGE, signature),
        calls,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "15")))
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the calls per round")
    args = ap.parse_args()

    url = prepare()
    hmac_key = os.urandom(32)
    rsa2048 = rsa_case(2048, 100)
    cases = [rsa2048, rsa_case(3072, 50), rsa_case(4096, 20), es256_case(20)]
    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("show server_version").fetchone()[0]  # type: ignore[index]
        conn.execute(LOOPS)
        mac = conn.execute("select tenancy.hmac_sha256(%s, %s)", (MESSAGE, hmac_key)).fetchone()
        assert mac is not None
        baseline = Case(
            "HS256 baseline: one tenancy.hmac_sha256",
            "select pg_temp.time_hmac(%s, %s, %s, %s)",
            (MESSAGE, hmac_key, mac[0]),
            5000,
        )
        cases.insert(0, baseline)
        print(f"machine: {machine()}; PostgreSQL {version}", flush=True)
        print(
            f"{args.rounds} rounds; calls per round: "
            + ", ".join(
                f"{c.name.split(',')[0]} {max(1, int(c.calls * args.scale))}" for c in cases
            ),
            flush=True,
        )
        for case in cases:  # warm up: compile the functions, fill the caches
            conn.execute(case.query, (*case.params, 3))
        pid = conn.execute("select pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        timings: dict[str, list[float]] = {case.name: [] for case in cases}
        cpu: dict[str, list[float]] = {case.name: [] for case in cases}
        for r in range(args.rounds):
            for case in cases:
                count = max(1, int(case.calls * args.scale))
                before = cpu_ns(pid)
                row = conn.execute(case.query, (*case.params, count)).fetchone()
                after = cpu_ns(pid)
                assert row is not None
                timings[case.name].append(float(row[0]))
                if before is not None and after is not None:
                    cpu[case.name].append((after - before) / 1e6 / count)
            print(
                f"round {r + 1}: "
                + ", ".join(f"{name.split(',')[0]} {v[-1]:.3f} ms" for name, v in timings.items()),
                flush=True,
            )

    # The first verify in a fresh session: PL/pgSQL compiles each function on its first call.
    first: list[float] = []
    for _ in range(7):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("select 1")
            start = time.perf_counter()
            row = conn.execute(
                "select tenancy.rsa_sha256_verify(%s::numeric, %s::numeric, %s, %s, %s)",
                rsa2048.params,
            ).fetchone()
            first.append((time.perf_counter() - start) * 1000)
            assert row == (True,)

    base = statistics.median(timings[baseline.name])
    with_cpu = all(cpu.values())
    print()
    print(
        f"| verification | ms per call, server clock (median of {args.rounds}) | ratio to HMAC |"
        + (" backend CPU ms per call (median) | ratio |" if with_cpu else "")
    )
    print("| --- | ---: | ---: |" + (" ---: | ---: |" if with_cpu else ""))
    cpu_base = statistics.median(cpu[baseline.name]) if with_cpu else 1.0
    for name, values in timings.items():
        median = statistics.median(values)
        line = f"| {name} | {median:.4f} | {median / base:,.0f} |"
        if with_cpu:
            median = statistics.median(cpu[name])
            line += f" {median:.4f} | {median / cpu_base:,.0f} |"
        print(line)
    median = statistics.median(first)
    print(
        "| RS256, RSA-2048, first call in a new session (compilation included; client-timed, "
        f"one round trip; median of {len(first)}) | {median:.3f} | {median / base:,.0f} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
