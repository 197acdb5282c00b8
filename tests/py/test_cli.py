"""The ``pgtenancy`` command line, run as a subprocess the way a DBA or CI runs it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import run_cli
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

import pgtenancy.migrate as migrate_mod
from pgtenancy import testing
from pgtenancy.migrate import migrate, steps
from pgtenancy.resources import sql_dir
from pgtenancy.testing import cluster


@pytest.fixture
def scratch_db(base_url: str) -> Iterator[str]:
    """A brand-new empty database, dropped afterwards."""
    name = f"pgtenancy_scratch_{uuid.uuid4().hex[:12]}"
    admin = testing.with_dbname(base_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield testing.with_dbname(base_url, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(name)))


def relation_exists(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()
    return bool(row and row[0])


# -- help ------------------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    res = run_cli("--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: pgtenancy")
    for command in ("migrate", "generate", "apply", "db"):
        assert re.search(rf"^\s+{command}\s", res.stdout, re.MULTILINE), res.stdout


@pytest.mark.parametrize("command", ["migrate", "generate", "apply", "db"])
def test_each_command_has_help(command: str) -> None:
    res = run_cli(command, "--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: pgtenancy {command}")


def test_no_command_is_a_usage_error() -> None:
    res = run_cli()
    assert res.returncode == 2
    assert res.stdout == ""
    assert "usage: pgtenancy" in res.stderr
    assert "required" in res.stderr


def test_python_dash_m_runs_the_same_cli() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pgtenancy", "--help"],
        cwd="/tmp",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == run_cli("--help").stdout


# -- migrate --list ----------------------------------------------------------------------------

LIST_LINE = re.compile(r"^(?P<state>applied|pending) +(?P<id>\S+) +(?P<source>\S+)$")


def parse_list(stdout: str) -> list[tuple[str, str, str]]:
    """(state, step id, source) per line; the three columns must line up."""
    lines = stdout.splitlines()
    parsed = [LIST_LINE.match(line) for line in lines]
    assert lines and all(parsed), stdout
    matches = [m for m in parsed if m]
    assert {m.start("id") for m in matches} == {len("applied") + 2}, stdout
    assert len({m.start("source") for m in matches}) == 1, stdout
    return [(m["state"], m["id"], m["source"]) for m in matches]


def test_migrate_list_shows_applied_and_pending_steps(
    scratch_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Migrate from a copy of the sources lacking one definition, so exactly that one is
    # pending for the package's own sources.
    root = tmp_path / "sql"
    shutil.copytree(sql_dir(), root)
    (root / "functions" / "context" / "clear_context.sql").unlink()
    monkeypatch.setattr(migrate_mod, "sql_dir", lambda: root)
    migrate(scratch_db)
    monkeypatch.undo()

    res = run_cli("migrate", "--list", "--database-url", scratch_db)
    assert res.returncode == 0, res.stderr
    rows = parse_list(res.stdout)
    expected = [
        (
            "pending" if s.source.name == "clear_context.sql" else "applied",
            s.id,
            s.display,
        )
        for s in steps()
    ]
    assert rows == expected
    assert [r for r in rows if r[0] == "pending"] == [
        next(e for e in expected if e[2] == "functions/context/clear_context.sql")
    ]
    assert rows[0] == ("applied", "0001_tenancy_roles", "migrations/0001_tenancy_roles.sql")

    # Migrating applies just the pending one; then every line says applied.
    res = run_cli("migrate", "--database-url", scratch_db)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"applied {r[1]}" for r in rows if r[0] == "pending"]
    res = run_cli("migrate", "--list", "--database-url", scratch_db)
    assert [r[0] for r in parse_list(res.stdout)] == ["applied"] * len(rows)


def test_migrate_list_honours_database_url_from_the_environment(scratch_db: str) -> None:
    env = dict(os.environ, DATABASE_URL=scratch_db)
    res = run_cli("migrate", "--list", cwd="/tmp", env=env)
    assert res.returncode == 0, res.stderr
    assert {r[0] for r in parse_list(res.stdout)} == {"pending"}


def test_migrate_against_an_unreachable_database_fails_cleanly(tmp_path: Path) -> None:
    url = f"postgresql://postgres@/nowhere?host={tmp_path}&port=1"
    script = tmp_path / "noop.sql"
    script.write_text("select 1;\n")
    for args in (["migrate"], ["migrate", "--list"], ["apply", str(script)]):
        res = run_cli(*args, "--database-url", url)
        assert res.returncode == 2
        assert res.stdout == ""
        assert res.stderr.startswith(f"pgtenancy: {args[0]}: ")
        assert str(tmp_path) in res.stderr and "Traceback" not in res.stderr


# -- apply -----------------------------------------------------------------------------------


def test_apply_runs_a_sql_file(scratch_db: str, tmp_path: Path) -> None:
    good = tmp_path / "good.sql"
    good.write_text(
        "create table public.cli_apply_ok (id int primary key);\n"
        "insert into public.cli_apply_ok values (1), (2);\n"
    )
    res = run_cli("apply", str(good), "--database-url", scratch_db, cwd="/tmp")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"applied {good}"]
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("select count(*) from public.cli_apply_ok").fetchone() == (2,)


def test_apply_failing_file_leaves_nothing(scratch_db: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text(
        "create table public.cli_apply_partial (id int primary key);\n"
        "insert into public.cli_apply_partial values (1);\n"
        "insert into public.cli_apply_partial values (1);\n"  # duplicate key
    )
    res = run_cli("apply", str(bad), "--database-url", scratch_db)
    assert res.returncode == 2
    assert res.stderr.startswith(f"pgtenancy: {bad} was not applied: ")
    assert "duplicate key" in res.stderr and "Traceback" not in res.stderr
    assert f"applied {bad}" not in res.stdout
    assert not relation_exists(scratch_db, "public.cli_apply_partial")


def three_files(tmp_path: Path) -> Path:
    """A folder whose third file (in order) fails; a stray non-SQL file is ignored."""
    folder = tmp_path / "steps"
    folder.mkdir()
    (folder / "10_second.sql").write_text("insert into public.cli_apply_seq values (2);\n")
    (folder / "01_first.sql").write_text(
        "create table public.cli_apply_seq (n int primary key);\n"
        "insert into public.cli_apply_seq values (1);\n"
    )
    (folder / "20_broken.sql").write_text(
        "create table public.cli_apply_broken (n int);\nselect 1 / 0;\n"
    )
    (folder / "notes.txt").write_text("not SQL, not applied\n")
    return folder


def test_apply_directory_runs_all_files_in_one_transaction(scratch_db: str, tmp_path: Path) -> None:
    folder = three_files(tmp_path)

    res = run_cli("apply", str(folder), "--database-url", scratch_db)

    assert res.returncode == 2
    assert res.stderr.strip() == (
        f"pgtenancy: {folder / '20_broken.sql'} was not applied, nor the 2 other files "
        "(one transaction; --each applies file by file): division by zero"
    )
    assert res.stdout == ""
    # All or nothing: the first two files, which succeeded, were rolled back with the third.
    assert not relation_exists(scratch_db, "public.cli_apply_seq")
    assert not relation_exists(scratch_db, "public.cli_apply_broken")

    # Rightful: without the broken file, both go in, in order, and each is reported.
    (folder / "20_broken.sql").unlink()
    res = run_cli("apply", str(folder), "--database-url", scratch_db)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        f"applied {folder / '01_first.sql'}",
        f"applied {folder / '10_second.sql'}",
    ]
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute(
            "select array_agg(n order by n) from public.cli_apply_seq"
        ).fetchone() == ([1, 2],)


def test_apply_each_runs_files_in_order_each_in_its_own_transaction(
    scratch_db: str, tmp_path: Path
) -> None:
    folder = three_files(tmp_path)

    res = run_cli("apply", "--each", str(folder), "--database-url", scratch_db)

    assert res.returncode == 2
    assert (
        res.stderr.strip()
        == f"pgtenancy: {folder / '20_broken.sql'} was not applied: division by zero"
    )
    assert res.stdout.splitlines() == [
        f"applied {folder / '01_first.sql'}",
        f"applied {folder / '10_second.sql'}",
    ]
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute(
            "select array_agg(n order by n) from public.cli_apply_seq"
        ).fetchone() == ([1, 2],)
    assert not relation_exists(scratch_db, "public.cli_apply_broken")


def test_apply_with_a_missing_file_applies_nothing(scratch_db: str, tmp_path: Path) -> None:
    good = tmp_path / "first.sql"
    good.write_text("create table public.cli_apply_before_missing (id int);\n")
    missing = tmp_path / "absent.sql"
    res = run_cli("apply", str(good), str(missing), "--database-url", scratch_db)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.startswith("pgtenancy: ") and str(missing) in res.stderr
    assert "Traceback" not in res.stderr
    assert not relation_exists(scratch_db, "public.cli_apply_before_missing")
    # Rightful: the existing file alone goes in.
    res = run_cli("apply", str(good), "--database-url", scratch_db)
    assert res.returncode == 0, res.stderr
    assert relation_exists(scratch_db, "public.cli_apply_before_missing")


# -- commands act only on a database the user named -------------------------------------------


def unnamed_env(default_db: str) -> dict[str, str]:
    """No DATABASE_URL, no PGTENANCY_HOME; libpq's own defaults point at ``default_db`` so that a
    command falling back to "the default server" would visibly change it."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGTENANCY_HOME")}
    params = conninfo_to_dict(default_db)
    env.update(
        PGHOST=str(params.get("host", "")),
        PGPORT=str(params.get("port", "5432")),
        PGUSER=str(params.get("user", "postgres")),
        PGDATABASE=str(params["dbname"]),
    )
    return env


