"""Authentication benchmark: tenancy.authenticate per call, RS256 and ES256 (cold and cached) and
HS256, against the HS256 path of the code before trusted issuers, in one run.

Two databases on the same server, each with 1,000 tenants made with tenancy.create_tenant, each
tenant's owner a member (the user every token names, with the tenant in its tenant_id claim):

* the baseline: the tree of --baseline-ref (default fbd6f7d, the last commit before trusted
  issuers, the verified-token cache and security events), exported with git archive and
  installed with its own migrate code, as scripts/updatecheck.py does;
* HEAD: this checkout, plus one platform-wide trusted issuer with an RSA-2048 (e = 65537) and a
  P-256 key, set with tenancy.configure_issuer and tenancy.set_jwks (fresh keys each run).

Cases: (a) HS256 on the baseline (today's path, the reference of every ratio), (b) HS256 on HEAD,
(c) RS256 cached (the same token again and again, verified once in the warm-up), (c2) RS256
cached for 1,000 users (each tenant's owner with a token of their own, verified in the warm-up,
used in turn: the cache gives each token two candidate slots, picked by its hash, so only
tokens whose candidates are all taken by others evict each other), (d) RS256 cold (a
different token each call, minted with PyJWT with distinct jti claims; each is verified once
and cached as it goes), (e) ES256 cached and cold,
(f) tenancy.authenticate_api_key with one key again and again, when the database has that
function (else "not installed").

Server side: in one session of an application login (a member of tenancy_app), a DO block (no
temporary objects, so the session stays clean and authenticate takes its ordinary path) calls
the function for each token inside one transaction, the server clock giving the time per call;
each call sets the context again. End to end: the same login from this client runs
BEGIN; SELECT … FROM tenancy.authenticate($1); COMMIT per token (three round trips, the
statement prepared), next to BEGIN; SELECT 1; COMMIT as the floor of any such transaction. The
server-side loop pays once per round what each transaction pays once (locks, PL/pgSQL's
per-transaction expression state): the end-to-end CPU time is the closer to what an application
sees.
Rounds alternate the cases; every figure is the median over the rounds. When the server runs on
this machine, the backend's CPU time (/proc/<pid>/schedstat) is printed too: on a loaded machine
the clock also counts time spent waiting for a core, the CPU time does not. Not part of
``make test``.

Usage: python bench/authenticate.py [--rounds 11] [--scale 1] [--baseline-ref fbd6f7d] [--rebuild]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import psycopg
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from psycopg import sql
from psycopg.types.json import Json
from run import machine  # bench/run.py: the machine description

from pgtenancy import testing
from pgtenancy.migrate import migrate
from pgtenancy.testing import as_login, cluster
from pgtenancy.testing.tokens import tenant_token

ROOT = Path(__file__).resolve().parent.parent
DB = "pgtenancy_bench_auth"
TENANTS = 1000
LOGIN = "bench_auth"
SECRET = "bench-secret-" + "0123456789abcdef" * 3
ISSUER = "https://idp.bench.example/"
AUDIENCE = "https://api.bench.example"
TTL = 3 * 3600

# Run by the baseline's own code (PYTHONPATH points at its tree).
BASELINE_INSTALL = """
import sys
import pgtenancy
from pgtenancy.migrate import migrate
assert pgtenancy.__file__.startswith(sys.argv[2]), pgtenancy.__file__
migrate(sys.argv[1])
"""

# One round of one case, server side. {function}: the authenticating function; v_tokens and
# v_repeat: each token of the array in turn, the whole array v_repeat times.
LOOP = """
do $bench$
declare
    v_tokens text[] := {tokens};
    v_token text;
    v_start timestamptz;
begin
    v_start := clock_timestamp();
    for i in 1..{repeat} loop
        foreach v_token in array v_tokens loop
            perform * from {function}(v_token);
        end loop;
    end loop;
    perform pg_catalog.set_config(
        'bench.ms', (extract(epoch from clock_timestamp() - v_start) * 1000)::text, false
    );
