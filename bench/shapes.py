"""Instruction counts of the context check's shapes, with valgrind's callgrind (deterministic).

Wall-clock ratios on a shared two-core VM swing by tens of percent between runs; instruction
counts do not. This builds a small private cluster (20 tenants, 20,000 documents), then runs
PostgreSQL in single-user mode under callgrind with scripts of prepared point lookups and counts
the server's instructions per statement for:

* baseline: a BYPASSRLS login with an explicit ``WHERE tenant_id = $2``;
* the shipped policy check (``tenancy.context_tenant_id``);
* the same for a table keyed by the tenant key (``company_id bigint``): an explicit
  ``WHERE company_id = $2`` against the check generated for such tables
  (``tenancy.context_tenant_key(...)::int8``);
* reference shapes installed in its place for the run: a constant from an inlined SQL function
  (the floor of an initPlan), a plain forgeable setting read by an inlined SQL function, and a
  PL/pgSQL function returning a constant (the floor of a PL/pgSQL call);

and the instructions of one ``tenancy.authenticate`` call over ``SELECT 1``. Each figure is
``(count with K statements - count with none) / K`` over T transactions, so start-up and
per-transaction costs cancel out. Needs valgrind and root (the cluster runs as ``postgres``).

Usage: python bench/shapes.py [--transactions 20] [--queries 20]
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from pgtenancy.migrate import migrate
from pgtenancy.testing.tokens import tenant_token

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "app"
SECRET = "shapes-secret-" + "0123456789abcdef" * 3
USER = "postgres"

SHAPES = {
    "constant, inlined SQL (initPlan floor)": (
        "language sql immutable parallel safe as $f$ select {tenant}::uuid $f$"
    ),
    "forgeable setting, inlined SQL": (
        "language sql stable parallel safe as $f$ select nullif(pg_catalog.split_part("
        "pg_catalog.current_setting('tenancy.context', true), '|', 2), '')::pg_catalog.uuid $f$"
    ),
    "constant, PL/pgSQL (call floor)": (
        "language plpgsql stable parallel restricted as $f$ begin return {tenant}::uuid; end $f$"
    ),
}


def bindir() -> Path:
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def as_postgres(*cmd: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", USER, "--", *cmd], text=True, check=True, **kw)  # type: ignore[call-overload]


# A table keyed by the tenant key, with the policy pgtenancy generates for a bigint tenant
# column (the same expression as the generator's), and the same rows as app.documents.
KEYED = """
create table app.keyed_documents (
    company_id bigint not null, id bigint not null, title text not null,
    primary key (company_id, id)
);
alter table app.keyed_documents enable row level security;
alter table app.keyed_documents force row level security;
create policy readers on app.keyed_documents for select to public
using ("company_id" operator (pg_catalog.=) (select tenancy.context_tenant_key(
    array['admin', 'member', 'owner', 'viewer'])::pg_catalog.int8));
