"""pgtenancy generate: the catalog snapshot, --check, quoting, apply-time checks.

What the generator renders and refuses for each spec and catalog is in the golden cases
(tests/generator/cases, run without a database by tests/generator/test_cases.py). Here: the
snapshot read from a live catalog equals the cases' checked-in snapshots
(``PGTENANCY_UPDATE_GOLDEN=1`` rewrites them), the command line (``--check`` and its drift
report, from a case's snapshot), and the generated SQL applied to the session's real database,
in schemas of their own (dropped at the end). The checked-in outputs (sql/policies,
tests/fixtures/policies, tests/pgtap/generated) are rewritten by ``make generate``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from pgtenancy.generator import HEADER_PREFIX, cli_main
from pgtenancy.generator.catalog import read_snapshot
from pgtenancy.generator.render import ALL_POLICY_NAMES
from pgtenancy.generator.spec import SpecError, bind_roles, parse_spec
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlfluff.core import FluffConfig, Linter

from tests.generator import golden

REPO = Path(__file__).resolve().parents[2]
UPDATE_GOLDEN = os.environ.get("PGTENANCY_UPDATE_GOLDEN") == "1"
PGTENANCY = Path(sys.executable).with_name("pgtenancy")
#: A case whose snapshot holds gen.good (a serial column) and gen.other (tests/generator).
TWO_TABLES = golden.CASES / "two_tables"


# -- helpers ------------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> Run:
    code = cli_main([str(a) for a in argv])
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def write_spec(directory: Path, text: str, name: str = "tenancy.toml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def snapshot(directory: Path) -> dict[str, bytes]:
    if not directory.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def lint(text: str) -> list[str]:
    """sqlfluff violations of ``text`` under the repository's configuration."""
    linter = Linter(config=FluffConfig.from_path(str(REPO)))
    linted = linter.lint_string(text, fname="generated.sql")
    return [f"{v.rule_code()} line {v.line_no}: {v.desc()}" for v in linted.get_violations()]


def apply_sql(url: str, text: str) -> None:
    """Apply a generated file the way pgtenancy apply does: one transaction."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute(text.encode())


def pg_prove(url: str, test_file: Path) -> subprocess.CompletedProcess[str]:
    params = conninfo_to_dict(url)
    args = ["pg_prove", "--verbose", "-d", str(params["dbname"])]
    if params.get("host"):
        args += ["-h", str(params["host"])]
    if params.get("port"):
        args += ["-p", str(params["port"])]
    if params.get("user"):
        args += ["-U", str(params["user"])]
    return subprocess.run([*args, str(test_file)], capture_output=True, text=True, timeout=120)


def tap_summary(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout[-4000:] + result.stderr[-2000:]


# -- scratch tables -----------------------------------------------------------------------------


@dataclass
class Scratch:
    url: str
    schema: str


SCRATCH_DDL = """
create schema {schema};
grant usage on schema {schema} to tenancy_app;
create table {schema}.good (
    tenant_id uuid not null,
    id bigint generated always as identity,
    label text,
    line serial,
    constraint good_pkey primary key (tenant_id, id)
);
create table {schema}.other (
    tenant_id uuid not null,
    id bigint generated always as identity,
    constraint other_pkey primary key (tenant_id, id)
);
create table {schema}.no_tenant (id bigint primary key);
create table {schema}.text_tenant (tenant_id text not null, id bigint, primary key (tenant_id, id));
create view {schema}.good_view as select * from {schema}.good;
"""


@pytest.fixture(scope="module")
def scratch(database_url: str) -> Iterator[Scratch]:
    name = f"gen_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SCRATCH_DDL.format(schema=name).encode())
    try:
        yield Scratch(database_url, name)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(name)))


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in tmp_path so spec paths in headers are short and relative."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- the catalog snapshot and the checked-in output ----------------------------------------------

# The checked-in outputs (applied by migrate and the test template, run by pg_prove).
GOLDEN = {
    ("app", "policies"): REPO / "tests" / "fixtures" / "policies",
    ("core", "policies"): REPO / "sql" / "policies",
    ("app", "tests"): REPO / "tests" / "pgtap" / "generated",
    ("core", "tests"): REPO / "tests" / "pgtap" / "generated",
}


def test_snapshots_of_the_cases_match_the_live_catalog(database_url: str) -> None:
    """Every case's checked-in catalog.json is what read_snapshot reads from a migrated test
    database holding the fixture tables (tests/generator/schema.sql, applied in a transaction
    that is rolled back); app.* and tenancy.* are the test database's own."""
    with_snapshot = []
    for name in golden.case_names():
        try:
            with_snapshot.append((name, golden.load_case_spec(golden.CASES / name)))
        except SpecError:
            continue  # refused for its structure: no catalog is read
    assert len(with_snapshot) >= 15
    mismatched = []
    with psycopg.connect(database_url) as conn:
        conn.execute(golden.SCHEMA.read_bytes())
        for name, spec in with_snapshot:
            live = read_snapshot(conn, spec).to_json()
            path = golden.CASES / name / "catalog.json"
            if UPDATE_GOLDEN:
                path.write_text(live, encoding="utf-8")
            if not path.is_file() or path.read_text(encoding="utf-8") != live:
                mismatched.append(name)
        conn.rollback()
    assert mismatched == [], "catalog.json differs from the live catalog (see golden.py)"


