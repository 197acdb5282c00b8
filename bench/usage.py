"""Usage metering benchmark: tracking, enforcing and checking usage against bare SQL baselines.

One fresh database (``pgtenancy_bench_usage``, rebuilt on every run, dropped at the end), two
tenants, each with a member ``u-member``:

* ``usage-bench``: meters ``api_calls`` and ``tokens`` (sum, monthly), a tier whose hard caps are
  high enough never to refuse, and 10,000 customers ``c1`` … ``c10000`` subscribed to it;
* ``usage-log``: meter ``api_calls``, the same kind of tier, 1,000 customers.

Plain copies of the tables the baselines write (``bench.*``: no row level security, no policy, no
trigger) are created next to them. Measured, in this order:

1. ``tenancy.track_usage_batch`` throughput: batches of 1,000 events (customers among the first
   1,000, either meter, a unique idempotency key each, an ``occurred_at`` of the last ten
   minutes), each batch one transaction ``BEGIN; tenancy.authenticate(member token);
   track_usage_batch; COMMIT`` as a ``tenancy_app`` login, so row level security applies.
   Baselines, the same documents and transaction shape on the plain tables: one statement that
   parses the events, inserts them and upserts the counters grouped by customer, meter and
   period; and the same statement also inserting the idempotency keys. Rounds alternate
   (baseline, keyed baseline, pgtenancy), 50 batches each; events per second, median of the
   rounds (target >= 20,000 events/s).
2. pgbench ``-M prepared -c 32 -j 2`` as a ``tenancy_service`` login, a random customer of 10,000
   per transaction: ``BEGIN; tenancy.set_context(tenant, 'u-member'); tenancy.track_usage(
   'api_calls', customer, 1, p_enforce => true); COMMIT`` against the bare conditional ``UPDATE``
   of a plain 10,000-row counter table (``used = used + 1 … and used + 1 <= cap``) with the same
   context call, and without it. Runs alternate; the median of the per-round ratios
   pgtenancy / bare TPS is reported (target >= 0.8).
3. ``tenancy.check_usage_enforcement`` latency with 1,000 and then with 10,000,000 events of the
   tenant in ``tenancy.usage_events`` (written by a set-based ``INSERT`` as the superuser into
   twelve monthly partitions, the counters rebuilt from them, VACUUM (ANALYZE) and CHECKPOINT
   before timing): pgbench ``-c 1``, ``BEGIN; set_context; K × check (random customer);
   COMMIT`` against the same transaction without the checks; the latency of one check is the
   difference divided by K, median of the rounds. Ratio 10M / 1k (target <= 1.2).

Usage: python bench/usage.py [--batches 50] [--batch-rounds 3] [--seconds 25] [--rounds 2]
       [--check-rounds 3] [--checks 10] [--events 10000000] [--keep]
Uses ``$DATABASE_URL``'s server, else the throwaway cluster; not part of ``make test``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import bindir, machine  # noqa: E402  (bench/run.py)

from pgtenancy import testing  # noqa: E402
from pgtenancy.migrate import migrate  # noqa: E402
from pgtenancy.testing import as_login, cluster  # noqa: E402
from pgtenancy.testing.tokens import tenant_token  # noqa: E402

DB = "pgtenancy_bench_usage"
APP_LOGIN = "bench_usage_app"
SERVICE_LOGIN = "bench_usage_service"
SECRET = "bench-usage-secret-" + "0123456789abcdef" * 3
MEMBER = "u-member"
CUSTOMERS = 10_000
BATCH_CUSTOMERS = 1_000
LOG_CUSTOMERS = 1_000
BATCH_SIZE = 1_000
HUGE_CAP = 10**15
USAGE_TABLES = (
    "meters", "customers", "tiers", "subscriptions", "usage_events", "usage_counters",
    "usage_idempotency_keys", "usage_unique_values", "usage_reservations", "usage_alerts",
)  # fmt: skip

# Plain copies of what the baselines write: the same columns, keys and partitioning as
# pgtenancy's tables, without row level security, policies or triggers.
PLAIN_SQL = """
create schema bench;
create table bench.customers (like tenancy.customers including defaults including indexes);
create table bench.meters (like tenancy.meters including defaults including indexes);
create sequence bench.events_id_seq as bigint cache 64;
create table bench.events (
    tenant_id uuid not null,
    id bigint not null default nextval('bench.events_id_seq'),
    customer_id uuid not null,
    meter_id uuid not null,
    period_start timestamptz not null,
    value numeric not null,
    properties jsonb not null default '{}',
    occurred_at timestamptz not null,
    received_at timestamptz not null default now(),
    idempotency_key text,
    reservation_id uuid,
    primary key (tenant_id, occurred_at, id)
) partition by range (occurred_at);
create table bench.events_default partition of bench.events default;
create table bench.counters (like tenancy.usage_counters including defaults including indexes);
create table bench.idempotency_keys (
    like tenancy.usage_idempotency_keys including defaults including indexes
);
create table bench.counters_bare (
    customer text primary key,
    used numeric not null default 0,
    cap numeric not null
);
"""

# One statement per batch: parse the events, log them, add them to the counters (per customer,
# meter and calendar month, as pgtenancy's periods are for subscriptions anchored on the first
# of a month at midnight UTC); {keys} is empty or a CTE that also stores the idempotency keys.
BASELINE_SQL = """
with e as (
    select c.id as customer_id, m.id as meter_id, coalesce((d ->> 'value')::numeric, 1) as value,
        coalesce(d -> 'properties', '{{}}') as properties, d ->> 'idempotency_key' as key,
        (d ->> 'occurred_at')::timestamptz as occurred_at,
        date_trunc('month', (d ->> 'occurred_at')::timestamptz, 'UTC') as period_start
    from jsonb_array_elements(%(doc)s::jsonb) as d
    join bench.customers as c on c.tenant_id = %(t)s and c.external_id = d ->> 'customer'
    join bench.meters as m on m.tenant_id = %(t)s and m.key = d ->> 'meter'
),{keys}
logged as (
    insert into bench.events (
        tenant_id, customer_id, meter_id, period_start, value, properties, occurred_at,
        idempotency_key
    )
    select %(t)s, customer_id, meter_id, period_start, value, properties, occurred_at, key from e
)
insert into bench.counters as c (
    tenant_id, customer_id, meter_id, period_start, period_end, used, events, latest_at
)
select %(t)s, customer_id, meter_id, period_start, period_start + interval '1 month', sum(value),
    count(*), max(occurred_at)