grant select on app.keyed_documents to tenancy_app;
"""


def build(data: Path, sock: Path) -> tuple[str, str, int, str]:
    """A cluster with pgtenancy, the example app and rows; returns (tenant, token, first id,
    the tenant's key)."""
    as_postgres(str(bindir() / "initdb"), "-D", str(data), "-A", "trust", "-U", USER,
                stdout=subprocess.DEVNULL)  # fmt: skip
    port = "55998"
    as_postgres(str(bindir() / "pg_ctl"), "-D", str(data), "-w", "-l", str(sock / "log"),
                "-o", f"-p {port} -k {sock} -c listen_addresses=''", "start",
                stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        admin = f"host={sock} port={port} user={USER} dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("create database shapes")
        url = f"postgresql://{USER}@/shapes?host={sock}&port={port}"
        migrate(url, keep_temp_privilege=True)
        with psycopg.connect(url, autocommit=True) as conn:
            for path in [APP / "schema.sql", *sorted((APP / "policies").glob("*.sql"))]:
                with conn.transaction():
                    conn.execute(path.read_bytes())
            conn.execute(KEYED)
            conn.execute("create role shapes_app login in role tenancy_app")
            conn.execute("create role shapes_bypass login bypassrls in role tenancy_app")
            conn.execute("grant select on all tables in schema app to shapes_bypass")
            conn.execute("set role tenancy_admin")
            conn.execute("select tenancy.configure_jwt(%s)", (SECRET,))
            conn.execute("reset role")
            conn.execute(
                "insert into tenancy.tenants (id, slug, name, key) "
                "select gen_random_uuid(), 'shapes-' || n, 'Shapes ' || n, (1000 + n)::text "
                "from generate_series(1, 20) n"
            )
            conn.execute(
                "insert into tenancy.memberships (tenant_id, user_id, role) "
                "select id, 'auth0|' || gen_random_uuid(), 'owner' from tenancy.tenants"
            )
            conn.execute(
                "insert into app.projects (tenant_id, name) select id, 'p' from tenancy.tenants"
            )
            conn.execute(
                "insert into app.documents (tenant_id, project_id, title) "
                "select p.tenant_id, p.id, 'document ' || d from app.projects p "
                "cross join generate_series(1, 1000) d order by p.tenant_id, d"
            )
            conn.execute(
                "insert into app.keyed_documents (company_id, id, title) "
                "select t.key::bigint, d.id, d.title from app.documents d "
                "join tenancy.tenants t on t.id = d.tenant_id"
            )
            conn.execute("vacuum analyze")
            row = conn.execute(
                "select m.tenant_id, m.user_id, (select min(id) from app.documents d "
                "where d.tenant_id = m.tenant_id), t.key from tenancy.memberships m "
                "join tenancy.tenants t on t.id = m.tenant_id limit 1"
            ).fetchone()
            assert row is not None
            tenant, user, first, key = row
        return str(tenant), tenant_token(SECRET, tenant, user, ttl=86400), int(first), key
    finally:
        as_postgres(str(bindir() / "pg_ctl"), "-D", str(data), "-w", "stop",
                    stdout=subprocess.DEVNULL)  # fmt: skip


def instructions(data: Path, work: Path, script: str) -> int:
    """Total instructions of a single-user backend running ``script`` (one statement a line)."""
    for old in glob.glob(str(work / "cg.*")):
        os.remove(old)
    (work / "in.sql").write_text(script)
    with open(work / "in.sql") as stdin:
        res = subprocess.run(
            ["runuser", "-u", USER, "--", "valgrind", "--tool=callgrind",
             f"--callgrind-out-file={work}/cg.%p", str(bindir() / "postgres"), "--single",
             "-D", str(data), "shapes"],
            stdin=stdin, capture_output=True, text=True,
        )  # fmt: skip
    errors = [line for line in res.stderr.splitlines() if "ERROR" in line]
    if res.returncode != 0 or errors:
        raise SystemExit(f"single-user run failed: {errors or res.stderr[-2000:]}")
    total = 0
    for path in glob.glob(str(work / "cg.*")):
        match = re.search(r"^(?:summary|totals): (\d+)", Path(path).read_text(), re.M)
        assert match is not None
        total += int(match.group(1))
    return total


def lookups(
    role: str, query: str, tenant: str, token: str, first: int, txns: int, k: int, key_type: str
) -> str:
    lines = [f"set role {role}", f"prepare q(bigint, {key_type}) as {query}"]
    for t in range(txns):
        lines += ["begin", f"select tenancy.authenticate('{token}')"]
        lines += [f"execute q({first + (t * k + i) % 1000}, '{tenant}')" for i in range(k)]
        lines += ["commit"]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--transactions", type=int, default=20)
    ap.add_argument("--queries", type=int, default=20)
    args = ap.parse_args()
    if not shutil.which("valgrind") or os.geteuid() != 0:
        print("bench/shapes.py needs valgrind and root", file=sys.stderr)
        return 2
    t, k = args.transactions, args.queries
    with tempfile.TemporaryDirectory(prefix="pgtenancy-shapes-") as tmp:
        work = Path(tmp)
        shutil.chown(work, USER)
        data = work / "data"
        tenant, token, first, key = build(data, work)

        def per_statement(
            role: str, query: str, before: str = "", after: str = "", keyed: bool = False
        ) -> float:
            second, key_type = (key, "bigint") if keyed else (tenant, "uuid")
            base = lookups(role, query, second, token, first, t, 0, key_type)
            full = lookups(role, query, second, token, first, t, k, key_type)
            return (
                instructions(data, work, before + full + after)
                - instructions(data, work, before + base + after)
            ) / (t * k)

        explicit = "select title from app.documents where tenant_id = $2 and id = $1"
        policy = "select title from app.documents where id = $1"
        baseline = per_statement("shapes_bypass", explicit)
        rows = [("explicit WHERE tenant_id = $2 (BYPASSRLS)", baseline)]
        rows.append(
            ("shipped check: tenancy.context_tenant_id", per_statement("shapes_app", policy))
        )
        restore = (ROOT / "sql" / "functions" / "context" / "context_tenant_id.sql").read_text()
        restore = restore[restore.index("create or replace function") :]
        restore = restore[: restore.index("$$;") + 3]
        restore = " ".join(
            line.split(" -- ")[0].strip()
            for line in restore.splitlines()
            if not line.strip().startswith("--")
        )
        for name, body in SHAPES.items():
            install = (
                "set role tenancy_owner\ncreate or replace function "
                "tenancy.context_tenant_id(p_roles text[]) returns uuid "
                + body.format(tenant=f"'{tenant}'")
                + "\nreset role\n"
            )
            back = f"reset role\nset role tenancy_owner\n{restore}\n"
            rows.append((name, per_statement("shapes_app", policy, install, back)))

        keyed_baseline = per_statement(
            "shapes_bypass",
            "select title from app.keyed_documents where company_id = $2 and id = $1",
            keyed=True,
        )
        keyed = per_statement(
            "shapes_app", "select title from app.keyed_documents where id = $1", keyed=True
        )

        def auth_script(call: str) -> str:
            return "set role shapes_app\n" + f"begin\n{call}\ncommit\n" * 100

        auth = (
            instructions(data, work, auth_script(f"select tenancy.authenticate('{token}')"))
            - instructions(data, work, auth_script("select 1"))
        ) / 100

    print(f"server instructions per point lookup (T = {t} transactions, K = {k} statements)")
    print(f"{'policy check':48} {'instructions':>12} {'ratio':>6}")
    for name, value in rows:
        print(f"{name:48} {value:12,.0f} {value / baseline:6.3f}")
    print(f"{'tenancy.authenticate, over SELECT 1':48} {auth:12,.0f}")
    print("a table keyed by the tenant key (company_id bigint)")
    print(f"{'explicit WHERE company_id = $2 (BYPASSRLS)':48} {keyed_baseline:12,.0f} {1:6.3f}")
    print(
        f"{'shipped key check: context_tenant_key()::int8':48} {keyed:12,.0f} "
        f"{keyed / keyed_baseline:6.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