def test_golden_policy_text() -> None:
    """The policy shapes the rest of pgtenancy relies on, spelled out once."""
    text = (GOLDEN["app", "policies"] / "app.projects.sql").read_text()
    assert text.startswith(
        "-- generated by pgtenancy from tests/fixtures/tenancy.toml: row level security for "
        '"app"."projects"; do not edit.\n'
    )
    assert 'select tenancy.assert_tenant_keys(\'"app"."projects"\');' in text
    assert (
        'alter table "app"."projects" alter column "tenant_id" set default '
        "tenancy.current_tenant_id();" in text
    )
    assert 'alter table "app"."projects" force row level security;' in text
    for name in ALL_POLICY_NAMES:
        assert f'drop policy if exists "{name}" on "app"."projects";' in text
    assert (
        'create policy "tenant rows are visible to readers of the tenant" on "app"."projects"\n'
        "as permissive\nfor select\nto public\n"
        'using ("tenant_id" operator (pg_catalog.=) '
        "(select tenancy.context_tenant_id(array['admin', 'member', 'owner', 'viewer'])));" in text
    )
    assert (
        "for update\nto public\n"
        'using ("tenant_id" operator (pg_catalog.=) '
        "(select tenancy.context_tenant_id(array['admin', 'owner'])))\n"
        'with check ("tenant_id" operator (pg_catalog.=) '
        "(select tenancy.context_tenant_id(array['admin', 'owner'])));" in text
    )
    grants = [line for line in text.splitlines() if line.startswith("grant ")]
    assert grants == [
        'grant select, insert, update, delete on "app"."projects" to tenancy_app;',
        'grant usage on schema "app" to tenancy_owner;',
        'grant select, delete on "app"."projects" to tenancy_owner;',
    ]
    core = (GOLDEN["core", "policies"] / "tenancy.memberships.sql").read_text()
    assert (
        'create policy "pgtenancy functions manage every row" on "tenancy"."memberships"\n'
        "as permissive\nfor all\nto tenancy_owner\nusing (true)\nwith check (true);" in core
    )
    assert 'grant select on "tenancy"."memberships" to tenancy_app;' in core
    assert 'create policy "tenant rows are inserted' not in core


def test_golden_citus_policy_text() -> None:
    """The Citus flavour: every policy compares the tenant column with the worker-verifiable
    context, bare (Citus refuses sub-selects in policies of distributed tables); the guard trigger
    checks that context too ('mac'); no audit trigger; the rest as in the postgres flavour."""
    postgres = (golden.CASES / "app" / "policies" / "app.projects.sql").read_text()
    citus = (golden.CASES / "citus_app" / "policies" / "app.projects.sql").read_text()
    assert citus.startswith(postgres.splitlines(keepends=True)[0])
    assert (
        'using ("tenant_id" operator (pg_catalog.=) '
        "tenancy.context_tenant_id_mac(array['admin', 'member', 'owner', 'viewer']));" in citus
    )
    assert (
        "for update\nto public\n"
        'using ("tenant_id" operator (pg_catalog.=) '
        "tenancy.context_tenant_id_mac(array['admin', 'owner']))\n"
        'with check ("tenant_id" operator (pg_catalog.=) '
        "tenancy.context_tenant_id_mac(array['admin', 'owner']));" in citus
    )
    assert "tenancy.tg_require_context('tenant_id', 'uuid', 'mac');" in citus
    assert 'create trigger "tenancy_audit_' not in citus
    assert 'create trigger "tenancy_audit_insert"' in postgres
    for name in ("citus_app", "citus_key_bigint"):
        for path in sorted((golden.CASES / name / "policies").glob("*.sql")):
            policies = [s for s in path.read_text().split(";") if "create policy" in s]
            assert policies, path
            assert not [s for s in policies if "(select" in s.lower()], path
    keyed = (golden.CASES / "citus_key_bigint" / "policies" / "gen.campaigns.sql").read_text()
    assert (
        'using ("company_id" operator (pg_catalog.=) tenancy.tenant_key_int8('
        "tenancy.context_tenant_key_mac(array['admin', 'member', 'owner', 'viewer'])));" in keyed
    )
    # Defaults, grants, key checks and the tests are the postgres flavour's.
    same = [
        line
        for line in postgres.splitlines()
        if line.startswith(("alter table", "grant", "select"))
    ]
    same = [line for line in same if "tenancy_audit" not in line]
    assert same and all(line in citus.splitlines() for line in same)
    assert (golden.CASES / "citus_app" / "tests" / "app.projects.sql").read_text() == (
        golden.CASES / "app" / "tests" / "app.projects.sql"
    ).read_text()


def test_unknown_flavour_is_refused(capsys: pytest.CaptureFixture[str], in_tmp: Path) -> None:
    with pytest.raises(SystemExit):
        cli_main(["--spec", "x.toml", "--out", "o", "--snapshot", "s.json", "--flavour", "mysql"])
    assert "invalid choice: 'mysql'" in capsys.readouterr().err