def nothing_created(default_db: str, cwd: Path) -> None:
    assert list(cwd.iterdir()) == [cwd / "create_me.sql"]  # no .pgtenancy/ cluster here
    digest = hashlib.sha256(str(cwd.resolve()).encode()).hexdigest()[:10]
    assert not (Path(tempfile.gettempdir()) / f"pgtenancy-{digest}").exists()
    with psycopg.connect(default_db) as conn:
        assert conn.execute(
            "select count(*) from pg_namespace where nspname = 'tenancy'"
        ).fetchone() == (0,)
    assert not relation_exists(default_db, "public.cli_unnamed")


REFUSED_COMMANDS = [
    ["migrate"],
    ["migrate", "--list"],
    ["apply", "create_me.sql"],
    ["apply", "--each", "create_me.sql"],
    ["generate", "--spec", "create_me.sql", "--out", "out"],
]


@pytest.mark.parametrize("args", REFUSED_COMMANDS, ids=" ".join)
def test_commands_without_a_database_url_refuse_and_create_nothing(
    args: list[str], scratch_db: str, tmp_path: Path
) -> None:
    (tmp_path / "create_me.sql").write_text("create table public.cli_unnamed (id int);\n")

    res = run_cli(*args, cwd=tmp_path, env=unnamed_env(scratch_db))

    assert res.returncode == 2, (res.stdout, res.stderr)
    assert res.stdout == ""
    assert res.stderr == (
        f"pgtenancy: {args[0]}: which database? Pass --database-url URL or set DATABASE_URL; "
        'for the throwaway local cluster use --database-url "$(pgtenancy db url)". '
        "Nothing was done.\n"
    )
    nothing_created(scratch_db, tmp_path)


