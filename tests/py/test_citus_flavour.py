"""The Citus flavour on plain PostgreSQL: its policies applied, the generated tests and verify.sql.

A database of its own (cloned from the test template: pgtenancy, the fixture tables and their
postgres-flavoured policies) gets the Citus flavour of pgtenancy's own tables (the checked-in
sql/citus/policies/) and of the fixtures (rendered here with ``generate --flavour citus``), and
the signed context form switched on. Then every generated pgTAP isolation test
(tests/pgtap/generated/) runs against those policies, sql/citus/verify.sql runs with psql and
says ok on every line, and the distribution plan (tenancy.citus_distribution_plan, which
sql/citus/distribute.sql executes on Citus) is checked against the foreign keys.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import PGTENANCY, REPO

from pgtenancy import testing

CITUS_POLICIES = REPO / "sql" / "citus" / "policies"
GENERATED_TESTS = REPO / "tests" / "pgtap" / "generated"
VERIFY = REPO / "sql" / "citus" / "verify.sql"
DISTRIBUTE = REPO / "sql" / "citus" / "distribute.sql"
LINE = re.compile(r"NOTICE:  (ok|not ok|skip) (\d+) - (.*)$")
SUMMARY = re.compile(r"NOTICE:  verify: (\d+) checks: (\d+) ok, (\d+) failed, (\d+) skipped$")


def psql(url: str, *args: str, timeout: int = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PGOPTIONS": "-c client_min_messages=warning", "PATH": "/usr/bin:/bin"},
    )


def apply(url: str, files: list[Path]) -> None:
    for path in files:
        proc = psql(url, "-f", str(path))
        assert proc.returncode == 0, f"{path}: {proc.stderr}"


@pytest.fixture(scope="module")
def citus_db(base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database whose tenant tables all carry the Citus flavour's policies, the form on."""
    url = testing.create_test_database(base_url)
    try:
        fixtures = tmp_path_factory.mktemp("citus_fixtures")
        proc = subprocess.run(
            [str(PGTENANCY), "generate", "--flavour", "citus",
             "--spec", "tests/fixtures/tenancy.toml", "--out", str(fixtures),
             "--database-url", url],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        apply(url, sorted(CITUS_POLICIES.glob("*.sql")) + sorted(fixtures.glob("*.sql")))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("set role tenancy_admin")
            conn.execute("select tenancy.configure_context_mac(true)")
        yield url
    finally:
        testing.drop_test_database(url)


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(query).fetchall()]


def test_every_tenant_table_has_the_citus_policies(citus_db: str) -> None:
    """The lints see every tenant table (29: pgtenancy's 23, the fixtures' 6), and none of their
    policies has a sub-select or calls the single-node context."""
    tables = rows(citus_db, "select relid::regclass::text from tenancy.lint_tenant_tables")
    assert len(tables) == 29
    policies = rows(
        citus_db,
        """select p.polrelid::regclass::text, concat_ws(' ', pg_get_expr(p.polqual, p.polrelid),
               pg_get_expr(p.polwithcheck, p.polrelid))
           from pg_policy as p
           where p.polrelid in (select relid from tenancy.lint_tenant_tables)
             and p.polroles <> array['tenancy_owner'::regrole::oid]""",
    )
    assert len(policies) >= 29
    for table, expression in policies:
        assert "context_tenant_" in expression and "_mac(" in expression, (table, expression)
        assert "SELECT" not in expression.upper(), (table, expression)