def test_checked_in_output_is_current(database_url: str) -> None:
    """The committed policies and tests match the generator (through the pgtenancy CLI), and so
    does the Citus flavour of pgtenancy's own policies (sql/citus/policies)."""
    tests = ["--tests", "tests/pgtap/generated"]
    for spec, out, extra in (
        ("tests/fixtures/tenancy.toml", "tests/fixtures/policies", tests),
        ("sql/tenancy.toml", "sql/policies", tests),
        ("sql/tenancy.toml", "sql/citus/policies", ["--flavour", "citus"]),
    ):
        proc = subprocess.run(
            [str(PGTENANCY), "generate", "--check", "--spec", spec, "--out", out, *extra,
             "--database-url", database_url],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "up to date" in proc.stdout


def test_generated_tests_are_one_planned_call() -> None:
    """Every generated test is one call of tenancy_test.tenant_table, which plans its assertions.

    The plan is computed in SQL from the call's arguments (sql/testing/tenancy_test/
    tenant_table.sql) and pg_prove compares it with the assertions made; a generated file makes
    no other assertion.
    """
    for path in sorted(GOLDEN["app", "tests"].glob("*.sql")):
        text = path.read_text()
        statements = re.findall(r"^(?:begin|select|rollback)\b.*$", text, re.MULTILINE)
        assert statements == [
            "begin;",
            "select * from tenancy_test.tenant_table(",
            "select * from finish();",
            "rollback;",
        ], path


# -- refused specs (the messages themselves are golden cases) ------------------------------------


def test_unreachable_database(capsys: pytest.CaptureFixture[str], in_tmp: Path) -> None:
    spec = write_spec(in_tmp, '[tables."app.projects"]\n')
    result = run(capsys, "--spec", spec.name, "--out", "out", "--database-url",
                 "postgresql://nobody@/nowhere?host=/nonexistent&connect_timeout=2")  # fmt: skip
    assert result.code == 2
    assert "cannot read the catalog of the database" in result.err
    assert not (in_tmp / "out").exists()


def test_spec_errors_raise_spec_error() -> None:
    roles = golden.load_case_snapshot(TWO_TABLES).member_roles
    with pytest.raises(SpecError, match=r"^x\.toml: table 'a\.b': unknown role 'root' in write"):
        bind_roles(parse_spec('[tables."a.b"]\nwrite = ["root"]\n', Path("x.toml")), roles)


# -- determinism and --check (from the snapshot of a golden case: no database needed) ------------

#: The two_tables case's snapshot (gen.good with a serial column, gen.other) and its schema.
SNAPSHOT = TWO_TABLES / "catalog.json"
SCHEMA = "gen"


def two_table_spec(schema: str, *, reverse: bool = False) -> str:
    good = f'[tables."{schema}.good"]\nread = {{roles}}\nwrite = ["owner", "admin"]\n'
    other = f'[tables."{schema}.other"]\nwrite = []\nowner_access = true\n'
    roles = (
        '["viewer", "owner", "member", "admin"]'
        if reverse
        else '["admin", "member", "owner", "viewer"]'
    )
    parts = [good.format(roles=roles), other]
    return "\n".join(reversed(parts) if reverse else parts)


def test_output_is_deterministic(capsys: pytest.CaptureFixture[str], in_tmp: Path) -> None:
    write_spec(in_tmp, two_table_spec(SCHEMA))
    first = run(capsys, "--spec", "tenancy.toml", "--out", "a/out", "--tests", "a/tests",
                "--snapshot", SNAPSHOT)  # fmt: skip
    second = run(capsys, "--spec", "tenancy.toml", "--out", "b/out", "--tests", "b/tests",
                 "--snapshot", SNAPSHOT)  # fmt: skip
    assert first.code == second.code == 0
    assert snapshot(in_tmp / "a/out") == snapshot(in_tmp / "b/out")
    assert snapshot(in_tmp / "a/tests") == snapshot(in_tmp / "b/tests")
    assert len(snapshot(in_tmp / "a/out")) == 2
    # The order of tables and roles in the spec does not matter.
    write_spec(in_tmp, two_table_spec(SCHEMA, reverse=True))
    third = run(capsys, "--spec", "tenancy.toml", "--out", "c/out", "--tests", "c/tests",
                "--snapshot", SNAPSHOT)  # fmt: skip
    assert third.code == 0
    assert snapshot(in_tmp / "c/out") == snapshot(in_tmp / "a/out")
    assert snapshot(in_tmp / "c/tests") == snapshot(in_tmp / "a/tests")


def check(capsys: pytest.CaptureFixture[str]) -> Run:
    return run(capsys, "--check", "--spec", "tenancy.toml", "--out", "out", "--tests", "tests",
               "--snapshot", SNAPSHOT)  # fmt: skip


def generate(capsys: pytest.CaptureFixture[str]) -> Run:
    return run(capsys, "--spec", "tenancy.toml", "--out", "out", "--tests", "tests",
               "--snapshot", SNAPSHOT)  # fmt: skip


def test_check_up_to_date_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], in_tmp: Path
) -> None:
    write_spec(in_tmp, two_table_spec(SCHEMA))
    missing = check(capsys)
    assert missing.code == 1
    assert missing.out.count("missing: ") == 4
    assert not (in_tmp / "out").exists() and not (in_tmp / "tests").exists()
    assert generate(capsys).code == 0
    before = snapshot(in_tmp / "out"), snapshot(in_tmp / "tests")
    ok = check(capsys)
    assert ok.code == 0, ok
    assert "4 generated files from tenancy.toml are up to date" in ok.out
    assert (snapshot(in_tmp / "out"), snapshot(in_tmp / "tests")) == before


def test_check_finds_stale_file(capsys: pytest.CaptureFixture[str], in_tmp: Path) -> None:
    write_spec(in_tmp, two_table_spec(SCHEMA))
    assert generate(capsys).code == 0
    target = in_tmp / "out" / f"{SCHEMA}.good.sql"
    edited = target.read_text().replace("force row level security", "no force row level security")
    target.write_text(edited)
    stale = check(capsys)
    assert stale.code == 1
    assert stale.out.strip() == f"stale: out/{SCHEMA}.good.sql (regenerating would change it)"
    assert target.read_text() == edited  # --check writes nothing
    # A spec change makes the files of that table stale too.
    write_spec(in_tmp, two_table_spec(SCHEMA).replace('["owner", "admin"]', '["owner"]'))
    assert generate(capsys).code == 0
    assert "force row level security" in target.read_text()
    assert "array['owner'])" in target.read_text()
    assert check(capsys).code == 0