from e
group by customer_id, meter_id, period_start
on conflict (tenant_id, customer_id, meter_id, period_start) do update
set used = c.used + excluded.used, events = c.events + excluded.events,
    latest_at = greatest(c.latest_at, excluded.latest_at), updated_at = excluded.updated_at
"""

KEYS_CTE = """
keys as (
    insert into bench.idempotency_keys (tenant_id, customer_id, key, meter_id, outcome, value)
    select %(t)s, customer_id, key, meter_id, 'recorded', value from e
    on conflict do nothing
),"""

SETTINGS = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "shared_buffers",
    "wal_level",
    "max_wal_size",
)


@dataclass
class Tenants:
    batch: str
    log: str


def say(text: str) -> None:
    print(text, flush=True)


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def prepare() -> tuple[str, Tenants]:
    base = cluster.database_url()
    url = testing.with_dbname(base, DB)
    with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(DB)))
    say(f"building {DB}: {CUSTOMERS:,} + {LOG_CUSTOMERS:,} subscribed customers")
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set timezone = 'UTC'")
        for login, role in ((APP_LOGIN, "tenancy_app"), (SERVICE_LOGIN, "tenancy_service")):
            if not conn.execute("select 1 from pg_roles where rolname = %s", (login,)).fetchone():
                conn.execute(f"create role {login} login in role {role}")
        conn.execute("set role tenancy_admin")
        conn.execute("select tenancy.configure_jwt(%s)", (SECRET,))
        # The monthly partitions of the usage log, as the daily job makes them.
        conn.execute("select tenancy.ensure_usage_partitions()")
        conn.execute("reset role")
        # Subscriptions start on the first of the month eleven months ago, at midnight UTC: the
        # periods are then the calendar months, which the baselines and the generated log use.
        anchor = conn.execute(
            "select date_trunc('month', now(), 'UTC') - interval '11 months'"
        ).fetchone()[0]  # type: ignore[index]
        ids = []
        for slug, customers, meters in (
            ("usage-bench", CUSTOMERS, ("api_calls", "tokens")),
            ("usage-log", LOG_CUSTOMERS, ("api_calls",)),
        ):
            tenant = conn.execute(
                "select tenancy.create_tenant(%s, %s, 'u-owner')", (slug, slug.title())
            ).fetchone()[0]  # type: ignore[index]
            ids.append(str(tenant))
            conn.execute(
                "insert into tenancy.memberships (tenant_id, user_id, role) "
                "values (%s, %s, 'member')",
                (tenant, MEMBER),
            )
            with conn.transaction():
                conn.execute("select from tenancy.set_context(%s, 'u-owner')", (tenant,))
                for meter in meters:
                    conn.execute("select tenancy.create_meter(%s)", (meter,))
                conn.execute(
                    "select tenancy.create_tier('bench', 10, %s)",
                    (json.dumps(dict.fromkeys(meters, HUGE_CAP)),),
                )
                conn.execute(
                    "select count(tenancy.subscribe('c' || n, 'bench', %s)) "
                    "from generate_series(1, %s) as n",
                    (anchor, customers),
                )
        tenants = Tenants(*ids)
        conn.execute(PLAIN_SQL)
        conn.execute(
            "insert into bench.customers select * from tenancy.customers where tenant_id = %s",
            (tenants.batch,),
        )
        conn.execute(
            "insert into bench.meters select * from tenancy.meters where tenant_id = %s",
            (tenants.batch,),
        )
        conn.execute(
            "insert into bench.counters_bare (customer, cap) "
            "select 'c' || n, %s from generate_series(1, %s) as n",
            (HUGE_CAP, CUSTOMERS),
        )
        # The baseline's events land in the same monthly partitions as tenancy.usage_events'.
        bounds = conn.execute(
            "select c.relname, pg_get_expr(c.relpartbound, c.oid) from pg_inherits as i "
            "join pg_class as c on c.oid = i.inhrelid "
            "where i.inhparent = 'tenancy.usage_events'::regclass "
            "and c.relname <> 'usage_events_default'"
        ).fetchall()
        for rel, bound in bounds:
            conn.execute(
                sql.SQL("create table bench.{} partition of bench.events {}").format(
                    sql.Identifier("events_" + rel.removeprefix("usage_events_")), sql.SQL(bound)
                )
            )
        conn.execute(f"grant usage on schema bench to {APP_LOGIN}, {SERVICE_LOGIN}")
        conn.execute(f"grant select on bench.customers, bench.meters to {APP_LOGIN}")
        conn.execute(
            f"grant select, insert, update on bench.events, bench.counters, "
            f"bench.idempotency_keys to {APP_LOGIN}"
        )
        conn.execute(f"grant usage on sequence bench.events_id_seq to {APP_LOGIN}")
        conn.execute(f"grant select, update on bench.counters_bare to {SERVICE_LOGIN}")
        conn.execute("vacuum (analyze)")
    return url, tenants


def rls_state(conn: psycopg.Connection[Any]) -> str:
    """How many of the usage tables have row level security forced and policies."""
    rows = conn.execute(
        "select c.relname, c.relrowsecurity and c.relforcerowsecurity, "
        "(select count(*) from pg_policy as p where p.polrelid = c.oid) "
        "from pg_class as c where c.relnamespace = 'tenancy'::regnamespace "
        "and c.relname = any(%s)",
        (list(USAGE_TABLES),),
    ).fetchall()
    forced = sum(1 for _, f, _ in rows if f)
    with_policies = sum(1 for _, _, n in rows if n)
    return (
        f"row level security enabled and forced on {forced} of {len(USAGE_TABLES)} usage tables, "
        f"policies on {with_policies}"
    )


# -- 1. track_usage_batch throughput ------------------------------------------------------------

ENDPOINTS = ("/v1/items", "/v1/items/{id}", "/v1/search", "/v1/export", "/v1/users")


def make_batch(rng: random.Random) -> str:
    """A JSON array of BATCH_SIZE events with a fresh idempotency key each."""
    now = dt.datetime.now(dt.UTC)
    events = []
    for _ in range(BATCH_SIZE):
        meter = rng.choice(("api_calls", "tokens"))
        events.append(
            {
                "meter": meter,
                "customer": f"c{rng.randint(1, BATCH_CUSTOMERS)}",
                "value": 1 if meter == "api_calls" else rng.randint(1, 500),
                "properties": {
                    "endpoint": rng.choice(ENDPOINTS),
                    "region": rng.choice(("eu", "us")),
                },
                "idempotency_key": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "occurred_at": (now - dt.timedelta(seconds=rng.uniform(0, 600))).isoformat(),
            }
        )
    return json.dumps(events)


def timed_batches(
    conn: psycopg.Connection[Any], token: str, tenant: str, docs: list[str], kind: str
) -> float:
    """Seconds to send every batch of docs, one transaction each, by the client's clock."""
    statement = {
        "pgtenancy": "select count(*) filter (where outcome = 'recorded') "
        "from tenancy.track_usage_batch(%(doc)s::jsonb)",
        "baseline": BASELINE_SQL.format(keys=""),
        "keyed": BASELINE_SQL.format(keys=KEYS_CTE),
    }[kind]
    started = time.perf_counter()
    for doc in docs:
        with conn.transaction():
            conn.execute("select from tenancy.authenticate(%s)", (token,))
            cur = conn.execute(statement, {"doc": doc, "t": tenant})
            if kind == "pgtenancy":
                recorded = cur.fetchone()
                assert recorded == (BATCH_SIZE,), recorded
    return time.perf_counter() - started