end
$bench$
"""

TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_.-]+$")


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def cpu_ns(pid: int) -> int | None:
    """CPU time of a local backend in nanoseconds (Linux), None when it cannot be read."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def create_fresh(base: str, name: str, rebuild: bool) -> tuple[str, bool]:
    """The URL of database ``name``, and whether it must be built (it did not exist, or rebuild)."""
    url = testing.with_dbname(base, name)
    with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists and not rebuild:
            with psycopg.connect(url) as db:
                n = db.execute("select count(*) from tenancy.tenants").fetchone()
            if n == (TENANTS,):
                return url, False
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return url, True


def populate(url: str) -> None:
    """The login, the HS256 secret and 1,000 tenants, each with its owner, through the functions."""
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = %s", (LOGIN,)).fetchone():
            conn.execute(f"create role {LOGIN} login in role tenancy_app")
        conn.execute("set role tenancy_admin")
        conn.execute("select tenancy.configure_jwt(%s)", (SECRET,))
        with conn.transaction():
            for n in range(1, TENANTS + 1):
                conn.execute(
                    "select tenancy.create_tenant(%s, %s, %s)",
                    (f"bench-{n}", f"Bench {n}", f"auth0|bench-{n}"),
                )
        conn.execute("reset role")
        conn.execute("vacuum (analyze) tenancy.tenants, tenancy.memberships")


def tenant_ids(url: str) -> dict[int, str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select substr(slug, 7)::int, id::text from tenancy.tenants where slug like 'bench-%'"
        ).fetchall()
    return {int(n): str(t) for n, t in rows}


def prepare_baseline(base: str, ref: str, rebuild: bool) -> str:
    commit = git("rev-parse", "--short", f"{ref}^{{commit}}")
    url, build = create_fresh(base, f"{DB}_base_{commit}", rebuild)
    if not build:
        print(f"reusing the baseline database ({ref} = {commit})", flush=True)
        return url
    print(f"building the baseline database: {ref} ({commit}), {TENANTS:,} tenants", flush=True)
    with tempfile.TemporaryDirectory(prefix="pgtenancy-baseline-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", commit],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = dict(os.environ, PYTHONPATH=tmp)
        env.pop("PYTHONSAFEPATH", None)
        subprocess.run(
            [sys.executable, "-c", BASELINE_INSTALL, url, tmp], check=True, cwd=tmp, env=env
        )
    populate(url)
    return url


def prepare_head(base: str, rebuild: bool) -> str:
    url, build = create_fresh(base, DB, rebuild)
    if build:
        print(f"building the HEAD database: {TENANTS:,} tenants", flush=True)
    migrate(url)
    if build:
        populate(url)
    else:
        print("reusing the HEAD database (migrated to this checkout)", flush=True)
    return url


def jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
    out: dict[str, Any] = algorithm.to_jwk(key, as_dict=True)
    out.update(kid=kid, use="sig", alg=alg)
    return out


@dataclass
class Issuer:
    """The trusted issuer of this run: its keys, and a minter of distinct tokens."""

    rsa_key: Any = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    ec_key: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    minted: int = 0

    def install(self, url: str) -> None:
        jwks = {
            "keys": [
                jwk(self.rsa_key.public_key(), f"rsa-{self.run}", "RS256"),
                jwk(self.ec_key.public_key(), f"ec-{self.run}", "ES256"),
            ]
        }
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("set role tenancy_admin")
            conn.execute(
                "select tenancy.configure_issuer(%s, %s, p_algorithms => %s)",
                (ISSUER, [AUDIENCE], ["RS256", "ES256"]),
            )
            conn.execute("select tenancy.set_jwks(%s, %s::jsonb)", (ISSUER, Json(jwks)))

    def token(self, alg: str, n: int, tenant_id: str) -> str:
        self.minted += 1
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": f"auth0|bench-{n}",
            "tenant_id": tenant_id,
            "iat": now,
            "exp": now + TTL,
            "jti": f"{self.run}-{self.minted}",
        }
        key, kid = (self.rsa_key, "rsa") if alg == "RS256" else (self.ec_key, "ec")
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": f"{kid}-{self.run}"})


@dataclass
class Case:
    name: str
    conn: str  # "base" or "head": the session it runs in
    function: str  # the authenticating function
    calls: int  # server-side calls per round
    client_calls: int  # client transactions per round (0: not measured end to end)
    same: str | None = None  # the token used for every call, else fresh tokens from `fresh`
    fresh: Any = None  # callable(count) -> list of new tokens
    warm: int = 2  # calls in the warm-up, server side
    server_ms: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)


