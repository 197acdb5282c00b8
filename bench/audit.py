"""Audit trail benchmark: the generated audit triggers against the same table without them.

One fresh database (``pgtenancy_bench_audit``, rebuilt on every run) holds three copies of one
tenant table shape, ``(tenant_id uuid, id bigint identity, title text, amount numeric,
created_at timestamptz, primary key (tenant_id, id))``, each with the policies
``pgtenancy generate`` writes from a spec in a temporary directory, applied with
``pgtenancy apply``:

* ``app.bench_items``: ``audit = true`` (the default): tenancy.tg_audit's statement triggers;
* ``app.bench_items_plain``: ``audit = false``, so the only difference is the audit;
* ``app.bench_items_supa``: ``audit = false`` plus a supa_audit-style trigger written for this
  benchmark: one generic AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW function that, per row,
  looks up the table's primary key columns in pg_index and pg_attribute, builds a record id from
  their values, and writes ``to_jsonb(new)`` and ``to_jsonb(old)`` into a jsonb table.

1,000 tenants, 100 rows each in every copy. Measured, in this order, as a tenancy_service login:

1. pgbench -M prepared, 4 clients, 2 threads: ``BEGIN; set_context(tenant); one-row INSERT;
   COMMIT`` and the same with a one-row UPDATE (random tenant, random row of it), after a
   warm-up; plain and audited runs alternate and the median of the per-round ratios audited TPS
   / plain TPS is reported (target >= 0.7).
2. One 100,000-row ``INSERT ... SELECT generate_series`` in a service context, plain, audited and
   supa-style in turn (a CHECKPOINT before each), median of 3: audited / plain (target <= 2.5)
   and supa-style / audited (target >= 8).
3. Sealing: when ``tenancy.seal_audit()`` exists, whatever the runs above left is sealed first
   (not timed), then 200,000 rows are written to the audited table in 200 transactions, each
   touching every tenant, and sealing them is timed (target >= 50,000 rows per second);
   otherwise "skipped".

Usage: python bench/audit.py [--seconds 20] [--rounds 3] [--bulk 100000] [--seal-rows 200000]
Uses ``$DATABASE_URL``'s server, else the throwaway cluster; not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
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

DB = "pgtenancy_bench_audit"
LOGIN = "bench_audit_service"
TENANTS = 1000
ROWS_PER_TENANT = 100
AUDITED, PLAIN, SUPA = "app.bench_items", "app.bench_items_plain", "app.bench_items_supa"

# Tenant n's id, the same expression in SQL and in the pgbench scripts.
TENANT_OF = "('00000000-0000-4000-8000-' || lpad(({n})::text, 12, '0'))::uuid"

TABLE = """
create table {table} (
    tenant_id uuid not null,
    id bigint generated always as identity,
    title text not null,
    amount numeric not null,
    created_at timestamptz not null default now(),
    constraint {pkey} primary key (tenant_id, id)
);
"""

SPEC = f"""
[tables."{AUDITED}"]
write = ["owner", "admin", "member"]

[tables."{PLAIN}"]
write = ["owner", "admin", "member"]
audit = false