@pytest.mark.parametrize("where", ["flag", "environment"])
@pytest.mark.parametrize("args", REFUSED_COMMANDS, ids=" ".join)
def test_an_empty_database_url_is_an_error(
    args: list[str], where: str, scratch_db: str, tmp_path: Path
) -> None:
    (tmp_path / "create_me.sql").write_text("create table public.cli_unnamed (id int);\n")
    env = unnamed_env(scratch_db)
    if where == "flag":
        res = run_cli(*args, "--database-url", "", cwd=tmp_path, env=env)
        expected = f"pgtenancy: {args[0]}: --database-url is empty; nothing was done\n"
    else:
        res = run_cli(*args, cwd=tmp_path, env=dict(env, DATABASE_URL=" "))
        expected = f"pgtenancy: {args[0]}: DATABASE_URL is set but empty; nothing was done\n"

    assert res.returncode == 2, (res.stdout, res.stderr)
    assert (res.stdout, res.stderr) == ("", expected)
    nothing_created(scratch_db, tmp_path)


def test_a_named_database_is_used_from_the_flag_or_the_environment(
    scratch_db: str, tmp_path: Path
) -> None:
    # Rightful counterpart of the refusals: the same command with the URL named works, and an
    # explicit flag wins over the environment.
    script = tmp_path / "create_me.sql"
    script.write_text("create table public.cli_unnamed (id int);\n")
    env = unnamed_env(scratch_db)
    res = run_cli("apply", str(script), cwd=tmp_path, env=dict(env, DATABASE_URL=scratch_db))
    assert res.returncode == 0, res.stderr
    assert relation_exists(scratch_db, "public.cli_unnamed")
    res = run_cli(
        "apply",
        str(script),
        "--database-url",
        scratch_db,
        cwd=tmp_path,
        env=dict(env, DATABASE_URL=""),
    )
    assert res.returncode == 2  # the table exists now: the flag's database was used
    assert "already exists" in res.stderr