def literal(tokens: list[str]) -> str:
    """``tokens`` as a text[] literal (JWTs need no quoting; an API key might)."""
    elements = []
    for t in tokens:
        assert "$bench$" not in t, t
        elements.append(t if TOKEN_CHARS.match(t) else '"' + re.sub(r'(["\\])', r"\\\1", t) + '"')
    return "'{" + ",".join(elements).replace("'", "''") + "}'::text[]"


def server_round(conn: psycopg.Connection[Any], pid: int, case: Case, count: int) -> None:
    if case.same is not None:
        tokens, repeat = [case.same], count
    else:
        tokens, repeat = case.fresh(count), 1
    loop = LOOP.format(tokens=literal(tokens), repeat=repeat, function=case.function)
    before = cpu_ns(pid)
    conn.execute(loop.encode())
    after = cpu_ns(pid)
    row = conn.execute("select current_setting('bench.ms')::float8").fetchone()
    assert row is not None
    case.server_ms.append(float(row[0]) / count)
    if before is not None and after is not None:
        case.server_cpu.append((after - before) / 1e6 / count)


def client_round(conn: psycopg.Connection[Any], pid: int, case: Case, count: int) -> None:
    tokens = [case.same] * count if case.same is not None else case.fresh(count)
    query = f"select * from {case.function}(%s)"
    before = cpu_ns(pid)
    start = time.perf_counter()
    for token in tokens:
        if case.function == "select 1":
            conn.execute("select 1", prepare=True)
        else:
            conn.execute(query, (token,), prepare=True)
        conn.commit()
    elapsed = time.perf_counter() - start
    after = cpu_ns(pid)
    case.client_ms.append(elapsed * 1000 / count)
    if before is not None and after is not None:
        case.client_cpu.append((after - before) / 1e6 / count)