[tables."{SUPA}"]
write = ["owner", "admin", "member"]
audit = false
"""

# supa_audit's approach (https://github.com/supabase/supa_audit), written again for this
# comparison: a generic row trigger that finds the primary key in the catalog on every row and
# identifies the record by a uuid derived from the table and its key values. Like supa_audit, the
# key lookup is a SECURITY DEFINER SQL function with a pinned search_path and the trigger is a
# SECURITY DEFINER PL/pgSQL function; the record id is an MD5-based uuid of the table's oid and
# the key values (supa_audit used uuid_generate_v5 over the same text).
SUPA_SQL = """
create schema supa_style;
create table supa_style.record_version (
    id bigserial primary key,
    record_id uuid,
    old_record_id uuid,
    op text not null check (op in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    ts timestamptz not null default now(),
    table_oid oid not null,
    table_schema name not null,
    table_name name not null,
    record jsonb,
    old_record jsonb
);
create index record_version_record_id on supa_style.record_version (record_id)
where record_id is not null;
create index record_version_old_record_id on supa_style.record_version (old_record_id)
where old_record_id is not null;
create index record_version_ts on supa_style.record_version using brin (ts);
create index record_version_table_oid on supa_style.record_version (table_oid);

create function supa_style.key_columns(p_table oid) returns text[]
language sql stable security definer set search_path = '' as $f$
    select coalesce(array_agg(a.attname::text order by a.attnum), '{}'::text[])
    from pg_catalog.pg_index as i
    inner join pg_catalog.pg_attribute as a
        on a.attrelid operator (pg_catalog.=) i.indrelid
        and a.attnum operator (pg_catalog.=) any (i.indkey)
    where i.indrelid operator (pg_catalog.=) p_table and i.indisprimary
$f$;

create function supa_style.record_id(p_table oid, p_keys text[], p_row jsonb) returns uuid
language sql stable as $f$
    select case
        when p_row is null then null
        else (
            select pg_catalog.md5((
                pg_catalog.jsonb_build_array(p_table::text)
                operator (pg_catalog.||) pg_catalog.jsonb_agg(p_row operator (pg_catalog.->>) k.k)
            )::text)::uuid
            from pg_catalog.unnest(p_keys) as k (k)
        )
    end
$f$;

create function supa_style.row_trigger() returns trigger
language plpgsql security definer as $f$
declare
    v_keys text[] := supa_style.key_columns(tg_relid);
    v_new jsonb := pg_catalog.to_jsonb(new);
    v_old jsonb := pg_catalog.to_jsonb(old);
begin
    insert into supa_style.record_version (
        record_id, old_record_id, op, table_oid, table_schema, table_name, record, old_record
    ) values (
        supa_style.record_id(tg_relid, v_keys, v_new),
        supa_style.record_id(tg_relid, v_keys, v_old),
        tg_op, tg_relid, tg_table_schema, tg_table_name, v_new, v_old
    );
    return coalesce(new, old);
end
$f$;

create trigger supa_style_audit after insert or update or delete on {table}
for each row execute function supa_style.row_trigger();
"""

SETTINGS = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "shared_buffers",
    "wal_level",
    "max_wal_size",
)


def run_cli(*args: str) -> None:
    res = subprocess.run([sys.executable, "-m", "pgtenancy", *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"pgtenancy {args[0]} failed:\n{res.stdout}{res.stderr}")


def prepare() -> str:
    base = cluster.database_url()
    url = testing.with_dbname(base, DB)
    with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(DB)))
    print(
        f"building {DB}: {TENANTS:,} tenants, {TENANTS * ROWS_PER_TENANT:,} rows in each of "
        "three copies of the table",
        flush=True,
    )
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = %s", (LOGIN,)).fetchone():
            conn.execute(f"create role {LOGIN} login in role tenancy_service")
        conn.execute("create schema app")
        conn.execute("grant usage on schema app to tenancy_app")
        for table in (AUDITED, PLAIN, SUPA):
            conn.execute(TABLE.format(table=table, pkey=table.split(".")[1] + "_pkey"))
        conn.execute(
            "insert into tenancy.tenants (id, slug, name) "
            f"select {TENANT_OF.format(n='n')}, 'bench-' || n, 'Bench ' || n "
            "from generate_series(1, %s) as n",
            (TENANTS,),
        )
        # Tenant n holds ids (n - 1) * ROWS_PER_TENANT + 1 .. n * ROWS_PER_TENANT in every copy,
        # written before the triggers exist.
        for table in (AUDITED, PLAIN, SUPA):
            conn.execute(
                f"insert into {table} (tenant_id, title, amount) "  # noqa: S608
                f"select {TENANT_OF.format(n='n')}, 'item ' || g, g "
                "from generate_series(1, %s) as n cross join generate_series(1, %s) as g "
                "order by n, g",
                (TENANTS, ROWS_PER_TENANT),
            )
            row = conn.execute(
                f"select min(id), max(id) from {table} "  # noqa: S608
                f"where tenant_id = {TENANT_OF.format(n='7')}"
            ).fetchone()
            assert row == (6 * ROWS_PER_TENANT + 1, 7 * ROWS_PER_TENANT), (table, row)
    with tempfile.TemporaryDirectory(prefix="pgtenancy-bench-audit-") as tmp:
        spec, out = Path(tmp) / "tenancy.toml", Path(tmp) / "policies"
        spec.write_text(SPEC)
        run_cli("generate", "--spec", str(spec), "--out", str(out), "--database-url", url)
        run_cli("apply", str(out), "--database-url", url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SUPA_SQL.replace("{table}", SUPA))
        triggers = dict(
            conn.execute(  # type: ignore[arg-type]
                "select c.relname, array_agg(t.tgname::text order by t.tgname) "
                "from pg_trigger t join pg_class c on c.oid = t.tgrelid "
                "where c.relnamespace = 'app'::regnamespace and not t.tgisinternal "
                "group by c.relname"
            ).fetchall()
        )
        assert "tenancy_audit_insert" in triggers["bench_items"], triggers
        assert "tenancy_audit_insert" not in triggers["bench_items_plain"], triggers
        assert sorted([*triggers["bench_items_plain"], "supa_style_audit"]) == sorted(
            triggers["bench_items_supa"]
        ), triggers
        conn.execute("vacuum (analyze)")
    return url


def check_paths(url: str) -> None:
    """One service-context write per copy lands where it should before anything is timed."""
    with psycopg.connect(url, autocommit=True) as admin, psycopg.connect(as_login(url, LOGIN)) as c:

        def counts() -> tuple[int, int]:
            row = admin.execute(
                "select (select count(*) from tenancy.audit_logs), "
                "(select count(*) from supa_style.record_version)"
            ).fetchone()
            assert row is not None
            return int(row[0]), int(row[1])

        for table, expected in ((PLAIN, (0, 0)), (AUDITED, (2, 0)), (SUPA, (0, 2))):
            before = counts()
            with c.transaction():
                c.execute(f"select tenant_id from tenancy.set_context({TENANT_OF.format(n='3')})")
                c.execute(f"insert into {table} (title, amount) values ('check', 1)")  # noqa: S608
                c.execute(f"update {table} set amount = amount + 1 where id = 201")  # noqa: S608
            after = counts()
            got = (after[0] - before[0], after[1] - before[1])
            assert got == expected, (table, got, expected)
        row = admin.execute(
            "select action, tenant_id, actor_role, entity_id, changed_columns "
            "from tenancy.audit_logs order by id desc limit 1"
        ).fetchone()
        assert row is not None and row[0] == "UPDATE" and row[2] == "service", row
        assert row[3] == '{"id": 201}' and row[4] == ["amount"], row


@dataclass
class Bench:
    login: str
    seconds: int

    def tps(self, path: Path, seconds: int | None = None) -> float:
        cmd = [
            str(bindir() / "pgbench"), "-n", "-M", "prepared", "-c", "4", "-j", "2",
            "-T", str(seconds or self.seconds), "-f", str(path), self.login,
        ]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or "failed transactions: 0 " not in res.stdout:
            raise SystemExit(f"pgbench failed for {path.name}:\n{res.stdout}\n{res.stderr}")
        found = re.search(r"tps = ([0-9.]+)", res.stdout)
        assert found is not None, res.stdout
        return float(found.group(1))


def scripts(directory: Path) -> dict[tuple[str, str], Path]:
    context = (
        f"\\set n random(1, {TENANTS})\n"
        f"\\set id (:n - 1) * {ROWS_PER_TENANT} + random(1, {ROWS_PER_TENANT})\n"
        "begin;\n"
        f"select tenant_id from tenancy.set_context({TENANT_OF.format(n=':n')});\n"
    )
    statements = {
        "INSERT": "insert into {table} (title, amount) values ('item ' || :n, :id);\n",
        "UPDATE": "update {table} set amount = amount + 1 where id = :id;\n",
    }
    paths = {}
    for kind, statement in statements.items():
        for table in (PLAIN, AUDITED):
            path = directory / f"{kind.lower()}_{table.split('.')[1]}.sql"
            path.write_text(context + statement.format(table=table) + "commit;\n")
            paths[kind, table] = path
    return paths


def cpu_seconds(pid: int) -> float | None:
    """CPU time of a local backend (Linux), None when it cannot be read (a remote server)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def bulk_insert(
    admin: psycopg.Connection[Any], conn: psycopg.Connection[Any], table: str, rows: int
) -> tuple[float, float | None]:
    """Seconds of one INSERT … SELECT of ``rows`` rows and its COMMIT, by the client's clock and
    in the backend's CPU time (which a busy machine does not inflate)."""
    admin.execute("checkpoint")
    with conn.transaction():
        row = conn.execute(
            f"select pg_backend_pid() from tenancy.set_context({TENANT_OF.format(n='1')})"
        ).fetchone()
        assert row is not None
        cpu = cpu_seconds(row[0])
        started = time.perf_counter()
        conn.execute(
            f"insert into {table} (title, amount) "  # noqa: S608
            "select 'bulk item ' || g, g * 1.5 from generate_series(1, %s) as g",
            (rows,),
        )
    elapsed = time.perf_counter() - started
    after = cpu_seconds(row[0])
    return elapsed, (after - cpu if after is not None and cpu is not None else None)


def seal_all(conn: psycopg.Connection[Any]) -> tuple[int, int, int]:
    """Calls tenancy.seal_audit() until it seals nothing; returns rows, batches, calls."""
    rows = batches = calls = 0
    while True:
        row = conn.execute(
            "select tenants, batches, sealed_rows, frontier from tenancy.seal_audit()"
        ).fetchone()
        conn.commit()
        calls += 1
        assert row is not None
        if not row[2]:
            return rows, batches, calls
        rows += int(row[2])
        batches += int(row[1] or 0)
        if calls > 100_000:
            raise SystemExit("tenancy.seal_audit() keeps sealing rows: stopped")


def sealing(url: str, n_rows: int) -> tuple[float, int, int, int] | str:
    """Seconds to seal n_rows audit rows written across every tenant; or why it was skipped."""
    with psycopg.connect(url, autocommit=True) as admin:
        found = admin.execute("select to_regprocedure('tenancy.seal_audit()') is not null")
        if found.fetchone() != (True,):
            return "skipped (tenancy.seal_audit() is not installed)"
        with psycopg.connect(as_login(url, LOGIN)) as service:
            try:
                before = seal_all(service)
            except psycopg.Error as error:
                return f"skipped (tenancy.seal_audit() failed: {str(error).splitlines()[0]})"
            print(f"sealed what the runs above left (not timed): {before[0]:,} rows", flush=True)
            per_txn = TENANTS
            txns = max(1, n_rows // per_txn)
            # One transaction per loop turn (a DO block may COMMIT), each writing one row of
            # every tenant: txns transactions, n_rows rows, the tenant from the row's column.
            admin.execute(
                f"do $$ begin for i in 1..{txns} loop "
                f"insert into {AUDITED} (tenant_id, title, amount) "
                f"select {TENANT_OF.format(n='n')}, 'sealed ' || i, i "
                f"from generate_series(1, {per_txn}) as n; commit; end loop; end $$"
            )
            admin.execute("analyze tenancy.audit_logs")
            started = time.perf_counter()
            rows, batches, calls = seal_all(service)
            seconds = time.perf_counter() - started
    return seconds, rows, batches, calls


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "20")))
    ap.add_argument("--warmup", type=int, default=5, help="seconds of pgbench per script first")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    ap.add_argument("--bulk", type=int, default=100_000, help="rows of the bulk INSERT")
    ap.add_argument("--seal-rows", type=int, default=200_000)
    ap.add_argument("--keep", action="store_true", help=f"keep database {DB} afterwards")
    args = ap.parse_args()

    url = prepare()
    check_paths(url)
    login = as_login(url, LOGIN)
    with psycopg.connect(url) as conn:
        settings = {s: conn.execute(f"show {s}").fetchone()[0] for s in SETTINGS}  # type: ignore[index]
    print(f"machine: {machine()}; load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("server: " + ", ".join(f"{k} = {v}" for k, v in settings.items()), flush=True)

    bench = Bench(login, args.seconds)
    tps: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="pgtenancy-bench-") as tmp:
        d = Path(tmp)
        os.chmod(d, 0o755)
        paths = scripts(d)
        print(f"warm-up: {args.warmup} s per script", flush=True)
        for path in paths.values():
            bench.tps(path, args.warmup)
        print(
            f"pgbench -M prepared -c 4 -j 2, {args.seconds} s per run, {args.rounds} rounds, "
            "plain then audited",
            flush=True,
        )
        for r in range(args.rounds):
            for key, path in paths.items():
                tps.setdefault(key, []).append(bench.tps(path))
            print(
                f"round {r + 1}: "
                + ", ".join(
                    f"{kind} {'audited' if table == AUDITED else 'plain'} {v[-1]:,.0f}"
                    for (kind, table), v in tps.items()
                )
                + " tps",
                flush=True,
            )

    bulk: dict[str, list[float]] = {PLAIN: [], AUDITED: [], SUPA: []}
    bulk_cpu: dict[str, list[float]] = {PLAIN: [], AUDITED: [], SUPA: []}
    with (
        psycopg.connect(url, autocommit=True) as admin,
        psycopg.connect(login) as service,
    ):
        # Warm-up: one small insert into each copy (plans, caches).
        for table in bulk:
            bulk_insert(admin, service, table, 1000)
        for r in range(3):
            for table, times in bulk.items():
                clock, cpu = bulk_insert(admin, service, table, args.bulk)
                times.append(clock)
                if cpu is not None:
                    bulk_cpu[table].append(cpu)
            print(
                f"bulk round {r + 1}: "
                + ", ".join(
                    f"{t} {v[-1]:.2f} s"
                    + (f" ({bulk_cpu[t][-1]:.2f} s CPU)" if len(bulk_cpu[t]) > r else "")
                    for t, v in bulk.items()
                ),
                flush=True,
            )
        row = admin.execute(
            "select (select count(*) from tenancy.audit_logs where table_name = 'bench_items' "
            "and new_data ->> 'title' like 'bulk item %%'), "
            "(select count(*) from supa_style.record_version where record ->> 'title' "
            "like 'bulk item %%')"
        ).fetchone()
        assert row == (3 * args.bulk + 1000, 3 * args.bulk + 1000), row

    sealed = sealing(url, args.seal_rows)

    ratios = {
        kind: statistics.median(
            a / p for a, p in zip(tps[kind, AUDITED], tps[kind, PLAIN], strict=True)
        )
        for kind in ("INSERT", "UPDATE")
    }
    plain_s, audited_s, supa_s = (statistics.median(bulk[t]) for t in (PLAIN, AUDITED, SUPA))
    bulk_ratios = [a / p for a, p in zip(bulk[AUDITED], bulk[PLAIN], strict=True)]
    supa_ratios = [s / a for s, a in zip(bulk[SUPA], bulk[AUDITED], strict=True)]
    bulk_ratio, supa_ratio = statistics.median(bulk_ratios), statistics.median(supa_ratios)

    print()
    print("| measure | plain | audited | ratio | target | |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for kind in ("INSERT", "UPDATE"):
        p, a = statistics.median(tps[kind, PLAIN]), statistics.median(tps[kind, AUDITED])
        rounds = " ".join(
            f"{x / y:.2f}" for x, y in zip(tps[kind, AUDITED], tps[kind, PLAIN], strict=True)
        )
        print(
            f"| one-row {kind} transactions, TPS (4 clients; ratios {rounds}) | {p:,.0f} | "
            f"{a:,.0f} | {ratios[kind]:.2f} | audited / plain >= 0.7 | "
            f"{verdict(ratios[kind] >= 0.7)} |"
        )
    print(
        f"| {args.bulk:,}-row INSERT … SELECT, s (ratios "
        + " ".join(f"{x:.2f}" for x in bulk_ratios)
        + f") | {plain_s:.2f} | {audited_s:.2f} | "
        f"{bulk_ratio:.2f} | audited / plain <= 2.5 | {verdict(bulk_ratio <= 2.5)} |"
    )
    print(
        "| the same, supa_audit-style row trigger, s (ratios "
        + " ".join(f"{x:.2f}" for x in supa_ratios)
        + f") | {supa_s:.2f} | {audited_s:.2f} | "
        f"{supa_ratio:.2f} | supa-style / audited >= 8 | {verdict(supa_ratio >= 8)} |"
    )
    if isinstance(sealed, str):
        print(f"| sealing, rows/s | | | | >= 50,000 | {sealed} |")
    else:
        seconds, rows, batches, calls = sealed
        rate = rows / seconds if seconds else float("inf")
        print(
            f"| sealing {rows:,} rows of {TENANTS:,} tenants ({batches:,} batches, {calls} "
            f"calls), rows/s | | {rate:,.0f} | | >= 50,000 | {verdict(rate >= 50_000)} |"
        )
    print(f"(supa-style / plain: {supa_s / plain_s:.1f})")
    if all(len(v) == 3 for v in bulk_cpu.values()):
        p_cpu, a_cpu, s_cpu = (statistics.median(bulk_cpu[t]) for t in (PLAIN, AUDITED, SUPA))
        print(
            f"(bulk INSERT in backend CPU time, medians: plain {p_cpu:.2f} s, audited "
            f"{a_cpu:.2f} s, supa-style {s_cpu:.2f} s; audited / plain {a_cpu / p_cpu:.2f}, "
            f"supa-style / audited {s_cpu / a_cpu:.2f})"
        )

    if not args.keep:
        base = cluster.database_url()
        with psycopg.connect(testing.with_dbname(base, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(DB)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