def test_check_finds_extra_file_and_generate_removes_it(
    capsys: pytest.CaptureFixture[str], in_tmp: Path
) -> None:
    write_spec(in_tmp, two_table_spec(SCHEMA))
    assert generate(capsys).code == 0
    # Hand-written SQL and files generated from another spec sit in the same directories.
    (in_tmp / "out" / "handwritten.sql").write_text("select 1;\n")
    (in_tmp / "tests" / "other.sql").write_text(f"{HEADER_PREFIX}elsewhere.toml: x; do not edit.\n")
    # Drop "other" from the spec: its two files are now extra.
    write_spec(in_tmp, two_table_spec(SCHEMA).split("\n\n")[0] + "\n")
    extra = check(capsys)
    assert extra.code == 1
    assert sorted(extra.out.strip().splitlines()) == [
        f"extra: out/{SCHEMA}.other.sql (generated from the spec, but its table is no "
        "longer in it)",
        f"extra: tests/{SCHEMA}.other.sql (generated from the spec, but its table is no "
        "longer in it)",
    ]
    assert (in_tmp / "out" / f"{SCHEMA}.other.sql").exists()
    done = generate(capsys)
    assert done.code == 0
    assert f"removed out/{SCHEMA}.other.sql" in done.out
    assert not (in_tmp / "out" / f"{SCHEMA}.other.sql").exists()
    assert (in_tmp / "out" / "handwritten.sql").exists()
    assert (in_tmp / "tests" / "other.sql").exists()
    assert check(capsys).code == 0


def test_generate_refuses_to_overwrite_foreign_file(
    capsys: pytest.CaptureFixture[str], in_tmp: Path
) -> None:
    write_spec(in_tmp, f'[tables."{SCHEMA}.good"]\n')
    (in_tmp / "out").mkdir()
    mine = in_tmp / "out" / f"{SCHEMA}.good.sql"
    mine.write_text("-- my own policies\n")
    checked = check(capsys)
    assert checked.code == 1
    assert f"not ours: out/{SCHEMA}.good.sql" in checked.out
    result = generate(capsys)
    assert result.code == 2
    assert "refusing to overwrite" in result.err
    assert mine.read_text() == "-- my own policies\n"


# -- applying generated SQL ---------------------------------------------------------------------


def generate_for(
    capsys: pytest.CaptureFixture[str], url: str, directory: Path, spec_text: str
) -> tuple[Path, Path]:
    write_spec(directory, spec_text)
    result = run(capsys, "--spec", "tenancy.toml", "--out", "out", "--tests", "tests",
                 "--database-url", url)  # fmt: skip
    assert result.code == 0, result.err
    return directory / "out", directory / "tests"


def test_weird_identifiers_are_quoted_and_work(
    capsys: pytest.CaptureFixture[str], database_url: str, in_tmp: Path
) -> None:
    schema = f'Gen "Odd" {uuid.uuid4().hex[:6]}'
    table = 'We"ird'
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "create schema {s}; grant usage on schema {s} to tenancy_app;"
                "create table {s}.{t} (tenant_id uuid not null, {n} serial, {c} text,"
                " constraint {pk} primary key (tenant_id, {n}))"
            ).format(
                s=sql.Identifier(schema),
                t=sql.Identifier(table),
                n=sql.Identifier("N°"),
                c=sql.Identifier("Na'me"),
                pk=sql.Identifier('We"ird pkey'),
            )
        )
    try:
        key = f"{schema}.{table}".replace("\\", "\\\\").replace('"', '\\"')
        out, tests = generate_for(
            capsys, database_url, in_tmp, f'[tables."{key}"]\nwrite = ["owner", "admin"]\n'
        )
        name = f"{schema}.{table}.sql"
        policy = (out / name).read_text()
        quoted = '"Gen ""Odd"" ' + schema.rsplit(" ", 1)[1] + '"."We""ird"'
        assert f"alter table {quoted} force row level security;" in policy
        assert f"select tenancy.assert_tenant_keys('{quoted}');" in policy
        assert "grant usage on sequence" in policy and '"We""ird_N°_seq"' in policy
        assert lint(policy) == []
        assert lint((tests / name).read_text()) == []
        apply_sql(database_url, policy)
        proved = pg_prove(database_url, tests / name)
        assert proved.returncode == 0, tap_summary(proved)
        assert "All tests successful" in proved.stdout
        # The generated policies really isolate: a service context of one tenant writes, another
        # tenant's member sees nothing, and the serial sequence is usable by tenancy_app.
        with psycopg.connect(database_url) as conn:
            qualified = sql.Identifier(schema, table)
            conn.execute("set local role tenancy_admin")
            a = conn.execute(
                "select tenancy.create_tenant(%s, 'A', gen_random_uuid()::text)",
                (f"weird-a-{uuid.uuid4().hex[:8]}",),
            ).fetchone()
            b = conn.execute(
                "select tenancy.create_tenant(%s, 'B', gen_random_uuid()::text)",
                (f"weird-b-{uuid.uuid4().hex[:8]}",),
            ).fetchone()
            assert a is not None and b is not None
            conn.execute("set local role tenancy_service")
            conn.execute("select tenancy.set_context(%s)", (a[0],))
            conn.execute(sql.SQL("insert into {} ({}) values ('x')").format(
                qualified, sql.Identifier("Na'me")))  # fmt: skip
            seen = conn.execute(sql.SQL("select tenant_id from {}").format(qualified)).fetchall()
            assert seen == [(a[0],)]
            conn.execute("select tenancy.set_context(%s)", (b[0],))
            assert conn.execute(
                sql.SQL("select count(*) from {}").format(qualified)
            ).fetchone() == (0,)
            conn.rollback()
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))


KEY_TABLES = """
create schema {s};
create table {s}.bad (
    tenant_id uuid not null,
    id bigint not null,
    code text not null,
    constraint bad_pkey primary key (id, tenant_id),
    constraint bad_code_key unique (code)
);
create table {s}.fine (
    tenant_id uuid not null,
    id bigint not null,
    constraint fine_pkey primary key (tenant_id, id)
);
"""