def api_key_case(url: str, owner_token: str, calls: int, client_calls: int) -> Case | str:
    """The API-key case when tenancy.authenticate_api_key exists, else why it is left out."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select to_regprocedure('tenancy.authenticate_api_key(text)') is not null"
        ).fetchone()
        if row != (True,):
            return "not installed"
        try:
            conn.execute("select * from tenancy.authenticate(%s)", (owner_token,))
            cur = conn.execute("select * from tenancy.create_api_key('bench', 'member')")
            names = [d.name for d in cur.description or []]
            created = cur.fetchone()
            conn.commit()
        except psycopg.Error as error:
            return f"installed, but no key could be made: {error}".splitlines()[0]
    assert created is not None
    values = dict(zip(names, created, strict=True))
    key = values.get("key") or values.get("api_key")
    if not isinstance(key, str):
        key = next((v for v in created if isinstance(v, str) and len(v) >= 32), None)
    if not isinstance(key, str):
        return f"installed, but create_api_key returned no key: columns {names}"
    return Case(
        "(f) API key, tenancy.authenticate_api_key",
        "head",
        "tenancy.authenticate_api_key",
        calls,
        client_calls,
        same=key,
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "11")))
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the calls per round")
    ap.add_argument("--baseline-ref", default="fbd6f7d", help="the code of today's HS256 path")
    ap.add_argument("--rebuild", action="store_true", help="rebuild both databases")
    args = ap.parse_args()

    def scaled(n: int) -> int:
        return max(1, int(n * args.scale))

    base = cluster.database_url()
    base_url = prepare_baseline(base, args.baseline_ref, args.rebuild)
    head_url = prepare_head(base, args.rebuild)
    issuer = Issuer()
    issuer.install(head_url)
    base_ids, head_ids = tenant_ids(base_url), tenant_ids(head_url)
    owner = "auth0|bench-1"

    def fresh(alg: str) -> Any:
        counter = iter(range(10**9))

        def mint(count: int) -> list[str]:
            out = []
            for _ in range(count):
                n = next(counter) % TENANTS + 1  # each token another tenant's owner
                out.append(issuer.token(alg, n, head_ids[n]))
            return out

        return mint

    def in_turn(tokens: list[str]) -> Any:
        position = itertools.cycle(tokens)
        return lambda count: [next(position) for _ in range(count)]

    # Every tenant's owner with a token of their own, verified in the warm-up, then used in
    # turn: what a cache shared by many users gives (slots are picked by hash, two candidates each).
    users = [issuer.token("RS256", n, head_ids[n]) for n in range(1, TENANTS + 1)]
    cases = [
        Case(f"(a) HS256, baseline {args.baseline_ref}", "base", "tenancy.authenticate",
             scaled(400), scaled(100), same=tenant_token(SECRET, base_ids[1], owner, ttl=TTL)),
        Case("(b) HS256, HEAD", "head", "tenancy.authenticate", scaled(400), scaled(100),
             same=tenant_token(SECRET, head_ids[1], owner, ttl=TTL)),
        Case("(c) RS256 cached, HEAD", "head", "tenancy.authenticate", scaled(400), scaled(100),
             same=issuer.token("RS256", 1, head_ids[1])),
        Case(f"(c2) RS256 cached, {TENANTS:,} users in turn, HEAD", "head",
             "tenancy.authenticate", scaled(TENANTS), scaled(100), fresh=in_turn(users),
             warm=TENANTS),
        Case("(d) RS256 cold, HEAD", "head", "tenancy.authenticate", scaled(60), scaled(20),
             fresh=fresh("RS256")),
        Case("(e) ES256 cached, HEAD", "head", "tenancy.authenticate", scaled(400), scaled(100),
             same=issuer.token("ES256", 1, head_ids[1])),
        Case("(e) ES256 cold, HEAD", "head", "tenancy.authenticate", scaled(10), scaled(5),
             fresh=fresh("ES256")),
    ]  # fmt: skip
    api = api_key_case(head_url, cases[1].same or "", scaled(400), scaled(100))
    if isinstance(api, Case):
        cases.append(api)
    floor = {
        side: Case(f"BEGIN; SELECT 1; COMMIT ({side})", side, "select 1", 0, scaled(100),
                   same="-")
        for side in ("base", "head")
    }  # fmt: skip

    urls = {"base": as_login(base_url, LOGIN), "head": as_login(head_url, LOGIN)}
    server = {side: psycopg.connect(url, autocommit=True) for side, url in urls.items()}
    client = {side: psycopg.connect(url) for side, url in urls.items()}
    try:
        version = server["head"].execute("show server_version").fetchone()[0]  # type: ignore[index]
        pids = {
            (kind, side): c.execute("select pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            for kind, conns in (("server", server), ("client", client))
            for side, c in conns.items()
        }
        client["base"].rollback()
        client["head"].rollback()
        # Each case answers what it should before it is timed, and the warm-up compiles the
        # functions and verifies the cached cases' tokens once.
        expected = {"base": base_ids[1], "head": head_ids[1]}
        for case in cases:
            token = case.same if case.same is not None else case.fresh(1)[0]
            conn = client[case.conn]
            row = conn.execute(f"select * from {case.function}(%s)", (token,)).fetchone()
            conn.commit()
            assert row is not None
            if case.same is not None and case.function == "tenancy.authenticate":
                assert str(row[0]) == expected[case.conn], (case.name, row)
            server_round(server[case.conn], pids[("server", case.conn)], case, case.warm)
            client_round(client[case.conn], pids[("client", case.conn)], case, 2)
            for values in (case.server_ms, case.server_cpu, case.client_ms, case.client_cpu):
                values.clear()

        print(f"machine: {machine()}; PostgreSQL {version}", flush=True)
        load = os.getloadavg()
        print(f"load average at start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}", flush=True)
        print(f"API key: {api if isinstance(api, str) else 'measured'}", flush=True)
        with psycopg.connect(head_url) as conn:  # as the superuser: auth_config is private
            row = conn.execute("select cache_slots from tenancy.auth_config").fetchone()
        assert row is not None

        # Each token has two candidate slots (two parts of its hash) and takes one holding
        # nothing current: count the tokens whose two candidates are both wanted by others too,
        # the ones that may evict each other (an upper bound on what case (c2) re-verifies).
        def candidates(token: str) -> list[int]:
            digest = hashlib.sha256(token.encode()).digest()
            return [
                (int.from_bytes(digest[i : i + 4], "big") & 0x7FFFFFFF) % row[0] for i in (0, 4)
            ]

        wanted: dict[int, int] = {}
        for t in users:
            for slot in set(candidates(t)):
                wanted[slot] = wanted.get(slot, 0) + 1
        crowded = sum(1 for t in users if all(wanted[s] > 1 for s in candidates(t)))
        print(
            f"verified-token cache: {row[0]:,} slots, two candidates per token; of the "
            f"{TENANTS:,} users' tokens, {crowded} have both candidates wanted by another token "
            "(they may evict each other and be verified again)",
            flush=True,
        )
        print(
            f"{args.rounds} rounds; calls per round, server / client: "
            + ", ".join(f"{c.name.split(',')[0]} {c.calls} / {c.client_calls}" for c in cases),
            flush=True,
        )
        for r in range(args.rounds):
            for case in cases:
                server_round(server[case.conn], pids[("server", case.conn)], case, case.calls)
                if case.client_calls:
                    client_round(
                        client[case.conn], pids[("client", case.conn)], case, case.client_calls
                    )
            for side, case in floor.items():
                client_round(client[side], pids[("client", side)], case, case.client_calls)
            print(
                f"round {r + 1}: "
                + ", ".join(
                    f"{c.name.split(',')[0]} {c.server_ms[-1] * 1000:.0f}"
                    + (f"/{c.server_cpu[-1] * 1000:.0f}" if c.server_cpu else "")
                    for c in cases
                )
                + " µs (clock/CPU)",
                flush=True,
            )
        print(f"tokens minted: {issuer.minted:,}; load average at end: "
              + " ".join(f"{v:.1f}" for v in os.getloadavg()))  # fmt: skip
    finally:
        for conns in (server, client):
            for c in conns.values():
                c.close()

    ref = cases[0]
    with_cpu = all(c.server_cpu for c in cases)
    print()
    print(f"Server side, one session, one transaction per round (median of {args.rounds} rounds)")
    print()
    head = "| case | µs per call, server clock | ratio to (a) |"
    if with_cpu:
        head += " µs per call, backend CPU | ratio to (a) |"
    print(head)
    print("| --- | ---: | ---: |" + (" ---: | ---: |" if with_cpu else ""))
    for case in cases:
        ms = median(case.server_ms)
        line = f"| {case.name} | {ms * 1000:,.0f} | {ms / median(ref.server_ms):.2f} |"
        if with_cpu:
            cpu = median(case.server_cpu)
            line += f" {cpu * 1000:,.0f} | {cpu / median(ref.server_cpu):.2f} |"
        print(line)
    if isinstance(api, str):
        print(f"| (f) API key, tenancy.authenticate_api_key | {api} | | |")
    print()
    print(
        "End to end from the client: BEGIN; SELECT … FROM authenticate($1); COMMIT per token "
        f"(median of {args.rounds} rounds)"
    )
    print()
    print("| case | µs per transaction, client clock | ratio to (a) | backend CPU µs | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for case in [*cases, *floor.values()]:
        if not case.client_calls:
            continue
        ms, cpu = median(case.client_ms), median(case.client_cpu)
        print(
            f"| {case.name} | {ms * 1000:,.0f} | {ms / median(ref.client_ms):.2f} | "
            f"{cpu * 1000:,.0f} | {cpu / median(ref.client_cpu):.2f} |"
        )
    print()
    cached, cold = cases[2], cases[4]
    for label, attr in (("server clock", "server_ms"), ("backend CPU", "server_cpu")):
        if not getattr(ref, attr):
            continue
        a = median(getattr(ref, attr))
        c, d = median(getattr(cached, attr)), median(getattr(cold, attr))
        verdicts = [
            f"cached RS256 {c * 1000:,.0f} µs <= today's HS256 {a * 1000:,.0f} µs: "
            + ("met" if c <= a else "missed"),
            f"cold RS256 {d:.2f} ms < 5 ms: " + ("met" if d < 5 else "missed"),
        ]
        if isinstance(api, Case):
            k = median(getattr(api, attr))
            verdicts.append(
                f"API key {k * 1000:,.0f} µs <= {a * 1000:,.0f} µs: "
                + ("met" if k <= a else "missed")
            )
        print(f"targets ({label}): " + "; ".join(verdicts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