# -- db --------------------------------------------------------------------------------------


def test_db_url_prints_the_throwaway_clusters_url() -> None:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    res = run_cli("db", "url", env=env)
    assert res.returncode == 0, res.stderr
    url = res.stdout.strip()
    assert res.stdout.count("\n") == 1
    assert url == cluster.local_cluster().url()
    assert url.startswith("postgresql://postgres@/pgtenancy?host=")
    with psycopg.connect(url) as conn:
        row = conn.execute("select current_database(), current_user").fetchone()
    assert row == ("pgtenancy", "postgres")

    # Asking again reuses the running cluster: same URL, same port.
    again = run_cli("db", "url", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == res.stdout

    res = run_cli("db", "url", "--dbname", "postgres", env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == cluster.local_cluster().url("postgres")

    status = run_cli("db", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert status.stdout.strip() == f"running {cluster.local_cluster().root}"


def test_db_rejects_an_unknown_action() -> None:
    res = run_cli("db", "restart")
    assert res.returncode == 2
    assert "invalid choice" in res.stderr and "restart" in res.stderr


# -- generate (plumbing only) ----------------------------------------------------------------


def test_generate_with_a_missing_table_exits_2_naming_it(database_url: str, tmp_path: Path) -> None:
    spec = tmp_path / "tenancy.toml"
    missing = f"app.no_such_table_{uuid.uuid4().hex[:6]}"
    spec.write_text(f'[tables."{missing}"]\nread = ["owner"]\nwrite = ["owner"]\n')
    out = tmp_path / "out"

    res = run_cli(
        "generate",
        "--spec",
        str(spec),
        "--out",
        str(out),
        "--database-url",
        database_url,
        cwd=tmp_path,
    )

    assert res.returncode == 2, (res.stdout, res.stderr)
    assert missing.split(".")[1] in res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists() or not any(out.iterdir())

    # Rightful: the same plumbing with an existing table writes its file and exits 0.
    spec.write_text('[tables."app.projects"]\nread = ["owner"]\nwrite = ["owner"]\n')
    res = run_cli(
        "generate",
        "--spec",
        str(spec),
        "--out",
        str(out),
        "--database-url",
        database_url,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert (out / "app.projects.sql").exists()
    res = run_cli(
        "generate",
        "--check",
        "--spec",
        str(spec),
        "--out",
        str(out),
        "--database-url",
        database_url,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr


def test_generate_with_a_missing_spec_exits_2(database_url: str, tmp_path: Path) -> None:
    spec = tmp_path / "absent.toml"
    res = run_cli(
        "generate",
        "--spec",
        str(spec),
        "--out",
        str(tmp_path / "out"),
        "--database-url",
        database_url,
    )
    assert res.returncode == 2
    assert str(spec) in res.stderr or spec.name in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("url", ["postgresql://", "postgresql:///", "postgres://@/"])
@pytest.mark.parametrize("args", REFUSED_COMMANDS, ids=" ".join)
def test_a_database_url_naming_no_database_is_an_error(
    args: list[str], url: str, scratch_db: str, tmp_path: Path
) -> None:
    """``postgresql://$HOST/$DB`` with both variables unset names no database; libpq would take
    it, as it takes an empty URL, for "the default server" (PGHOST, PGDATABASE, ...)."""
    (tmp_path / "create_me.sql").write_text("create table public.cli_unnamed (id int);\n")
    env = unnamed_env(scratch_db)
    for res in (
        run_cli(*args, "--database-url", url, cwd=tmp_path, env=env),
        run_cli(*args, cwd=tmp_path, env=dict(env, DATABASE_URL=url)),
    ):
        assert res.returncode == 2, (res.stdout, res.stderr)
        assert res.stdout == ""
        assert res.stderr.startswith(f"pgtenancy: {args[0]}: ")
        assert "names no database" in res.stderr and "nothing was done" in res.stderr
    nothing_created(scratch_db, tmp_path)


@pytest.mark.parametrize("args", [["migrate"], ["migrate", "--list"]], ids=" ".join)
def test_migrate_with_a_keyword_conninfo_refuses_before_touching_the_database(
    args: list[str], scratch_db: str
) -> None:
    """migrate needs a URL (yoyo's); a libpq keyword string is refused up front, with no
    traceback, no password echoed and nothing created (bookkeeping schema included)."""
    params = conninfo_to_dict(scratch_db)
    conninfo = " ".join(f"{k}={v}" for k, v in params.items()) + " password=sekrit"

    res = run_cli(*args, "--database-url", conninfo)

    assert res.returncode == 2, (res.stdout, res.stderr)
    assert res.stdout == ""
    assert res.stderr.startswith("pgtenancy: ") and "postgresql://" in res.stderr
    assert "Traceback" not in res.stderr and "sekrit" not in res.stderr
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute(
            "select count(*) from pg_namespace where nspname like 'tenancy%'"
        ).fetchone() == (0,)


@pytest.mark.parametrize("each", [False, True], ids=["one-transaction", "each"])
def test_apply_stops_at_a_file_that_ends_the_transaction(
    scratch_db: str, tmp_path: Path, each: bool
) -> None:
    """A file's own COMMIT ends apply's transaction: what ran before it is committed, and later
    files would run outside any transaction. apply stops there and says so, instead of running
    on and reporting that nothing was applied."""
    folder = tmp_path / "steps"
    folder.mkdir()
    (folder / "01_commits.sql").write_text(
        "begin;\ncreate table public.cli_apply_committed (id int);\ncommit;\n"
    )
    (folder / "02_later.sql").write_text("create table public.cli_apply_later (id int);\n")
    (folder / "03_broken.sql").write_text("select 1 / 0;\n")

    res = run_cli("apply", *(["--each"] if each else []), str(folder), "--database-url", scratch_db)

    assert res.returncode == 2, (res.stdout, res.stderr)
    assert f"{folder / '01_commits.sql'} ends the transaction" in res.stderr, res.stderr
    assert "committed" in res.stderr and "Traceback" not in res.stderr
    assert "division by zero" not in res.stderr  # it stopped before the later files
    assert not relation_exists(scratch_db, "public.cli_apply_later")


# -- pgtenancy doctor ----------------------------------------------------------------------------


def test_doctor_finds_nothing_on_a_migrated_database_then_each_planted_problem(
    scratch_db: str,
) -> None:
    """Exit 0 and no finding on pgtenancy as migrated; exit 1 with the lint's code, object and
    fix once a problem is planted (a tenant table not forced, without a tenant-led index or a
    comment, a PUBLIC grant, a SECURITY DEFINER function without search_path); exit 0 again
    once fixed."""
    migrate(scratch_db)
    res = run_cli("doctor", "--database-url", scratch_db, "--level", "info")
    assert (res.returncode, res.stdout.strip()) == (0, "doctor: no problem found"), res.stderr

    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute(
            "create table public.orders "
            "(tenant_id uuid not null, id int, primary key (tenant_id, id))"
        )
        conn.execute(
            "create policy p on public.orders using "
            "(tenant_id = (select tenancy.context_tenant_id(null)))"
        )
        conn.execute("alter table public.orders enable row level security")
        conn.execute("grant execute on function tenancy.current_tenant_id() to public")
        conn.execute(
            "create function tenancy.zz_definer() returns int language sql security definer "
            "as 'select 1'"
        )
        conn.execute("revoke all on function tenancy.zz_definer() from public")
        conn.execute("comment on function tenancy.zz_definer() is 'A test function.'")
    res = run_cli("doctor", "--database-url", scratch_db, "--format", "json")
    assert res.returncode == 1, res.stderr
    found = {(f["code"], f["level"], f["object"]) for f in json.loads(res.stdout)}
    assert found == {
        ("0001", "ERROR", "public.orders"),
        ("0002", "ERROR", "tenancy.current_tenant_id()"),
        ("0003", "ERROR", "tenancy.zz_definer()"),
        ("0018", "INFO", "public.orders"),
    }
    text = run_cli("doctor", "--database-url", scratch_db).stdout
    assert "enabled but not forced" in text
    assert "fix: alter table public.orders enable row level security;" in text
    assert "(docs/lints/0018_missing_comment.md)" in text
    assert "doctor: 4 problems (3 ERROR, 1 INFO)" in text

    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("alter table public.orders force row level security")
        conn.execute("revoke execute on function tenancy.current_tenant_id() from public")
        conn.execute("alter function tenancy.zz_definer() set search_path = pg_catalog, pg_temp")
    # A WARN: a tenant without an owner. Exit 1 at the default level (warn), 0 at --level error.
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("select tenancy.create_tenant('doctor-warn', 'No owner')")
    assert run_cli("doctor", "--database-url", scratch_db).returncode == 1
    assert run_cli("doctor", "--database-url", scratch_db, "--level", "error").returncode == 0
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        # Its creation enqueued PostHog's $groupidentify (the outbox has no foreign key to
        # tenancy.tenants): deleting a tenant by hand leaves those rows to delete too.
        for table in ("deliveries", "analytics_events"):
            conn.execute(
                f"delete from tenancy.{table} where tenant_id = "
                "(select id from tenancy.tenants where slug = 'doctor-warn')"
            )
        conn.execute("delete from tenancy.tenants where slug = 'doctor-warn'")
    # Only an INFO left: exit 0 at the default level and at --level error, 1 at --level info.
    res = run_cli("doctor", "--database-url", scratch_db)
    assert res.returncode == 0 and "doctor: 1 problems (1 INFO)" in res.stdout, res.stdout
    assert run_cli("doctor", "--database-url", scratch_db, "--level", "error").returncode == 0
    assert run_cli("doctor", "--database-url", scratch_db, "--level", "info").returncode == 1

    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("comment on table public.orders is 'Orders of the doctor test.'")
    res = run_cli("doctor", "--database-url", scratch_db, "--level", "info")
    assert (res.returncode, res.stdout.strip()) == (0, "doctor: no problem found"), res.stderr


def test_doctor_finds_nothing_on_the_example_app(scratch_db: str) -> None:
    """pgtenancy, the example application's schema and its generated policies (as
    ``make demo`` builds them), with tenants, members and rows: not even an INFO."""
    migrate(scratch_db)
    app = testing.repo_root() / "examples" / "app"
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        for path in [app / "schema.sql", *sorted((app / "policies").glob("*.sql"))]:
            with conn.transaction():
                conn.execute(path.read_bytes())
    testing.seed_and_remigrate(scratch_db)
    with psycopg.connect(scratch_db) as conn:
        rows = conn.execute("select count(*) from app.documents").fetchone()
    assert rows and rows[0] > 0  # the orphan-row lint had rows to look at

    res = run_cli(
        "doctor",
        "--database-url",
        scratch_db,
        "--level",
        "info",
        "--spec",
        str(app / "tenancy.toml"),
    )
    assert (res.returncode, res.stdout.strip()) == (0, "doctor: no problem found"), res.stderr


def test_doctor_spec_reports_listed_tables_that_are_not_tenant_tables(
    scratch_db: str, tmp_path: Path
) -> None:
    """--spec: a listed table that is missing, that has no tenant policy, or whose policies
    read another column than the spec's tenant_column is an ERROR (0019); a listed tenant
    table is fine. An unreadable spec exits 2."""
    migrate(scratch_db)
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("create table public.plain (tenant_id uuid not null)")
        conn.execute("comment on table public.plain is 'Not secured yet.'")
        conn.execute(
            "create table public.keyed (company_id bigint not null, tenant_id uuid, "
            "primary key (company_id))"
        )
        conn.execute("comment on table public.keyed is 'Keyed by company.'")
        conn.execute("alter table public.keyed enable row level security, force row level security")
        conn.execute(
            "create policy p on public.keyed using "
            "(company_id = (select tenancy.context_tenant_id(null)::text::bigint))"
        )
    spec = tmp_path / "tenancy.toml"
    spec.write_text(
        "".join(
            f'[tables."{name}"]\nread = ["owner"]\nwrite = []\n{extra}'
            for name, extra in [
                ("public.plain", ""),
                ("public.missing", ""),
                ("public.keyed", ""),
                ("tenancy.memberships", ""),
            ]
        )
    )
    res = run_cli("doctor", "--database-url", scratch_db, "--spec", str(spec), "--format", "json")
    assert res.returncode == 1, res.stderr
    found = [(f["code"], f["level"], f["object"], f["detail"]) for f in json.loads(res.stdout)]
    assert [f[:3] for f in found if f[0] == "0019"] == [
        ("0019", "ERROR", "public.keyed"),
        ("0019", "ERROR", "public.missing"),
        ("0019", "ERROR", "public.plain"),
    ], found
    details = {f[2]: f[3] for f in found if f[0] == "0019"}
    assert "names tenant_id as the tenant column of public.keyed" in details["public.keyed"]
    assert "but does not exist" in details["public.missing"]
    assert "no policy on it calls the tenant context" in details["public.plain"]
    # Without the spec, public.plain is only a warning (0014), public.keyed no problem at all.
    res = run_cli("doctor", "--database-url", scratch_db, "--format", "json")
    assert {(f["code"], f["object"]) for f in json.loads(res.stdout)} == {("0014", "public.plain")}

    # The spec fixed: public.keyed with its column, public.plain gone from it.
    spec.write_text(
        '[tables."public.keyed"]\nread = ["owner"]\nwrite = []\ntenant_column = "company_id"\n'
    )
    res = run_cli("doctor", "--database-url", scratch_db, "--spec", str(spec), "--level", "error")
    assert res.returncode == 0, res.stdout + res.stderr

    res = run_cli("doctor", "--database-url", scratch_db, "--spec", str(tmp_path / "none.toml"))
    assert res.returncode == 2
    assert "cannot read the spec" in res.stderr and "Traceback" not in res.stderr


def test_doctor_on_a_database_without_pgtenancy_exits_2(scratch_db: str) -> None:
    res = run_cli("doctor", "--database-url", scratch_db)
    assert res.returncode == 2
    assert "no lints in schema tenancy" in res.stderr and "Traceback" not in res.stderr