def batch_throughput(
    url: str, tenants: Tenants, batches: int, rounds: int
) -> dict[str, list[float]]:
    rng = random.Random(11)
    token = tenant_token(SECRET, tenants.batch, MEMBER, ttl=7200)
    rates: dict[str, list[float]] = {"baseline": [], "keyed": [], "pgtenancy": []}
    with psycopg.connect(as_login(url, APP_LOGIN)) as conn, psycopg.connect(url) as admin:
        say(f"warm-up: 5 batches of each kind (load average {load()})")
        for kind in rates:
            timed_batches(conn, token, tenants.batch, [make_batch(rng) for _ in range(5)], kind)
        for r in range(rounds):
            for kind, values in rates.items():
                docs = [make_batch(rng) for _ in range(batches)]
                seconds = timed_batches(conn, token, tenants.batch, docs, kind)
                values.append(batches * BATCH_SIZE / seconds)
            say(
                f"batch round {r + 1}: "
                + ", ".join(f"{kind} {v[-1]:,.0f}" for kind, v in rates.items())
                + f" events/s (load average {load()})"
            )
        # Everything counted exactly once, in the log and in the counters, on both sides.
        n = (rounds * batches + 5) * BATCH_SIZE
        row = admin.execute(
            "select (select count(*) from tenancy.usage_events where tenant_id = %(t)s), "
            "(select sum(events) from tenancy.usage_counters where tenant_id = %(t)s), "
            "(select count(*) from tenancy.usage_idempotency_keys where tenant_id = %(t)s), "
            "(select count(*) from bench.events), (select sum(events) from bench.counters), "
            "(select count(*) from bench.idempotency_keys)",
            {"t": tenants.batch},
        ).fetchone()
        assert row == (n, n, n, 2 * n, 2 * n, n), (row, n)
    return rates