def test_key_check_fails_at_apply_time(
    capsys: pytest.CaptureFixture[str], database_url: str, in_tmp: Path
) -> None:
    schema = f"gen_keys_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(KEY_TABLES.format(s=schema).encode())
    try:
        out, _ = generate_for(
            capsys, database_url, in_tmp, f'[tables."{schema}.bad"]\n[tables."{schema}.fine"]\n'
        )
        with pytest.raises(psycopg.Error) as caught:
            apply_sql(database_url, (out / f"{schema}.bad.sql").read_text())
        assert caught.value.sqlstate == "TN007"
        message = str(caught.value)
        assert f"primary key bad_pkey of {schema}.bad (PRIMARY KEY (id, tenant_id))" in message
        assert "add constraint bad_pkey primary key (tenant_id, id)" in message
        assert f"unique constraint bad_code_key of {schema}.bad (UNIQUE (code))" in message
        assert "add constraint bad_code_key unique (tenant_id, code)" in message
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "select relrowsecurity from pg_class where oid = %s::regclass",
                (f"{schema}.bad",),
            ).fetchone()
            assert row == (False,), "nothing of the failed file may be applied"
        apply_sql(database_url, (out / f"{schema}.fine.sql").read_text())
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "select relrowsecurity, relforcerowsecurity from pg_class where oid = %s::regclass",
                (f"{schema}.fine",),
            ).fetchone()
            assert row == (True, True)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))


CATALOG_STATE = """
select
    (select count(*) from pg_policy where polrelid = %(t)s::regclass),
    (select array_agg(polname order by polname) from pg_policy where polrelid = %(t)s::regclass),
    (select count(*) from pg_trigger where tgrelid = %(t)s::regclass and not tgisinternal),
    (select relacl::text from pg_class where oid = %(t)s::regclass),
    (select relrowsecurity and relforcerowsecurity from pg_class where oid = %(t)s::regclass)
"""


def test_generated_sql_is_idempotent(
    capsys: pytest.CaptureFixture[str], scratch: Scratch, in_tmp: Path
) -> None:
    spec = f'[tables."{scratch.schema}.good"]\nwrite = ["owner", "admin"]\nowner_access = true\n'
    out, tests = generate_for(capsys, scratch.url, in_tmp, spec)
    text = (out / f"{scratch.schema}.good.sql").read_text()
    target = f"{scratch.schema}.good"
    apply_sql(scratch.url, text)
    with psycopg.connect(scratch.url) as conn:
        first = conn.execute(CATALOG_STATE, {"t": target}).fetchone()
        usage = conn.execute(
            "select has_sequence_privilege('tenancy_app', %s, 'usage')", (f"{target}_line_seq",)
        ).fetchone()
    assert usage == (True,), "writers need the serial column's sequence"
    apply_sql(scratch.url, text)
    with psycopg.connect(scratch.url) as conn:
        second = conn.execute(CATALOG_STATE, {"t": target}).fetchone()
    assert first == second
    # 3 guards, 3 audit triggers and the TRUNCATE refusal.
    assert first is not None and first[0] == 5 and first[2] == 7 and first[4] is True
    # Narrowing the spec and re-applying removes the policies and privileges no longer wanted.
    out, tests = generate_for(capsys, scratch.url, in_tmp, f'[tables."{target}"]\nwrite = []\n')
    apply_sql(scratch.url, (out / f"{target}.sql").read_text())
    with psycopg.connect(scratch.url) as conn:
        narrowed = conn.execute(CATALOG_STATE, {"t": target}).fetchone()
    assert narrowed is not None
    assert narrowed[1] == ["tenant rows are visible to readers of the tenant"]
    assert "tenancy_app=r/" in str(narrowed[3]) and "tenancy_app=arwd/" not in str(narrowed[3])
    with psycopg.connect(scratch.url) as conn:
        usage = conn.execute(
            "select has_sequence_privilege('tenancy_app', %s, 'usage')", (f"{target}_line_seq",)
        ).fetchone()
    assert usage == (False,)
    proved = pg_prove(scratch.url, tests / f"{target}.sql")
    assert proved.returncode == 0, tap_summary(proved)


def test_generated_test_for_narrow_roles(
    capsys: pytest.CaptureFixture[str], scratch: Scratch, in_tmp: Path
) -> None:
    """Roles that neither read nor write are tested too, and the explicit plan holds."""
    target = f"{scratch.schema}.other"
    spec = f'[tables."{target}"]\nread = ["owner", "admin"]\nwrite = ["owner"]\n'
    out, tests = generate_for(capsys, scratch.url, in_tmp, spec)
    apply_sql(scratch.url, (out / f"{target}.sql").read_text())
    proved = pg_prove(scratch.url, tests / f"{target}.sql")
    assert proved.returncode == 0, tap_summary(proved)
    planned = re.search(r"^1\.\.(\d+)$", proved.stdout, re.MULTILINE)
    assert planned is not None
    assert len(re.findall(r"^ok \d+ ", proved.stdout, re.MULTILINE)) == int(planned.group(1))
    assert f'a viewer of tenant A sees no row of "{scratch.schema}"."other"' in proved.stdout
    assert f'an admin of tenant A cannot insert into "{scratch.schema}"."other"' in proved.stdout


# -- key layout: every index and exclusion constraint starts with tenant_id -----------------------

LAYOUT_TABLE = """
create extension if not exists btree_gist;
create extension if not exists btree_gin;
create schema {s};
grant usage on schema {s} to tenancy_app;
create table {s}.notes (
    tenant_id uuid not null,
    id bigint generated always as identity,
    title text not null,
    email text not null,
    during tstzrange not null default tstzrange(now(), null),
    tags text[] not null default '{{}}',
    constraint notes_pkey primary key (tenant_id, id)
);
"""

FIX = re.compile(r"; fix: (.*)$", re.MULTILINE)