def test_generated_isolation_tests_pass_under_citus_policies(citus_db: str) -> None:
    """Every generated pgTAP isolation test passes against the Citus flavour's policies."""
    params = psycopg.conninfo.conninfo_to_dict(citus_db)
    files = sorted(str(p) for p in GENERATED_TESTS.glob("*.sql"))
    assert len(files) == 29
    proc = subprocess.run(
        ["pg_prove", "-h", str(params.get("host", "localhost")),
         "-p", str(params.get("port", 5432)), "-d", str(params["dbname"]),
         "-U", str(params.get("user", "postgres")), *files],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "All tests successful." in proc.stdout
    tests = int(re.search(r"Files=29, Tests=(\d+)", proc.stdout).group(1))  # type: ignore[union-attr]
    assert tests > 900


def verify(url: str) -> tuple[int, list[tuple[str, int, str]], tuple[int, ...] | None, str]:
    proc = psql(url, "-f", str(VERIFY), timeout=120)
    lines = []
    summary = None
    for line in proc.stderr.splitlines():
        if m := LINE.search(line):
            lines.append((m.group(1), int(m.group(2)), m.group(3)))
        elif m := SUMMARY.search(line):
            summary = tuple(int(g) for g in m.groups())
    return proc.returncode, lines, summary, proc.stderr


def test_verify_sql_says_ok_on_every_line(citus_db: str) -> None:
    """verify.sql on plain PostgreSQL: one line per check, every one ok but the Citus-only one;
    per tenant table 9 checks (rows, no context, A's context, update, delete, insert, three
    forged contexts), then the context form's own checks; nothing stays."""
    before = rows(citus_db, "select count(*) from tenancy.tenants")
    code, lines, summary, stderr = verify(citus_db)
    assert code == 0, stderr[-3000:]
    assert [n for _, n, _ in lines] == list(range(1, len(lines) + 1))
    assert [line for line in lines if line[0] != "ok"] == [
        ("skip", len(lines), "citus is not installed: the distribution and the roles' settings "
         "are not checked"),
    ]  # fmt: skip
    assert len(lines) == 1 + 29 * 9 + 3 + 1
    assert summary == (len(lines), len(lines) - 1, 0, 1)
    for table in ("app.projects", "tenancy.memberships", "app.ledger", "tenancy.usage_events"):
        mine = [text for _, _, text in lines if text.startswith(f"{table}: ")]
        assert len(mine) == 9, table
        assert any("a context of tenant A sees its" in t for t in mine)
        assert any("has expired sees no row" in t for t in mine)
    assert rows(citus_db, "select count(*) from tenancy.tenants") == before


def test_verify_sql_fails_on_a_leaky_policy(citus_db: str) -> None:
    """The check can fail: a policy of app.projects that admits every row is reported, line by
    line, and the script exits non-zero; the others stay ok."""
    leak = (
        'alter policy "tenant rows are visible to readers of the tenant" on app.projects '
        "using (true)"
    )
    with psycopg.connect(citus_db, autocommit=True) as conn:
        conn.execute(leak)
    try:
        code, lines, _, stderr = verify(citus_db)
    finally:
        with psycopg.connect(citus_db, autocommit=True) as conn:
            conn.execute(
                'alter policy "tenant rows are visible to readers of the tenant" on app.projects '
                "using (tenant_id operator(pg_catalog.=) tenancy.context_tenant_id_mac("
                "array['admin', 'member', 'owner', 'viewer']))"
            )
    assert code == 3
    failed = [text for kind, _, text in lines if kind == "not ok"]
    assert failed and all(text.startswith("app.projects: ") for text in failed)
    assert "app.projects: without a tenant context the application sees" in failed[0]
    assert any(kind == "ok" and text.startswith("app.documents: ") for kind, _, text in lines)


def test_distribution_plan_puts_parents_first(citus_db: str) -> None:
    """The plan against the fixtures' and pgtenancy's foreign keys: every referenced table is
    placed before the tables referring to it, reference tables before distributed ones,
    co-location by tenant column type, the audit trail kept on the coordinator, no problem."""
    plan = rows(
        citus_db,
        """select step, action, relation::text, distribution_column::text, colocate_with::text,
                  statement
           from tenancy.citus_distribution_plan() order by step""",
    )
    position = {r[2]: r[0] for r in plan if r[2] is not None}
    action = {r[2]: r[1] for r in plan if r[2] is not None}
    assert "problem" not in action.values()
    fks = rows(
        citus_db,
        "select conrelid::regclass::text, confrelid::regclass::text from pg_constraint "
        "where contype = 'f' and conrelid <> confrelid",
    )
    checked = 0
    for child, parent in fks:
        if child in position and parent in position:
            assert position[parent] < position[child], (parent, child)
            checked += 1
    assert checked >= 20
    for child, parent in [
        ("app.documents", "app.projects"),
        ("app.orders", "app.customers"),
        ("tenancy.subscriptions", "tenancy.tiers"),
        ("tenancy.api_key_secrets", "tenancy.api_keys"),
        ("tenancy.jwt_keys", "tenancy.jwt_issuers"),
        ("tenancy.memberships", "tenancy.tenants"),
    ]:
        assert position[parent] < position[child]
    references = [r[0] for r in plan if r[1] == "reference"]
    distributed = [r[0] for r in plan if r[1] == "distribute"]
    assert max(references) < min(distributed)
    assert action["tenancy.tenants"] == action["tenancy.context_mac_keys"] == "reference"
    assert action["tenancy.audit_logs"] == "coordinator"
    assert action["tenancy.api_key_secrets"] == action["app.ledger"] == "distribute"
    by_relation = {r[2]: r for r in plan if r[2] is not None}
    # One co-location group per tenant column type: the first of a type starts it.
    uuid_first = by_relation["app.customers"]
    assert uuid_first[4] is None and "colocate_with => 'none'" in uuid_first[5]
    assert by_relation["tenancy.memberships"][4] == "app.customers"
    assert by_relation["tenancy.api_key_secrets"][3] == "tenant_id"
    assert (
        by_relation["app.ledger"][4] is None
    )  # its tenant column holds the key: a group of its own
    roles = {r[5] for r in plan if r[1] == "role"}
    for role in ("tenancy_app", "tenancy_service", "tenancy_admin", "tenancy_auditor"):
        assert f"alter role {role} set citus.propagate_set_commands = 'local';" in roles
    assert plan[-1][1:] == (
        "context",
        None,
        None,
        None,
        "select tenancy.configure_context_mac(true);",
    )
    assert "alter role tenancy_owner login;" in {r[5] for r in plan if r[1] == "login"}


def test_distribute_sql_prints_the_plan_without_citus(citus_db: str) -> None:
    proc = psql(citus_db, "-f", str(DISTRIBUTE))
    assert proc.returncode == 0, proc.stderr
    assert "select create_reference_table('tenancy.tenants');" in proc.stdout
    assert "select create_distributed_table('app.documents', 'tenant_id', colocate_with => " in (
        proc.stdout
    )
    assert proc.stdout.rstrip().endswith("plan printed, nothing executed")
    # Nothing was executed: the owners still cannot log in.
    assert rows(citus_db, "select rolcanlogin from pg_roles where rolname = 'tenancy_owner'") == [
        (False,)
    ]


def test_distribute_sql_refuses_a_sub_select_policy(citus_db: str) -> None:
    """A tenant table still holding the postgres flavour's policy (a sub-select, which Citus
    refuses on a distributed table) is a problem: the script stops before doing anything."""
    postgres_policy = (
        'alter policy "tenant rows are visible to readers of the tenant" on app.projects using '
        "(tenant_id = (select tenancy.context_tenant_id("
        "array['admin', 'member', 'owner', 'viewer'])))"
    )
    with psycopg.connect(citus_db, autocommit=True) as conn:
        conn.execute(postgres_policy)
    try:
        proc = psql(citus_db, "-f", str(DISTRIBUTE))
        problems = rows(
            citus_db,
            "select relation::text from tenancy.citus_distribution_plan() where action = 'problem'",
        )
    finally:
        with psycopg.connect(citus_db, autocommit=True) as conn:
            conn.execute(
                'alter policy "tenant rows are visible to readers of the tenant" on app.projects '
                "using (tenant_id operator(pg_catalog.=) tenancy.context_tenant_id_mac("
                "array['admin', 'member', 'owner', 'viewer']))"
            )
    assert problems == [("app.projects",)]
    assert proc.returncode == 3
    assert "the distribution plan has problems" in proc.stderr


def doctor_drift(url: str, spec: str) -> list[dict[str, str]]:
    proc = subprocess.run(
        [str(PGTENANCY), "doctor", "--database-url", url, "--spec", spec, "--format", "json",
         "--level", "info"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    return [f for f in json.loads(proc.stdout) if f["code"] == "0020"]


def test_doctor_compares_citus_flavoured_tables_with_the_citus_flavour(citus_db: str) -> None:
    """``pgtenancy doctor --spec`` renders a table's expected policies in the flavour its live
    policies are in: the Citus flavour's tables show no drift; a policy changed by hand does."""
    assert doctor_drift(citus_db, "tests/fixtures/tenancy.toml") == []
    assert doctor_drift(citus_db, "sql/tenancy.toml") == []
    with psycopg.connect(citus_db, autocommit=True) as conn:
        conn.execute(
            'alter policy "tenant rows are visible to readers of the tenant" on app.projects '
            "using (tenant_id operator(pg_catalog.=) tenancy.context_tenant_id_mac(array['owner']))"
        )
    try:
        drift = doctor_drift(citus_db, "tests/fixtures/tenancy.toml")
    finally:
        with psycopg.connect(citus_db, autocommit=True) as conn:
            conn.execute(
                'alter policy "tenant rows are visible to readers of the tenant" on app.projects '
                "using (tenant_id operator(pg_catalog.=) tenancy.context_tenant_id_mac("
                "array['admin', 'member', 'owner', 'viewer']))"
            )
    assert [f["object"] for f in drift] == [
        '"tenant rows are visible to readers of the tenant" on app.projects'
    ], drift