# -- 2. track_usage(p_enforce => true) under pgbench ---------------------------------------------


@dataclass
class Result:
    tps: float
    latency_ms: float
    transactions: int


def pgbench(conninfo: str, path: Path, seconds: int, clients: int, threads: int) -> Result:
    cmd = [
        str(bindir() / "pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", str(threads),
        "-T", str(seconds), "-f", str(path), conninfo,
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0 or "failed transactions: 0 " not in res.stdout:
        raise SystemExit(f"pgbench failed for {path.name}:\n{res.stdout}\n{res.stderr}")

    def number(pattern: str) -> float:
        found = re.search(pattern, res.stdout)
        assert found is not None, (pattern, res.stdout)
        return float(found.group(1))

    return Result(
        number(r"tps = ([0-9.]+)"),
        number(r"latency average = ([0-9.]+) ms"),
        int(number(r"number of transactions actually processed: ([0-9]+)")),
    )


def enforce_scripts(directory: Path, tenant: str) -> dict[str, Path]:
    context = f"select tenant_id from tenancy.set_context('{tenant}', '{MEMBER}');\n"
    track = (
        "select outcome from tenancy.track_usage('api_calls', 'c' || :c, 1, p_enforce => true);\n"
    )
    bare = (
        "update bench.counters_bare set used = used + 1 "
        "where customer = 'c' || :c and used + 1 <= cap;\n"
    )
    head = f"\\set c random(1, {CUSTOMERS})\nbegin;\n"
    texts = {
        "pgtenancy": head + context + track + "commit;\n",
        "bare": head + context + bare + "commit;\n",
        "bare without context": head + bare + "commit;\n",
    }
    paths = {}
    for i, (name, text) in enumerate(texts.items()):
        paths[name] = directory / f"enforce{i}.sql"
        paths[name].write_text(text)
    return paths


def enforced_tps(
    url: str, tenants: Tenants, directory: Path, seconds: int, rounds: int, warmup: int
) -> dict[str, list[float]]:
    login = as_login(url, SERVICE_LOGIN)
    paths = enforce_scripts(directory, tenants.batch)
    with psycopg.connect(url, autocommit=True) as admin:
        before = admin.execute(
            "select count(*) from tenancy.usage_events where tenant_id = %s "
            "and idempotency_key is null",
            (tenants.batch,),
        ).fetchone()[0]  # type: ignore[index]
        # Every customer's counter of this period exists before anything is timed.
        admin.execute(
            "insert into tenancy.usage_counters (tenant_id, customer_id, meter_id, period_start, "
            "period_end) select c.tenant_id, c.id, m.id, p.period_start, p.period_end "
            "from tenancy.customers as c join tenancy.subscriptions as s "
            "on s.tenant_id = c.tenant_id and s.customer_id = c.id "
            "join tenancy.meters as m on m.tenant_id = c.tenant_id and m.key = 'api_calls' "
            "cross join tenancy.usage_period(m.reset_period, s.period_anchor, now()) as p "
            "where c.tenant_id = %s on conflict do nothing",
            (tenants.batch,),
        )
        admin.execute("vacuum (analyze) tenancy.usage_counters, bench.counters_bare")
    say(f"warm-up: {warmup} s per script (load average {load()})")
    processed = dict.fromkeys(paths, 0)
    for name, path in paths.items():
        processed[name] += pgbench(login, path, warmup, 32, 2).transactions
    tps: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(rounds):
        for name, path in paths.items():
            result = pgbench(login, path, seconds, 32, 2)
            tps[name].append(result.tps)
            processed[name] += result.transactions
        say(
            f"pgbench round {r + 1}: "
            + ", ".join(f"{name} {v[-1]:,.0f}" for name, v in tps.items())
            + f" TPS (load average {load()})"
        )
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            "select (select count(*) from tenancy.usage_events where tenant_id = %(t)s "
            "and idempotency_key is null), "
            "(select count(*) from tenancy.usage_events as e join tenancy.meters as m "
            "on m.tenant_id = e.tenant_id and m.id = e.meter_id "
            "where e.tenant_id = %(t)s and m.key = 'api_calls'), "
            "(select sum(c.events) from tenancy.usage_counters as c join tenancy.meters as m "
            "on m.tenant_id = c.tenant_id and m.id = c.meter_id "
            "where c.tenant_id = %(t)s and m.key = 'api_calls'), "
            "(select sum(used) from bench.counters_bare)",
            {"t": tenants.batch},
        ).fetchone()
        assert row is not None
        recorded, logged, counted, bare = row
        # Every transaction recorded its event (no refusal, nothing lost), logged and counted.
        assert recorded - before == processed["pgtenancy"], (recorded, before, processed)
        assert logged == counted, (logged, counted)
        bare_total = processed["bare"] + processed["bare without context"]
        assert bare == bare_total, (bare, bare_total)
    return tps


# -- 3. check_usage_enforcement with a small and a large log ------------------------------------

# Events of the log tenant for one month, numbered lo .. hi: customers in turn, occurred_at
# increasing through the month (up to now for the current one), values 1 to 5.
GENERATE_SQL = """
insert into tenancy.usage_events (
    tenant_id, customer_id, meter_id, period_start, value, occurred_at
)
select %(t)s, c.ids[1 + g %% array_length(c.ids, 1)], %(m)s, p.m0, 1 + g %% 5,
    p.m0 + (least(p.m0 + interval '1 month', now()) - p.m0)
    * ((g - %(lo)s + 0.5) / (%(hi)s - %(lo)s + 1))::float8
from generate_series(%(lo)s::bigint, %(hi)s::bigint) as g
cross join (select date_trunc('month', now(), 'UTC') - make_interval(months => %(back)s) as m0) as p
cross join (
    select array_agg(id order by external_id) as ids from tenancy.customers where tenant_id = %(t)s
) as c
"""

REBUILD_SQL = """
insert into tenancy.usage_counters as c (
    tenant_id, customer_id, meter_id, period_start, period_end, used, events, latest_at
)
select tenant_id, customer_id, meter_id, period_start, period_start + interval '1 month',
    sum(value), count(*), max(occurred_at)
from tenancy.usage_events
where tenant_id = %(t)s
group by tenant_id, customer_id, meter_id, period_start
on conflict (tenant_id, customer_id, meter_id, period_start) do update
set used = excluded.used, events = excluded.events, latest_at = excluded.latest_at
"""


def fill_log(url: str, tenant: str, total: int) -> float:
    """Grows the log tenant's events to total (spread over twelve months when more than the
    1,000 of the small log), rebuilds its counters; returns the seconds the INSERTs took."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set timezone = 'UTC'")
        meter = conn.execute(
            "select id from tenancy.meters where tenant_id = %s and key = 'api_calls'", (tenant,)
        ).fetchone()[0]  # type: ignore[index]
        have = conn.execute(
            "select count(*) from tenancy.usage_events where tenant_id = %s", (tenant,)
        ).fetchone()[0]  # type: ignore[index]
        months = 1 if total <= LOG_CUSTOMERS else 12
        # The past months' partitions, made as tenancy.ensure_usage_partitions makes the others.
        conn.execute("set role tenancy_owner")
        for back in range(1, months):
            conn.execute(
                "do $$ declare m timestamp := date_trunc('month', now() at time zone 'UTC') "
                f"- interval '{back} months'; "
                "n text := 'usage_events_' || to_char(m, 'YYYY_MM'); begin "
                "if to_regclass('tenancy.' || n) is null then "
                "execute format('create table tenancy.%I partition of tenancy.usage_events "
                "for values from (%L) to (%L)', n, m at time zone 'UTC', "
                "(m + interval '1 month') at time zone 'UTC'); "
                "execute format('alter table tenancy.%I enable row level security', n); "
                "execute format('alter table tenancy.%I force row level security', n); "
                "end if; end $$"
            )
        conn.execute("reset role")
        todo = total - have
        started = time.perf_counter()
        lo = 0
        for back in reversed(range(months)):
            n = todo // months + (1 if back < todo % months else 0)
            conn.execute(
                GENERATE_SQL,
                {"t": tenant, "m": meter, "lo": lo, "hi": lo + n - 1, "back": back},
            )
            lo += n
        seconds = time.perf_counter() - started
        conn.execute(REBUILD_SQL, {"t": tenant})
        conn.execute("vacuum (analyze) tenancy.usage_events, tenancy.usage_counters")
        conn.execute("checkpoint")  # the writes above flushed before anything is timed
        row = conn.execute(
            "select (select count(*) from tenancy.usage_events where tenant_id = %(t)s), "
            "(select sum(events) from tenancy.usage_counters where tenant_id = %(t)s), "
            "(select count(*) from tenancy.usage_events_default where tenant_id = %(t)s), "
            "pg_size_pretty(pg_total_relation_size('tenancy.usage_events_default') + "
            "(select sum(pg_total_relation_size(inhrelid)) from pg_inherits "
            "where inhparent = 'tenancy.usage_events'::regclass))",
            {"t": tenant},
        ).fetchone()
        assert row is not None and row[0] == total and row[1] == total and row[2] == 0, row
        say(f"log tenant: {total:,} events ({row[3]} with the other tenant's, indexes included)")
    return seconds


def check_scripts(directory: Path, tenant: str, k: int) -> tuple[Path, Path]:
    head = (
        f"\\set c random(1, {LOG_CUSTOMERS})\nbegin;\n"
        f"select tenant_id from tenancy.set_context('{tenant}', '{MEMBER}');\n"
    )
    check = (
        "select allowed, used from tenancy.check_usage_enforcement('c' || :c, 'api_calls', 1);\n"
    )
    empty, checks = directory / "check0.sql", directory / f"check{k}.sql"
    empty.write_text(head + "commit;\n")
    checks.write_text(head + check * k + "commit;\n")
    return empty, checks


def cpu_seconds(pid: int) -> float | None:
    """CPU time of a local backend (Linux), None when it cannot be read (a remote server)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def check_cpu(conn: psycopg.Connection[Any], tenant: str, calls: int) -> float | None:
    """Backend CPU µs per check over a tight client loop of calls checks (random customers),
    in one transaction with the context set once; a busy machine does not inflate it."""
    rng = random.Random(calls)
    with conn.transaction():
        row = conn.execute(
            "select pg_backend_pid() from tenancy.set_context(%s, %s)", (tenant, MEMBER)
        ).fetchone()
        assert row is not None
        before = cpu_seconds(row[0])
        for _ in range(calls):
            conn.execute(
                "select allowed from tenancy.check_usage_enforcement(%s, 'api_calls', 1)",
                (f"c{rng.randint(1, LOG_CUSTOMERS)}",),
            )
        after = cpu_seconds(row[0])
    return (after - before) / calls * 1e6 if after is not None and before is not None else None


def check_latency(
    url: str, tenant: str, directory: Path, seconds: int, rounds: int, k: int
) -> list[tuple[float, float, float | None]]:
    """Per round: µs of one check ((latency with k checks - without) / k), of the transaction
    with k checks, and of backend CPU per check in a tight loop."""
    login = as_login(url, SERVICE_LOGIN)
    with psycopg.connect(login) as conn, psycopg.connect(url) as admin:
        conn.execute("select from tenancy.set_context(%s, %s)", (tenant, MEMBER))
        row = conn.execute(
            "select allowed, used, cap, period_start from tenancy.check_usage_enforcement('c7', "
            "'api_calls', 1)"
        ).fetchone()
        assert row is not None, row
        counter = admin.execute(
            "select c.used from tenancy.usage_counters as c "
            "join tenancy.customers as u on u.tenant_id = c.tenant_id and u.id = c.customer_id "
            "where c.tenant_id = %s and u.external_id = 'c7' and c.period_start = %s",
            (tenant, row[3]),
        ).fetchone()
        # The check reads the counter the generated events add up to.
        assert row[0] is True and row[1] > 0 and (row[1],) == counter, (row, counter)
        conn.rollback()
        check_cpu(conn, tenant, 500)  # warm-up
        empty, checks = check_scripts(directory, tenant, k)
        pgbench(login, empty, 3, 1, 1)
        pgbench(login, checks, 3, 1, 1)
        out = []
        for _ in range(rounds):
            e = pgbench(login, empty, seconds, 1, 1).latency_ms
            c = pgbench(login, checks, seconds, 1, 1).latency_ms
            out.append(((c - e) / k * 1000, c * 1000, check_cpu(conn, tenant, 2000)))
    return out


def rounds_text(rounds: list[tuple[float, float, float | None]]) -> str:
    return ", ".join(
        f"{a:.1f} µs per check ({t:.0f} µs per transaction"
        + (f"; {c:.1f} µs of CPU in a loop)" if c is not None else ")")
        for a, t, c in rounds
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=50, help="1,000-event batches per round")
    ap.add_argument("--batch-rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "25")))
    ap.add_argument("--rounds", type=int, default=2, help="pgbench rounds of the enforced calls")
    ap.add_argument("--warmup", type=int, default=5, help="seconds of pgbench per script first")
    ap.add_argument("--check-seconds", type=int, default=15)
    ap.add_argument("--check-rounds", type=int, default=3)
    ap.add_argument("--checks", type=int, default=10, help="checks per transaction (K)")
    ap.add_argument("--events", type=int, default=10_000_000, help="events of the large log")
    ap.add_argument("--keep", action="store_true", help=f"keep database {DB} afterwards")
    args = ap.parse_args()

    started = time.perf_counter()
    url, tenants = prepare()
    with psycopg.connect(url) as conn:
        settings = {s: conn.execute(f"show {s}").fetchone()[0] for s in SETTINGS}  # type: ignore[index]
        rls = rls_state(conn)
    say(f"machine: {machine()}; load average {load()}")
    say("server: " + ", ".join(f"{k} = {v}" for k, v in settings.items()))
    say(rls)

    say(f"1. track_usage_batch: {args.batch_rounds} rounds of {args.batches} batches per kind")
    rates = batch_throughput(url, tenants, args.batches, args.batch_rounds)

    with tempfile.TemporaryDirectory(prefix="pgtenancy-bench-usage-") as tmp:
        d = Path(tmp)
        os.chmod(d, 0o755)
        say(
            f"2. pgbench -M prepared -c 32 -j 2, {args.seconds} s per run, {args.rounds} rounds, "
            "pgtenancy, bare, bare without context in turn"
        )
        tps = enforced_tps(url, tenants, d, args.seconds, args.rounds, args.warmup)

        say(
            f"3. check_usage_enforcement: pgbench -c 1, {args.check_seconds} s per run, "
            f"K = {args.checks}, {args.check_rounds} rounds"
        )
        fill_log(url, tenants.log, LOG_CUSTOMERS)
        small = check_latency(
            url, tenants.log, d, args.check_seconds, args.check_rounds, args.checks
        )
        say(f"1,000 events: {rounds_text(small)} (load average {load()})")
        say(f"generating {args.events - LOG_CUSTOMERS:,} more events (load average {load()})")
        seconds = fill_log(url, tenants.log, args.events)
        say(
            f"  INSERTs: {seconds:.0f} s ({(args.events - LOG_CUSTOMERS) / seconds:,.0f} rows/s), "
            "counters rebuilt, VACUUM (ANALYZE) done"
        )
        large = check_latency(
            url, tenants.log, d, args.check_seconds, args.check_rounds, args.checks
        )
        say(f"{args.events:,} events: {rounds_text(large)} (load average {load()})")

    med = {kind: statistics.median(v) for kind, v in rates.items()}
    batch_ratios = [p / b for p, b in zip(rates["pgtenancy"], rates["baseline"], strict=True)]
    keyed_ratios = [p / b for p, b in zip(rates["pgtenancy"], rates["keyed"], strict=True)]
    bare = {name: statistics.median(v) for name, v in tps.items()}
    tps_ratios = [p / b for p, b in zip(tps["pgtenancy"], tps["bare"], strict=True)]
    tps_ratio = statistics.median(tps_ratios)
    raw_ratios = [p / b for p, b in zip(tps["pgtenancy"], tps["bare without context"], strict=True)]
    small_us = statistics.median(a for a, _, _ in small)
    large_us = statistics.median(a for a, _, _ in large)
    small_txn = statistics.median(t for _, t, _ in small)
    large_txn = statistics.median(t for _, t, _ in large)
    check_ratio = large_us / small_us
    small_cpu = [c for _, _, c in small if c is not None]
    large_cpu = [c for _, _, c in large if c is not None]

    def spread(values: list[float], digits: int = 2) -> str:
        return " ".join(f"{v:.{digits}f}" for v in values)

    print()
    print("| measure | baseline | pgtenancy | ratio | target | |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    print(
        f"| track_usage_batch, {BATCH_SIZE:,}-event batches, events/s (rounds "
        f"{spread(rates['pgtenancy'], 0)}) | {med['baseline']:,.0f} | {med['pgtenancy']:,.0f} | "
        f"{statistics.median(batch_ratios):.2f} ({spread(batch_ratios)}) | >= 20,000 events/s | "
        f"{verdict(med['pgtenancy'] >= 20_000)} |"
    )
    print(
        f"| the same, baseline also storing the idempotency keys | {med['keyed']:,.0f} | "
        f"{med['pgtenancy']:,.0f} | {statistics.median(keyed_ratios):.2f} "
        f"({spread(keyed_ratios)}) | | |"
    )
    print(
        f"| track_usage(p_enforce => true) vs conditional UPDATE, 32 clients, TPS | "
        f"{bare['bare']:,.0f} | {bare['pgtenancy']:,.0f} | {tps_ratio:.2f} ({spread(tps_ratios)}) "
        f"| >= 0.8 | {verdict(tps_ratio >= 0.8)} |"
    )
    print(
        f"| the same, bare UPDATE without the context call | {bare['bare without context']:,.0f} "
        f"| {bare['pgtenancy']:,.0f} | {statistics.median(raw_ratios):.2f} "
        f"({spread(raw_ratios)}) | | |"
    )
    print(
        f"| check_usage_enforcement, µs per check, 1,000 vs {args.events:,} events in the log "
        f"| {small_us:.1f} ({spread([a for a, _, _ in small], 1)}) | {large_us:.1f} "
        f"({spread([a for a, _, _ in large], 1)}) | {check_ratio:.2f} | <= 1.2 | "
        f"{verdict(check_ratio <= 1.2)} |"
    )
    if small_cpu and large_cpu:
        cs, cl = statistics.median(small_cpu), statistics.median(large_cpu)
        print(
            f"| the same, backend CPU µs per check in a tight loop | {cs:.1f} "
            f"({spread(small_cpu, 1)}) | {cl:.1f} ({spread(large_cpu, 1)}) | {cl / cs:.2f} | | |"
        )
    print(
        f"(check transactions with K = {args.checks}: {small_txn:.0f} µs and {large_txn:.0f} µs, "
        f"ratio {large_txn / small_txn:.2f}; {rls}; {time.perf_counter() - started:.0f} s in all; "
        f"load average {load()})"
    )

    if not args.keep:
        base = cluster.database_url()
        with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(DB)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