def test_key_check_names_every_index_and_exclusion_constraint_with_its_fix(
    capsys: pytest.CaptureFixture[str], database_url: str, in_tmp: Path
) -> None:
    """A plain index, a unique index on an expression and an exclusion constraint without
    tenant_id each refuse the policy file (TN007, all three named); the fixes the message gives,
    run as they are, make it apply; tenant-led GIN (btree_gin) and GiST (btree_gist) are fine."""
    schema = f"gen_layout_{uuid.uuid4().hex[:8]}"
    table = f"{schema}.notes"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(LAYOUT_TABLE.format(s=schema).encode())
        conn.execute(f"create index notes_title_idx on {table} (title)")
        conn.execute(f"create unique index notes_email_key on {table} (lower(email))")
        conn.execute(
            f"alter table {table} add constraint notes_during_excl exclude using gist "
            "(during with &&)"
        )
    try:
        write_spec(in_tmp, f'[tables."{table}"]\n')
        result = run(capsys, "--spec", "tenancy.toml", "--out", "out", "--database-url",
                     database_url)  # fmt: skip
        assert result.code == 0, result.err
        assert "warning" in result.err and "notes_title_idx" in result.err, result.err
        policy = (in_tmp / "out" / f"{table}.sql").read_text()
        with pytest.raises(psycopg.Error) as caught:
            apply_sql(database_url, policy)
        assert caught.value.sqlstate == "TN007"
        message = str(caught.value)
        assert f"tenant table {table}: 3 key layout problems:" in message
        assert (
            f"index {schema}.notes_title_idx of {table} (on title) does not start with "
            f"tenant_id; fix: drop index {schema}.notes_title_idx; create index notes_title_idx "
            f"ON {table} USING btree (tenant_id, title)" in message
        )
        assert (
            f"unique index {schema}.notes_email_key of {table} (first key is the expression "
            f"lower(email)) does not start with tenant_id; fix: drop index "
            f"{schema}.notes_email_key; create unique index notes_email_key ON {table} USING "
            "btree (tenant_id, lower(email))" in message
        )
        assert (
            f"exclusion constraint notes_during_excl of {table} (EXCLUDE USING gist (during "
            "WITH &&)) does not start with tenant_id WITH = (a GiST index takes tenant_id with "
            f"the btree_gist extension); fix: alter table {table} drop constraint "
            "notes_during_excl, add constraint notes_during_excl EXCLUDE USING gist "
            "(tenant_id WITH =, during WITH &&)" in message
        )
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "select relrowsecurity from pg_class where oid = %s::regclass", (table,)
            ).fetchone()
        assert row == (False,), "nothing of the refused file may be applied"
        # The fixes are runnable as given; with them (and a tenant-led GIN index through
        # btree_gin) the same file applies.
        fixes = FIX.findall(message)
        assert len(fixes) == 3
        with psycopg.connect(database_url, autocommit=True) as conn:
            for fix in fixes:
                conn.execute(fix.encode())
            conn.execute(f"create index notes_tags_idx on {table} using gin (tenant_id, tags)")
        apply_sql(database_url, policy)
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "select relrowsecurity and relforcerowsecurity from pg_class "
                "where oid = %s::regclass",
                (table,),
            ).fetchone()
        assert row == (True,)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))


def _two_tenants(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    with psycopg.connect(url) as conn:
        conn.execute("set local role tenancy_admin")
        ids = []
        for label in ("a", "b"):
            row = conn.execute(
                "select tenancy.create_tenant(%s, %s, gen_random_uuid()::text)",
                (f"layout-{label}-{uuid.uuid4().hex[:8]}", label.upper()),
            ).fetchone()
            assert row is not None
            ids.append(row[0])
    return ids[0], ids[1]


def _rows_removed(conn: psycopg.Connection[tuple[object, ...]], query: str) -> int:
    """Sum of "Rows Removed by Filter" over the plan of ``explain (analyze) query``."""
    (plan,) = conn.execute(f"explain (analyze, format json) {query}").fetchone()  # type: ignore[misc]

    def walk(node: dict[str, object]) -> int:
        removed = int(node.get("Rows Removed by Filter", 0))  # type: ignore[call-overload]
        for child in node.get("Plans", []):  # type: ignore[union-attr]
            removed += walk(child)
        return removed

    return walk(plan[0]["Plan"])


def test_explain_analyze_counts_other_tenants_rows_unless_the_index_leads_with_tenant_id(
    capsys: pytest.CaptureFixture[str], database_url: str, in_tmp: Path
) -> None:
    """The side channel the key-layout check closes: with an index on title alone, EXPLAIN
    ANALYZE of a range query shows how many rows of OTHER tenants fall in the range; with the
    index on (tenant_id, title) it shows none. An index added after the policy file was applied
    is named when the file is applied again."""
    schema = f"gen_leak_{uuid.uuid4().hex[:8]}"
    table = f"{schema}.notes"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(LAYOUT_TABLE.format(s=schema).encode())
        conn.execute(f"create index notes_tenant_id_title_idx on {table} (tenant_id, title)")
    try:
        out, _ = generate_for(capsys, database_url, in_tmp, f'[tables."{table}"]\n')
        policy = (out / f"{table}.sql").read_text()
        apply_sql(database_url, policy)
        a, b = _two_tenants(database_url)
        probe = f"select * from {table} where title between 'secret-12' and 'secret-13'"
        with psycopg.connect(database_url, autocommit=True) as conn:
            # The tenants' rows interleave, as they do in a shared table.
            conn.execute(
                f"insert into {table} (tenant_id, title, email) select case g %% 2 when 0 then "
                "%(a)s else %(b)s end, case g %% 2 when 0 then 'mine-' else 'secret-' end || g, "
                "'u' || g || '@x.test' from generate_series(1, 6000) as g",
                {"a": a, "b": b},
            )
            conn.execute(f"analyze {table}")
            in_range = conn.execute(f"select count(*) from ({probe}) as q").fetchone()
        assert in_range == (56,), "tenant B's titles in the probed range"

        def as_tenant_a() -> tuple[int, int]:
            with psycopg.connect(database_url) as conn:
                conn.execute("set local role tenancy_service")
                conn.execute("select tenancy.set_context(%s)", (a,))
                conn.execute("set local enable_seqscan = off")
                conn.execute("set local enable_bitmapscan = off")
                rows = conn.execute(f"select count(*) from ({probe}) as q").fetchone()
                assert rows is not None
                return rows[0], _rows_removed(conn, probe)

        assert as_tenant_a() == (0, 0), "a tenant-led index shows nothing of tenant B"
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"drop index {schema}.notes_tenant_id_title_idx")
            conn.execute(f"create index notes_title_idx on {table} (title)")
        seen, removed = as_tenant_a()
        assert seen == 0
        assert removed == 56, "the leak: B's titles between secret-12 and secret-13 are counted"
        with pytest.raises(psycopg.Error) as caught:
            apply_sql(database_url, policy)
        assert caught.value.sqlstate == "TN007"
        assert f"index {schema}.notes_title_idx of {table} (on title)" in str(caught.value)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))


# -- tenant_id immutability whatever other triggers do ------------------------------------------

MOVER = """
create function {s}.zz_move() returns trigger language plpgsql as $$
begin
    if new.title = 'move me' then
        new.tenant_id := current_setting('layout_test.target')::uuid;
    end if;
    return new;
end
$$;
create trigger zz_move before update on {s}.notes
for each row execute function {s}.zz_move();
"""


def test_tenant_id_guard_holds_when_a_later_trigger_rewrites_it(
    capsys: pytest.CaptureFixture[str], database_url: str, in_tmp: Path
) -> None:
    """A BEFORE UPDATE trigger named after the guard (so it fires later) moves the row to another
    tenant: the table owner, whom no policy stops, gets TN006 and the row stays; ordinary updates
    of other columns still work, through the same trigger."""
    schema = f"gen_guard_{uuid.uuid4().hex[:8]}"
    table = f"{schema}.notes"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(LAYOUT_TABLE.format(s=schema).encode())
    try:
        out, _ = generate_for(capsys, database_url, in_tmp, f'[tables."{table}"]\n')
        apply_sql(database_url, (out / f"{table}.sql").read_text())
        a, b = _two_tenants(database_url)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(MOVER.format(s=schema).encode())
            conn.execute(
                f"insert into {table} (tenant_id, title, email) values (%s, 'first', 'x@a.test')",
                (a,),
            )
            conn.execute("select set_config('layout_test.target', %s, false)", (str(b),))
            owner = conn.execute(
                "select pg_get_userbyid(relowner) = current_user from pg_class "
                "where oid = %s::regclass",
                (table,),
            ).fetchone()
            assert owner == (True,), "the update runs as the table's owner"
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(f"update {table} set title = 'move me'")
            assert caught.value.sqlstate == "TN006"
            assert f"from {a} to {b}" in str(caught.value)
            assert conn.execute(f"select tenant_id, title from {table}").fetchall() == [
                (a, "first")
            ]
            conn.execute(f"update {table} set title = 'renamed', email = 'y@a.test'")
            assert conn.execute(f"select tenant_id, title from {table}").fetchall() == [
                (a, "renamed")
            ]
        # The rightful tenant updates its row through the policies and both guards.
        with psycopg.connect(database_url) as conn:
            conn.execute("set local role tenancy_service")
            conn.execute("select tenancy.set_context(%s)", (a,))
            conn.execute(f"update {table} set title = 'by tenant a'")
            assert conn.execute(f"select title from {table}").fetchall() == [("by tenant a",)]
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))


def test_generated_sql_binds_pg_catalog_operators_whatever_the_search_path(
    capsys: pytest.CaptureFixture[str], scratch: Scratch, in_tmp: Path
) -> None:
    """A policy or trigger condition binds its operators when the file is applied: an `=` found
    through the applier's search_path (here a schema whose `=` on uuids is always true) would
    stay in the policy for good. The generated SQL names pg_catalog's."""
    hostile = f"hostile_{uuid.uuid4().hex[:8]}"
    target = f"{scratch.schema}.bound_ops"
    with psycopg.connect(scratch.url, autocommit=True) as conn:
        conn.execute(
            f"create table {target}"
            " (tenant_id uuid not null, id bigint, primary key (tenant_id, id))"
        )
        conn.execute(f"create schema {hostile}")
        conn.execute(
            f"create function {hostile}.eq(uuid, uuid) returns boolean language sql immutable "
            "as 'select true'"
        )
        conn.execute(f"create operator {hostile}.= (function = {hostile}.eq, leftarg = uuid, "
                     "rightarg = uuid)")  # fmt: skip
    try:
        out, _ = generate_for(capsys, scratch.url, in_tmp, f'[tables."{target}"]\n')
        text = (out / f"{target}.sql").read_text()
        apply_sql(scratch.url, f"set search_path = {hostile}, pg_catalog, public;\n" + text)
        with psycopg.connect(scratch.url) as conn:
            bound = conn.execute(
                "select count(*) from pg_depend where refclassid = 'pg_operator'::regclass"
                " and refobjid = %s::regoperator",
                (f"{hostile}.=(uuid,uuid)",),
            ).fetchone()
            policies = conn.execute(
                "select count(*) from pg_policy where polrelid = %s::regclass", (target,)
            ).fetchone()
        assert policies == (4,)
        assert bound == (0,)
    finally:
        with psycopg.connect(scratch.url, autocommit=True) as conn:
            conn.execute(f"drop schema {hostile} cascade")
            conn.execute(f"drop table if exists {target}")


# -- partitions created at run time (partitions = "runtime") -----------------------------------

RUNTIME_TABLE = """
create schema {s};
grant usage on schema {s} to tenancy_app;
create table {s}.usage (
    tenant_id uuid not null,
    id bigint not null,
    occurred_at timestamptz not null,
    value numeric not null default 1,
    constraint usage_pkey primary key (tenant_id, id, occurred_at)
) partition by range (occurred_at);
"""

#: What the function owning the table's partitioning does for each partition it creates: the
#: partition, row level security enabled and forced, no policy and no grant.
RUNTIME_PARTITION = """
create table {s}.{p} partition of {s}.usage {bounds};
alter table {s}.{p} enable row level security;
alter table {s}.{p} force row level security;
"""


def test_runtime_partitions_are_reached_through_the_table_only(
    capsys: pytest.CaptureFixture[str], database_url: str, in_tmp: Path
) -> None:
    """With ``partitions = "runtime"`` the policy file secures the partitioned table alone: it
    applies again after a partition was created at run time (no TN007, and ``generate --check``
    finds it current), still refuses a partition whose index does not lead with tenant_id, and
    the application reads the new partition's rows through the table, under its policies, but
    not the partition itself (no grant)."""
    from pgtenancy import doctor

    s = f"gen_runtime_{uuid.uuid4().hex[:8]}"

    def partition(name: str, bounds: str) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(RUNTIME_PARTITION.format(s=s, p=name, bounds=bounds).encode())

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(RUNTIME_TABLE.format(s=s).encode())
        conn.execute("set role tenancy_admin")
        a, b = (
            conn.execute(
                "select tenancy.create_tenant(%s, %s, gen_random_uuid()::text)",
                (f"runtime-{label.lower()}-{uuid.uuid4().hex[:8]}", label),
            ).fetchone()[0]  # type: ignore[index]
            for label in ("A", "B")
        )
    partition("usage_default", "default")
    try:
        spec = (
            f'[tables."{s}.usage"]\npartitions = "runtime"\n'
            'sample = { id = "(random() * 1e15)::bigint", occurred_at = "now()" }\n'
        )
        out, tests = generate_for(capsys, database_url, in_tmp, spec)
        path = out / f"{s}.usage.sql"
        text = path.read_text()
        assert f'select tenancy.assert_tenant_keys(\n    \'"{s}"."usage"\',\n' in text
        assert "    p_covered => null\n);" in text
        assert "usage_default" not in text, "the file names no partition"
        assert "p_descendants => array[]::regclass[]" in (tests / f"{s}.usage.sql").read_text()
        apply_sql(database_url, text)
        proved = pg_prove(database_url, tests / f"{s}.usage.sql")
        assert proved.returncode == 0, tap_summary(proved)

        # A month's partition, created at run time: the file applies again, and is current.
        partition(
            "usage_2026_05", "for values from ('2026-05-01 00:00+00') to ('2026-06-01 00:00+00')"
        )
        apply_sql(database_url, text)
        checked = run(capsys, "--spec", "tenancy.toml", "--out", "out", "--tests", "tests",
                      "--check", "--database-url", database_url)  # fmt: skip
        assert checked.code == 0, checked.out + checked.err

        # The application: each tenant's rows through the table; the partitions not at all.
        for tenant, ids in ((a, (1, 2)), (b, (3,))):
            with psycopg.connect(database_url) as conn:
                conn.execute("set local role tenancy_service")
                conn.execute("select tenancy.set_context(%s)", (tenant,))
                conn.execute("set local role tenancy_app")
                for n in ids:
                    conn.execute(
                        f"insert into {s}.usage (id, occurred_at) values (%s, %s)",
                        (n, "2026-05-10 12:00+00"),
                    )
        with psycopg.connect(database_url) as conn:
            placed = conn.execute(
                f"select tableoid::regclass::text, count(*) from {s}.usage group by 1"
            ).fetchall()
        assert placed == [(f"{s}.usage_2026_05", 3)]
        with psycopg.connect(database_url) as conn:
            conn.execute("set local role tenancy_service")
            conn.execute("select tenancy.set_context(%s)", (a,))
            conn.execute("set local role tenancy_app")
            seen = conn.execute(f"select tenant_id, id from {s}.usage order by id").fetchall()
            assert seen == [(a, 1), (a, 2)]
            for name in ("usage_2026_05", "usage_default"):
                with pytest.raises(psycopg.Error) as caught, conn.transaction():
                    conn.execute(f"select count(*) from {s}.{name}")
                assert caught.value.sqlstate == "42501", name
        # Queried directly, a partition shows its owner nothing either (forced, no policy).
        with psycopg.connect(database_url) as conn:
            conn.execute(f"create role {s}_owner")
            conn.execute(f"grant usage on schema {s} to {s}_owner")
            conn.execute(f"alter table {s}.usage_2026_05 owner to {s}_owner")
            conn.execute(f"set local role {s}_owner")
            assert conn.execute(f"select count(*) from {s}.usage_2026_05").fetchone() == (0,)
            conn.rollback()

        # doctor agrees: the partitions are forced (0009) and need no policies of their own (0020).
        with psycopg.connect(database_url) as conn:
            unforced = conn.execute(
                "select object from tenancy.lint_0009_descendant_rls_not_forced"
                " where object like %s",
                (f"{s}.%",),
            ).fetchall()
            drift = doctor.drift_findings(conn, doctor.load_spec_file(in_tmp / "tenancy.toml"))
        assert unforced == []
        assert [f for f in drift if s in f.object] == []

        # The keys of every partition are still checked: an index not led by tenant_id refuses.
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"create index usage_2026_05_value_idx on {s}.usage_2026_05 (value)")
        with pytest.raises(psycopg.Error) as refused:
            apply_sql(database_url, text)
        assert refused.value.sqlstate == "TN007"
        message = str(refused.value)
        assert (
            f"index {s}.usage_2026_05_value_idx of {s}.usage_2026_05 (on value) does not start "
            "with tenant_id" in message
        )
        assert "has no row level security from this policy file" not in message
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(s)))
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(f"{s}_owner")))
