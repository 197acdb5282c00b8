"""pgtenancy.migrate against brand-new databases: idempotence, changed definitions, failures.

Each test makes its own empty database in the session's cluster and drops it afterwards. A
changed or broken SQL source is simulated with a temporary copy of the sql directory; the
database is always real.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, Roles, new_user_id, token_for
from psycopg import sql
from psycopg.conninfo import make_conninfo

import pgtenancy.migrate as migrate_mod
from pgtenancy import testing
from pgtenancy.migrate import migrate, status, steps
from pgtenancy.resources import sql_dir

PGTENANCY = Path(sys.executable).with_name("pgtenancy")
SCRATCH_PREFIX = "pgtenancy_scratch_"

# Everything migrate creates or grants, with xmin so that a rewritten row (a function replaced
# by an identical definition, a re-granted privilege) shows up as a difference.
CATALOG_SNAPSHOT = """
select 'proc' as kind,
       p.oid::regprocedure::text as name,
       p.xmin::text as version,
       concat_ws(' | ', md5(p.prosrc), p.proacl::text, p.proowner::regrole::text,
                 p.prosecdef::text, p.provolatile::text, p.proconfig::text) as detail
from pg_proc as p
join pg_namespace as n on n.oid = p.pronamespace
where n.nspname not in ('pg_catalog', 'information_schema')
union all
select 'class', c.oid::regclass::text, c.xmin::text,
       concat_ws(' | ', c.relkind::text, c.relacl::text, c.relowner::regrole::text,
                 c.relrowsecurity::text, c.relforcerowsecurity::text, c.relpersistence::text)
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
union all
select 'policy', pol.polrelid::regclass::text || '.' || pol.polname, pol.xmin::text,
       concat_ws(' | ', pol.polcmd::text, pol.polroles::regrole[]::text,
                 pg_get_expr(pol.polqual, pol.polrelid),
                 pg_get_expr(pol.polwithcheck, pol.polrelid))
from pg_policy as pol
union all
select 'trigger', t.tgrelid::regclass::text || '.' || t.tgname, t.xmin::text,
       pg_get_triggerdef(t.oid)
from pg_trigger as t
where not t.tgisinternal
union all
select 'namespace', n.nspname, n.xmin::text,
       concat_ws(' | ', n.nspacl::text, n.nspowner::regrole::text)
from pg_namespace as n
where n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema'
union all
select 'default_acl', d.defaclrole::regrole::text || '.' || d.defaclobjtype::text
       || '.' || coalesce(d.defaclnamespace::regnamespace::text, '-'),
       d.xmin::text, d.defaclacl::text
from pg_default_acl as d
union all
select 'description', d.classoid::regclass::text || '.' || d.objoid::text || '.'
       || d.objsubid::text, d.xmin::text, md5(d.description)
from pg_description as d
where d.objoid >= 16384
union all
select 'extension', e.extname, e.xmin::text, e.extversion
from pg_extension as e
order by 1, 2
"""


def _admin_url(base_url: str) -> str:
    return testing.with_dbname(base_url, "postgres")


def _drop(base_url: str, name: str) -> None:
    with psycopg.connect(_admin_url(base_url), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(name)))


@pytest.fixture
def new_database(base_url: str) -> Iterator[Callable[[], str]]:
    """Factory for brand-new empty databases (not cloned from the template); dropped after."""
    made: list[str] = []

    def factory() -> str:
        name = SCRATCH_PREFIX + uuid.uuid4().hex[:12]
        with psycopg.connect(_admin_url(base_url), autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        made.append(name)
        return testing.with_dbname(base_url, name)

    yield factory
    for name in made:
        _drop(base_url, name)


@pytest.fixture
def empty_db(new_database: Callable[[], str]) -> str:
    return new_database()


@pytest.fixture(scope="module")
def private_server() -> Iterator[str]:
    """A cluster of this module's own, for the tests that change pgtenancy's roles (they are
    cluster-wide): granting tenancy_app pg_read_all_data for a moment must not reach the tests
    that run meanwhile on the shared cluster."""
    from pgtenancy.testing import cluster

    root = Path(tempfile.mkdtemp(prefix="pgt-migrate-roles-"))
    root.chmod(0o755)
    server = cluster.Cluster(root / "server")
    try:
        server.ensure()
        # pgtenancy's roles exist, as on a server that has had pgtenancy before.
        with psycopg.connect(_admin_url(server.url()), autocommit=True) as conn:
            conn.execute("create database roles_seed")
        migrate(testing.with_dbname(server.url(), "roles_seed"))
        _drop(server.url(), "roles_seed")
        yield server.url()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def roles_db(private_server: str) -> Iterator[str]:
    """An empty database on the private cluster (see private_server)."""
    name = SCRATCH_PREFIX + uuid.uuid4().hex[:12]
    with psycopg.connect(_admin_url(private_server), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    yield testing.with_dbname(private_server, name)
    _drop(private_server, name)


@pytest.fixture
def private_scratch_role(private_server: str) -> Iterator[str]:
    """A NOLOGIN role of the private cluster that exists for one test (see scratch_role)."""
    name = f"t_grantee_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin_url(private_server), autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(_admin_url(private_server), autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))


@pytest.fixture
def sql_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the SQL sources that migrate() reads instead of the package's."""
    root = tmp_path / "sql"
    shutil.copytree(sql_dir(), root)
    monkeypatch.setattr(migrate_mod, "sql_dir", lambda: root)
    return root


@pytest.fixture
def scratch_role(base_url: str) -> Iterator[str]:
    """A NOLOGIN role that exists for one test (roles are cluster-wide).

    Request it before the database fixture so that the database, which holds its grants, is
    dropped first.
    """
    name = f"t_grantee_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin_url(base_url), autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(_admin_url(base_url), autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))


def snapshot(url: str) -> list[tuple[str, str, str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(CATALOG_SNAPSHOT).fetchall()  # type: ignore[return-value]


def scalar(url: str, query: str, params: tuple[object, ...] = ()) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def snapshot_without(url: str, signature: str) -> set[tuple[str, str, str, str]]:
    """The catalog snapshot minus one function's own rows (its pg_proc row and comment)."""
    oid = scalar(url, "select %s::regprocedure::oid::int8", (signature,))
    own = {signature, f"pg_proc.{oid}.0"}
    return {r for r in snapshot(url) if r[1] not in own}


def function_row(url: str, signature: str) -> tuple[int, str, str]:
    """(oid, xmin, prosrc) of a function."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select oid::int8, xmin::text, prosrc from pg_proc where oid = %s::regprocedure",
            (signature,),
        ).fetchone()
    assert row is not None
    return row  # type: ignore[return-value]


def revise(path: Path, marker: str) -> None:
    """Change a function's body (a comment after its first ``begin``), keeping it valid."""
    text = path.read_text()
    assert "\nbegin\n" in text, f"{path} has no plpgsql body to revise"
    path.write_text(text.replace("\nbegin\n", f"\nbegin\n    -- {marker}\n", 1))


def definition_id(root: Path, kind: str, stem: str) -> str:
    [step] = [s for s in steps(root) if s.source == root / kind / f"{stem}.sql"]
    return step.id


# -- a brand-new database ------------------------------------------------------------------


def test_migrate_applies_every_step_on_an_empty_database(empty_db: str) -> None:
    applied = migrate(empty_db)

    assert applied == [s.id for s in steps()]
    assert applied[:2] == ["0001_tenancy_roles", "0002_tenancy_schema"]
    assert scalar(empty_db, "select count(*) from pg_namespace where nspname = 'tenancy'") == 1
    for table in ("tenancy.tenants", "tenancy.memberships", "tenancy.jwt_config"):
        assert (
            scalar(
                empty_db,
                "select relowner::regrole::text from pg_class where oid = %s::regclass",
                (table,),
            )
            == "tenancy_owner"
        )
    # Every function in the schema is owned by tenancy_owner and none is executable by PUBLIC.
    with psycopg.connect(empty_db) as conn:
        rows = conn.execute(
            """
            select p.oid::regprocedure::text, p.proowner::regrole::text,
                   has_function_privilege('public', p.oid, 'execute')
            from pg_proc as p where p.pronamespace = 'tenancy'::regnamespace
            """
        ).fetchall()
    # One function (or procedure) per file (a file of grants or policies defines none); the
    # audit trail's own functions (files with ``-- migrate: as-role tenancy_audit_owner``) belong
    # to that role.
    defining = [
        s
        for s in steps()
        if s.display.startswith("functions/")
        and re.search(r"create or replace (function|procedure) ", s.sql)
    ]
    assert len(rows) == len(defining)
    owners = {r[0].split("(")[0]: r[1] for r in rows}
    for step in defining:
        name = re.search(r"create or replace (?:function|procedure) (tenancy\.\w+)", step.sql)
        assert name is not None, step.display
        assert owners[name[1]] == step.role, step.display
    assert {r[1] for r in rows} == {"tenancy_owner", "tenancy_audit_owner"}
    assert [r[0] for r in rows if r[2]] == []


def test_second_migrate_applies_nothing_and_changes_no_catalog_row(empty_db: str) -> None:
    migrate(empty_db)
    before = snapshot(empty_db)

    assert migrate(empty_db) == []

    after = snapshot(empty_db)
    assert after == before
    assert any(
        kind == "proc" and name.startswith("tenancy.authenticate(") for kind, name, *_ in after
    )


def test_status_lists_every_step_pending_then_applied(empty_db: str) -> None:
    expected = [s.id for s in steps()]

    before = status(empty_db)
    assert [s.id for s in before] == expected
    assert not any(s.applied for s in before)

    migrate(empty_db)
    after = status(empty_db)
    assert [s.id for s in after] == expected
    assert all(s.applied for s in after)
    assert after[0].source == "migrations/0001_tenancy_roles.sql"
    assert {s.source.split("/")[0] for s in after} <= {
        "migrations",
        "functions",
        "policies",
        "lints",
    }


# -- changed definitions -------------------------------------------------------------------


def test_changed_function_is_reapplied_alone_and_keeps_its_grants(
    scratch_role: str, empty_db: str, sql_copy: Path
) -> None:
    migrate(empty_db)
    # A grant made outside pgtenancy's sources, which only a true "create or replace" keeps.
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            sql.SQL("grant execute on function tenancy.authenticate(text) to {}").format(
                sql.Identifier(scratch_role)
            )
        )
    signature = "tenancy.authenticate(text)"
    oid_before, xmin_before, _ = function_row(empty_db, signature)
    other_before = function_row(empty_db, "tenancy.current_tenant_id()")
    old_id = definition_id(sql_copy, "functions", "context/authenticate")

    revise(sql_copy / "functions" / "context" / "authenticate.sql", "revision 2")
    new_id = definition_id(sql_copy, "functions", "context/authenticate")
    assert new_id != old_id

    assert migrate(empty_db) == [new_id]

    oid_after, xmin_after, source = function_row(empty_db, signature)
    assert "-- revision 2" in source
    assert oid_after == oid_before  # replaced in place, so dependants and grants still point at it
    assert xmin_after != xmin_before
    assert function_row(empty_db, "tenancy.current_tenant_id()") == other_before
    with psycopg.connect(empty_db) as conn:
        privileges = conn.execute(
            """
            select has_function_privilege('tenancy_app', %(f)s, 'execute'),
                   has_function_privilege('tenancy_service', %(f)s, 'execute'),
                   has_function_privilege(%(r)s, %(f)s, 'execute'),
                   has_function_privilege('public', %(f)s, 'execute')
            """,
            {"f": signature, "r": scratch_role},
        ).fetchone()
    assert privileges == (True, True, True, False)
    assert all(s.applied for s in status(empty_db))
    assert migrate(empty_db) == []


def test_reverted_function_source_is_applied_again(empty_db: str, sql_copy: Path) -> None:
    """Rolling a function back to an earlier source (a revert) must reach the database too."""
    path = sql_copy / "functions" / "context" / "context_tenant_id.sql"
    original = path.read_text()
    migrate(empty_db)

    revise(path, "revision 2")
    assert len(migrate(empty_db)) == 1
    assert "-- revision 2" in function_row(empty_db, "tenancy.context_tenant_id(text[])")[2]

    path.write_text(original)
    assert migrate(empty_db) == [definition_id(sql_copy, "functions", "context/context_tenant_id")]
    assert "-- revision 2" not in function_row(empty_db, "tenancy.context_tenant_id(text[])")[2]
    assert all(s.applied for s in status(empty_db))
    assert migrate(empty_db) == []


# -- failing steps -------------------------------------------------------------------------

FIXED = """\
-- tenancy.zz_broken: a valid function.

create or replace function tenancy.zz_broken_probe()
returns int
language sql
as $$ select 1 $$;
"""

BROKEN_SYNTAX = """\
-- tenancy.zz_broken: a valid function followed by a statement that does not parse.

create or replace function tenancy.zz_broken_probe()
returns int
language sql
as $$ select 1 $$;

create functio tenancy.zz_broken_other() returns int;
"""

BROKEN_AT_RUNTIME = """\
-- tenancy.zz_broken: a valid function, then a statement that fails when it runs.

create or replace function tenancy.zz_broken_probe()
returns int
language sql
as $$ select 1 $$;

grant execute on function tenancy.zz_broken_probe() to tenancy_app;

comment on function tenancy.zz_no_such_function() is 'fails: the function does not exist';
"""


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (BROKEN_SYNTAX, psycopg.errors.SyntaxError),
        (BROKEN_AT_RUNTIME, psycopg.errors.UndefinedFunction),
    ],
    ids=["syntax-error", "runtime-error"],
)
def test_failing_step_raises_and_leaves_the_database_as_it_was(
    empty_db: str, sql_copy: Path, text: str, error: type[Exception]
) -> None:
    migrate(empty_db)
    revise(sql_copy / "functions" / "context" / "authenticate.sql", "revision 2")
    (sql_copy / "functions" / "zz_broken.sql").write_text(text)
    changed_id = definition_id(sql_copy, "functions", "context/authenticate")
    broken_id = definition_id(sql_copy, "functions", "zz_broken")
    before = snapshot_without(empty_db, "tenancy.authenticate(text)")

    with pytest.raises(error):
        migrate(empty_db)

    # The earlier pending step (authenticate, sorted before zz_broken) is kept ...
    assert "-- revision 2" in function_row(empty_db, "tenancy.authenticate(text)")[2]
    applied = {s.id: s.applied for s in status(empty_db)}
    assert applied[changed_id] is True
    assert applied[broken_id] is False
    # ... and nothing of the failing step exists.
    assert scalar(empty_db, "select to_regprocedure('tenancy.zz_broken_probe()') is null") is True
    assert snapshot_without(empty_db, "tenancy.authenticate(text)") == before

    # Fixed, the step applies on the next run and nothing else is repeated.
    (sql_copy / "functions" / "zz_broken.sql").write_text(FIXED)
    fixed_id = definition_id(sql_copy, "functions", "zz_broken")
    assert migrate(empty_db) == [fixed_id]
    assert scalar(empty_db, "select tenancy.zz_broken_probe()") == 1


def test_a_step_and_its_record_commit_together(empty_db: str, sql_copy: Path) -> None:
    """If recording a step fails (a crash would do the same), the step itself is undone too."""
    migrate(empty_db)
    revise(sql_copy / "functions" / "context" / "authenticate.sql", "revision 2")
    changed_id = definition_id(sql_copy, "functions", "context/authenticate")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "create function public.refuse_mark() returns trigger language plpgsql as "
            "$$ begin raise exception 'recording refused'; end $$"
        )
        conn.execute(
            "create trigger refuse_mark before insert on tenancy_migrations._yoyo_migration "
            "for each row execute function public.refuse_mark()"
        )
    with pytest.raises(psycopg.Error, match="recording refused"):
        migrate(empty_db)
    # Not recorded, and not applied either: the next run is a clean retry.
    assert "-- revision 2" not in function_row(empty_db, "tenancy.authenticate(text)")[2]
    assert {s.id: s.applied for s in status(empty_db)}[changed_id] is False

    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("drop trigger refuse_mark on tenancy_migrations._yoyo_migration")
        conn.execute("drop function public.refuse_mark()")
    assert migrate(empty_db) == [changed_id]
    assert "-- revision 2" in function_row(empty_db, "tenancy.authenticate(text)")[2]


def test_failing_versioned_migration_stops_before_later_steps(
    empty_db: str, sql_copy: Path
) -> None:
    (sql_copy / "migrations" / "0003_tenants.sql").write_text(
        (sql_copy / "migrations" / "0003_tenants.sql").read_text() + "\nselect 1 / 0;\n"
    )

    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate(empty_db)

    applied = {s.id: s.applied for s in status(empty_db)}
    assert applied["0001_tenancy_roles"] is True
    assert [sid for sid, ok in applied.items() if ok] == [
        "0001_tenancy_roles",
        "0002_tenancy_schema",
    ]
    # 0003 ran in one transaction: its table, its comment and its grants do not exist.
    assert scalar(empty_db, "select to_regclass('tenancy.tenants') is null") is True


# -- a database in use -----------------------------------------------------------------------

DATA_SNAPSHOT = {
    "tenants": "select id, slug, name, status from tenancy.tenants order by id",
    "memberships": "select tenant_id, user_id, role from tenancy.memberships order by 1, 2",
    "jwt_config": "select secret, issuer, audience from tenancy.jwt_config",
    "projects": "select tenant_id, id, name from app.projects order by 1, 2",
    "documents": "select tenant_id, id, project_id, title from app.documents order by 1, 2",
}


def data(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        return {k: conn.execute(q).fetchall() for k, q in DATA_SNAPSHOT.items()}


def test_remigrating_a_database_with_tenants_keeps_rows_and_isolation(
    empty_db: str, sql_copy: Path, roles: Roles
) -> None:
    # A database set up the way a user's is: pgtenancy, then the application and its policies.
    migrate(empty_db)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        for path in testing.example_sources():
            with conn.transaction():
                conn.execute(path.read_bytes())
        conn.execute("set role tenancy_admin")
        conn.execute(
            "select tenancy.configure_jwt(%s, %s, %s)", (JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE)
        )
    admin, service, app = (
        make_conninfo(login, dbname=testing.dbname_of(empty_db))
        for login in (roles.admin, roles.service, roles.app)
    )
    tenants: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}
    with psycopg.connect(admin, autocommit=True) as conn:
        for slug in ("acme", "globex"):
            owner = new_user_id()
            row = conn.execute(
                "select tenancy.create_tenant(%s, %s, %s)", (slug, slug.title(), owner)
            ).fetchone()
            assert row is not None
            tenants[slug] = (row[0], owner)
    with psycopg.connect(service) as conn:
        for slug, (tenant_id, _) in tenants.items():
            with conn.transaction():
                conn.execute("select tenancy.set_context(%s)", (tenant_id,))
                conn.execute("select tenancy.add_member(%s, 'member')", (new_user_id(),))
                project = conn.execute(
                    "insert into app.projects (name) values (%s) returning id", (f"{slug} plan",)
                ).fetchone()
                assert project is not None
                for n in range(3):
                    conn.execute(
                        "insert into app.documents (project_id, title) values (%s, %s)",
                        (project[0], f"{slug} doc {n}"),
                    )
    before = data(empty_db)
    assert len(before["tenants"]) == 2 and len(before["documents"]) == 6

    # New versions of a function the policies depend on, of authenticate, and of a policy file.
    revise(sql_copy / "functions" / "context" / "authenticate.sql", "revision 2")
    revise(sql_copy / "functions" / "context" / "context_tenant_id.sql", "revision 2")
    policy = sql_copy / "policies" / "tenancy.memberships.sql"
    policy.write_text(policy.read_text() + "\n-- revision 2\n")
    changed = {
        definition_id(sql_copy, "functions", "context/authenticate"),
        definition_id(sql_copy, "functions", "context/context_tenant_id"),
        definition_id(sql_copy, "policies", "tenancy.memberships"),
    }

    assert set(migrate(empty_db)) == changed

    assert data(empty_db) == before
    with psycopg.connect(app) as conn:
        for slug, (tenant_id, owner) in tenants.items():
            with conn.transaction():
                conn.execute("select tenancy.authenticate(%s)", (token_for(tenant_id, owner),))
                assert conn.execute("select tenancy.current_tenant_id()").fetchone() == (tenant_id,)
                titles = [r[0] for r in conn.execute("select title from app.documents order by 1")]
                assert titles == [f"{slug} doc {n}" for n in range(3)]
                members = conn.execute("select distinct tenant_id from tenancy.memberships")
                assert members.fetchall() == [(tenant_id,)]
                # Rightful writes still go in; a row for the other tenant does not.
                conn.execute("insert into app.projects (name) values (%s)", (f"{slug} after",))
                other = next(t for s, (t, _) in tenants.items() if s != slug)
                with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                    conn.execute(
                        "insert into app.projects (tenant_id, name) values (%s, 'smuggled')",
                        (other,),
                    )
        with conn.transaction():
            assert conn.execute("select count(*) from app.documents").fetchone() == (0,)
    after = data(empty_db)
    assert after["documents"] == before["documents"]
    assert sorted(r[2] for r in after["projects"]) == sorted(
        [r[2] for r in before["projects"]] + ["acme after", "globex after"]
    )


# -- the command line from elsewhere -------------------------------------------------------


def run_cli(*args: str, cwd: str = "/tmp") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [str(PGTENANCY), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


LIST_LINE = re.compile(r"^(applied|pending) +(\S+) +(\S+)$")


def test_cli_migrate_from_another_directory(empty_db: str) -> None:
    cluster_in_tmp = Path("/tmp/.pgtenancy").exists()
    res = run_cli("migrate", "--list", "--database-url", empty_db)
    assert res.returncode == 0, res.stderr
    lines = [LIST_LINE.match(line) for line in res.stdout.splitlines()]
    assert all(lines), res.stdout
    assert [(m[1], m[2]) for m in lines if m] == [("pending", s.id) for s in steps()]

    res = run_cli("migrate", "--database-url", empty_db)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"applied {s.id}" for s in steps()] + [
        "revoked TEMPORARY on the database from PUBLIC (see --keep-temp-privilege)"
    ]
    assert Path("/tmp/.pgtenancy").exists() == cluster_in_tmp  # no throwaway cluster started

    res = run_cli("migrate", "--database-url", empty_db)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "database is up to date"

    res = run_cli("migrate", "--list", "--database-url", empty_db)
    assert res.returncode == 0, res.stderr
    parsed = [LIST_LINE.match(line) for line in res.stdout.splitlines()]
    assert [(m[1], m[2], m[3]) for m in parsed if m] == [
        ("applied", s.id, s.display) for s in steps()
    ]


def test_status_shows_only_the_changed_definition_pending(empty_db: str, sql_copy: Path) -> None:
    migrate(empty_db)
    revise(sql_copy / "functions" / "members" / "add_member.sql", "revision 2")
    changed = definition_id(sql_copy, "functions", "members/add_member")
    pending = [s for s in status(empty_db) if not s.applied]
    assert [s.id for s in pending] == [changed]
    assert pending[0].source == "functions/members/add_member.sql"


# Migration lifecycle: removed and re-signed functions, replaced steps, pre-existing roles,
# bookkeeping outside public.

EXTRA_FUNCTION = """
-- tenancy.zz_extra: a function that exists only in this test's copy of the sources.
create or replace function tenancy.zz_extra({args})
returns integer
language sql
immutable
set search_path = pg_catalog, pg_temp
as 'select 1';
comment on function tenancy.zz_extra({types}) is 'test only';
revoke all on function tenancy.zz_extra({types}) from public;
grant execute on function tenancy.zz_extra({types}) to tenancy_app;
"""


def write_extra(sql_copy: Path, args: str, types: str) -> Path:
    path = sql_copy / "functions" / "zz" / "zz_extra.sql"
    path.parent.mkdir(exist_ok=True)
    path.write_text(EXTRA_FUNCTION.format(args=args, types=types))
    return path


def overloads(url: str, name: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            str(r[0])
            for r in conn.execute(
                "select oid::regprocedure::text from pg_proc"
                " where pronamespace = 'tenancy'::regnamespace and proname = %s order by 1",
                (name,),
            )
        ]


def test_removed_function_is_dropped_with_its_grants(empty_db: str, sql_copy: Path) -> None:
    path = write_extra(sql_copy, "p_x integer", "integer")
    migrate(empty_db)
    assert overloads(empty_db, "zz_extra") == ["tenancy.zz_extra(integer)"]
    assert (
        scalar(
            empty_db,
            "select has_function_privilege('tenancy_app', 'tenancy.zz_extra(integer)', 'execute')",
        )
        is True
    )

    path.unlink()
    outcome = migrate_mod.migrate_database(empty_db)
    assert outcome.dropped == ["tenancy.zz_extra(integer)"]
    assert overloads(empty_db, "zz_extra") == []
    # Every function the sources define is still there, and a second run drops nothing.
    assert scalar(empty_db, "select to_regprocedure('tenancy.authenticate(text)') is not null")
    assert migrate_mod.migrate_database(empty_db).dropped == []


def test_resigned_function_leaves_no_stale_overload(empty_db: str, sql_copy: Path) -> None:
    write_extra(sql_copy, "p_x integer", "integer")
    migrate(empty_db)

    write_extra(sql_copy, "p_x integer, p_label text default null", "integer, text")
    outcome = migrate_mod.migrate_database(empty_db)
    assert outcome.dropped == ["tenancy.zz_extra(integer)"]
    assert overloads(empty_db, "zz_extra") == ["tenancy.zz_extra(integer,text)"]
    # The new signature carries its own grant; a call by the old arity reaches it.
    assert (
        scalar(
            empty_db,
            "select has_function_privilege('tenancy_app', "
            "'tenancy.zz_extra(integer, text)', 'execute')",
        )
        is True
    )
    assert scalar(empty_db, "select tenancy.zz_extra(1)") == 1


def test_both_authenticate_signatures_are_installed_and_a_removed_one_is_dropped(
    empty_db: str, sql_copy: Path
) -> None:
    """authenticate(p_token, p_host) is an overload beside authenticate(p_token): both exist after
    migrate, each granted to tenancy_app alone; were the host form's definition removed from
    the sources (or re-signed), the next migrate drops it rather than leave it callable (the
    mechanism: test_removed_function_is_dropped_with_its_grants and
    test_resigned_function_leaves_no_stale_overload)."""
    migrate(empty_db)
    assert overloads(empty_db, "authenticate") == [
        "tenancy.authenticate(text)",
        "tenancy.authenticate(text,text)",
    ]
    for signature in ("tenancy.authenticate(text)", "tenancy.authenticate(text, text)"):
        assert scalar(
            empty_db, "select has_function_privilege('tenancy_app', %s, 'execute')", (signature,)
        )
        assert not scalar(
            empty_db, "select has_function_privilege('tenancy_admin', %s, 'execute')", (signature,)
        )

    # Their shared body applies first: an upgrade of a live database never runs an authenticate
    # calling a function that does not exist yet.
    order = [s.display for s in steps()]
    assert order.index("functions/context/apply_token.sql") < order.index(
        "functions/context/authenticate.sql"
    )

    (sql_copy / "functions" / "context" / "authenticate_host.sql").unlink()
    outcome = migrate_mod.migrate_database(empty_db)
    assert outcome.dropped == ["tenancy.authenticate(text,text)"]
    assert overloads(empty_db, "authenticate") == ["tenancy.authenticate(text)"]
    assert scalar(
        empty_db,
        "select has_function_privilege('tenancy_app', 'tenancy.authenticate(text)', 'execute')",
    )


def test_removed_function_still_used_is_refused(empty_db: str, sql_copy: Path) -> None:
    path = write_extra(sql_copy, "p_x integer", "integer")
    migrate(empty_db)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("create table public.uses_extra (x integer default tenancy.zz_extra(1))")

    path.unlink()
    with pytest.raises(migrate_mod.MigrateError, match=r"tenancy\.zz_extra\(integer\).*depend"):
        migrate(empty_db)
    assert overloads(empty_db, "zz_extra") == ["tenancy.zz_extra(integer)"]

    # Once nothing depends on it, it goes.
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("drop table public.uses_extra")
    assert migrate_mod.migrate_database(empty_db).dropped == ["tenancy.zz_extra(integer)"]


REPLACING = """-- tenancy.zz_replacing: reproduces two steps of an imaginary release.
-- migrate: replaces zz_old_a zz_old_b
create table tenancy.zz_replacing (id integer);
"""


def mark_applied(url: str, *ids: str) -> None:
    import hashlib

    with psycopg.connect(url) as conn:
        for sid in ids:
            conn.execute(
                "insert into tenancy_migrations._yoyo_migration"
                " (migration_hash, migration_id, applied_at_utc)"
                " values (%s, %s, now() at time zone 'utc')",
                (hashlib.sha256(sid.encode()).hexdigest(), sid),
            )


def test_step_is_recorded_when_the_steps_it_replaces_are_applied(
    empty_db: str, sql_copy: Path
) -> None:
    migrate(empty_db)
    mark_applied(empty_db, "zz_old_a", "zz_old_b")
    (sql_copy / "migrations" / "9000_zz_replacing.sql").write_text(REPLACING)

    outcome = migrate_mod.migrate_database(empty_db)
    assert outcome.adopted == ["9000_zz_replacing"]
    assert outcome.applied == []
    # Recorded, not run: its table was made by the steps it replaces (here: by nobody).
    assert scalar(empty_db, "select to_regclass('tenancy.zz_replacing') is null") is True
    assert {s.id: s.applied for s in status(empty_db)}["9000_zz_replacing"] is True


def test_step_runs_on_a_database_without_the_steps_it_replaces(
    empty_db: str, sql_copy: Path
) -> None:
    (sql_copy / "migrations" / "9000_zz_replacing.sql").write_text(REPLACING)
    outcome = migrate_mod.migrate_database(empty_db)
    assert "9000_zz_replacing" in outcome.applied
    assert outcome.adopted == []
    assert scalar(empty_db, "select to_regclass('tenancy.zz_replacing') is not null") is True


def test_partial_history_of_replaced_steps_is_refused(empty_db: str, sql_copy: Path) -> None:
    migrate(empty_db)
    mark_applied(empty_db, "zz_old_a")
    (sql_copy / "migrations" / "9000_zz_replacing.sql").write_text(REPLACING)

    with pytest.raises(migrate_mod.MigrateError, match="has zz_old_a but not zz_old_b"):
        migrate(empty_db)
    assert {s.id: s.applied for s in status(empty_db)}["9000_zz_replacing"] is False
    assert scalar(empty_db, "select to_regclass('tenancy.zz_replacing') is null") is True


def test_unknown_directive_is_an_error(sql_copy: Path) -> None:
    (sql_copy / "migrations" / "9000_zz.sql").write_text(
        "-- a migration\n-- migrate: run-twice\nselect 1;\n"
    )
    with pytest.raises(migrate_mod.MigrateError, match="unknown directive '-- migrate: run-twice'"):
        steps(sql_copy)


@pytest.mark.parametrize(
    ("grant", "revoke", "attribute"),
    [
        (
            "alter role tenancy_session_objects login",
            "alter role tenancy_session_objects nologin",
            "LOGIN",
        ),
        (
            "alter role tenancy_session_objects bypassrls",
            "alter role tenancy_session_objects nobypassrls",
            "BYPASSRLS",
        ),
        (
            "alter role tenancy_session_objects createrole",
            "alter role tenancy_session_objects nocreaterole",
            "CREATEROLE",
        ),
        (
            "grant tenancy_owner to tenancy_session_objects",
            "revoke tenancy_owner from tenancy_session_objects",
            "member of tenancy_owner",
        ),
    ],
)
def test_existing_role_with_forbidden_attribute_is_refused(
    roles_db: str, grant: str, revoke: str, attribute: str
) -> None:
    admin = testing.with_dbname(roles_db, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(grant)
    try:
        with pytest.raises(migrate_mod.MigrateError) as caught:
            migrate(roles_db)
        message = str(caught.value)
        assert "'tenancy_session_objects'" in message and attribute in message
        assert "fix:" in message and "Nothing was applied" in message
        assert scalar(roles_db, "select to_regnamespace('tenancy') is null") is True
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(revoke)
    # The same role, with the attributes pgtenancy gives it, is used as it is.
    assert migrate(roles_db)
    assert scalar(roles_db, "select to_regnamespace('tenancy') is not null") is True


def test_roles_migration_refuses_a_role_with_forbidden_attributes(roles_db: str) -> None:
    """The roles step checks by itself too, for SQL applied without pgtenancy migrate."""
    admin = testing.with_dbname(roles_db, "postgres")
    source = (sql_dir() / "migrations" / "0001_tenancy_roles.sql").read_text()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("alter role tenancy_auditor bypassrls")
    try:
        with (
            psycopg.connect(roles_db) as conn,
            pytest.raises(
                psycopg.errors.InsufficientPrivilege,
                match='role "?tenancy_auditor"? already exists',
            ),
        ):
            conn.execute(source.encode())
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("alter role tenancy_auditor nobypassrls")
    with psycopg.connect(roles_db) as conn:
        conn.execute(source.encode())


def test_bookkeeping_and_pgcrypto_stay_out_of_public(empty_db: str) -> None:
    migrate(empty_db)
    with psycopg.connect(empty_db) as conn:
        in_public = conn.execute(
            "select c.relname::text from pg_class as c"
            " where c.relnamespace = 'public'::regnamespace order by 1"
        ).fetchall()
        yoyo = conn.execute(
            "select c.relname::text from pg_class as c"
            " where c.relnamespace = 'tenancy_migrations'::regnamespace and c.relkind = 'r'"
            " order by 1"
        ).fetchall()
        pgcrypto = conn.execute(
            "select extnamespace::regnamespace::text from pg_extension where extname = 'pgcrypto'"
        ).fetchone()
        public_functions = conn.execute(
            "select count(*) from pg_proc where pronamespace = 'public'::regnamespace"
        ).fetchone()
    assert in_public == []
    assert [r[0] for r in yoyo] == ["_yoyo_log", "_yoyo_migration", "_yoyo_version", "yoyo_lock"]
    assert pgcrypto == ("pgcrypto",)
    assert public_functions == (0,)


def test_existing_pgcrypto_is_used_where_it_is(empty_db: str) -> None:
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("create schema crypto_here")
        conn.execute("create extension pgcrypto schema crypto_here")
    migrate(empty_db)
    assert scalar(empty_db, "select to_regnamespace('pgcrypto') is null") is True
    assert (
        scalar(
            empty_db,
            "select encode(tenancy.hmac_sha256('data'::bytea, 'key'::bytea), 'hex')",
        )
        == "5031fe3d989c6d1537a013fa6e739da23463fdaec3b70137d828e36ace221bd0"
    )


def _yoyo_in_public(url: str, *ids: str) -> None:
    """yoyo's tables in public, as pgtenancy 0.1.0 (or an application's own yoyo) left them."""
    from yoyo import get_backend

    with get_backend(migrate_mod.yoyo_url(url).replace(
        f"schema={migrate_mod.BOOKKEEPING_SCHEMA}", "schema=public"
    )) as backend:  # fmt: skip
        backend.ensure_internal_schema_updated()
    mark = "insert into public._yoyo_migration (migration_hash, migration_id, applied_at_utc)"
    with psycopg.connect(url) as conn:
        for sid in ids:
            conn.execute(mark + " values (md5(%s), %s, now() at time zone 'utc')", (sid, sid))


def _schema_of_0_1_0(url: str) -> None:
    """Schema tenancy, which every database migrated by pgtenancy 0.1.0 has."""
    with psycopg.connect(url) as conn:
        conn.execute("create schema tenancy")


def test_legacy_bookkeeping_in_public_moves_and_an_applications_stays(empty_db: str) -> None:
    _schema_of_0_1_0(empty_db)
    _yoyo_in_public(empty_db, "0001_roles", "0002_core", "1_functions_x_0123456789ab",
                    "0001_app_orders")  # fmt: skip
    migrate_mod._prepare_bookkeeping(empty_db)
    with psycopg.connect(empty_db) as conn:
        ours = conn.execute(
            "select migration_id from tenancy_migrations._yoyo_migration order by 1"
        ).fetchall()
        theirs = conn.execute("select migration_id from public._yoyo_migration").fetchall()
    assert [r[0] for r in ours] == ["0001_roles", "0002_core", "1_functions_x_0123456789ab"]
    # The application's own yoyo history stays where its yoyo looks for it.
    assert theirs == [("0001_app_orders",)]


def test_legacy_bookkeeping_alone_in_public_is_moved_and_dropped(empty_db: str) -> None:
    _schema_of_0_1_0(empty_db)
    _yoyo_in_public(empty_db, "0001_roles", "0002_core")
    migrate_mod._prepare_bookkeeping(empty_db)
    with psycopg.connect(empty_db) as conn:
        left = conn.execute(
            "select count(*) from pg_class where relnamespace = 'public'::regnamespace"
        ).fetchone()
        moved = conn.execute("select count(*) from tenancy_migrations._yoyo_migration").fetchone()
    assert left == (0,)
    assert moved == (2,)


def test_yoyo_tables_of_an_application_alone_are_left_alone(empty_db: str) -> None:
    _yoyo_in_public(empty_db, "0001_app_orders")
    migrate_mod._prepare_bookkeeping(empty_db)
    assert scalar(empty_db, "select count(*) from public._yoyo_migration") == 1
    assert (
        scalar(empty_db, "select to_regclass('tenancy_migrations._yoyo_migration') is null") is True
    )


def test_versioned_migrations_create_no_functions_in_schema_tenancy() -> None:
    """Functions live in sql/functions: migrate drops every function of schema tenancy that no
    file there defines, so one created by a versioned migration would be dropped again."""
    pattern = re.compile(r"create\s+(or\s+replace\s+)?function\s+tenancy\.", re.IGNORECASE)
    offenders = [
        p.name
        for p in sorted((sql_dir() / "migrations").glob("*.sql"))
        if pattern.search(p.read_text())
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "ids",
    [("0002_core", "0003_app_orders"), ("0001_roles", "0002_core", "0003_app_orders")],
    ids=["0002_core", "0001_roles-0002_core"],
)
def test_application_step_named_like_a_legacy_one_is_not_taken_for_pgtenancy(
    empty_db: str, ids: tuple[str, ...]
) -> None:
    """An application's own yoyo history in public, with step ids that pgtenancy 0.1.0 also
    used, on a database pgtenancy never touched: its rows stay where its yoyo looks for them,
    and pgtenancy installs in full (no step is recorded as applied without its objects)."""
    _yoyo_in_public(empty_db, *ids)

    outcome = migrate_mod.migrate_database(empty_db)

    assert outcome.adopted == []
    assert outcome.applied == [s.id for s in steps()]
    theirs = scalar(
        empty_db, "select array_agg(migration_id order by 1)::text from public._yoyo_migration"
    )
    assert theirs == "{" + ",".join(ids) + "}"
    assert scalar(empty_db, "select to_regclass('tenancy.tenants') is not null") is True


@pytest.mark.parametrize(
    ("role", "granted"),
    [
        ("tenancy_app", "tenancy_admin"),
        ("tenancy_app", "tenancy_auditor"),
        ("tenancy_auditor", "tenancy_app"),
        ("tenancy_app", "pg_read_all_data"),
        ("tenancy_app", "pg_write_all_data"),
        ("tenancy_service", "pg_write_server_files"),
        ("tenancy_app", "pg_execute_server_program"),
        ("tenancy_app", "{superuser}"),
        ("tenancy_admin", "{bypassrls}"),
    ],
)
def test_existing_role_with_a_forbidden_membership_is_refused(
    private_scratch_role: str, roles_db: str, role: str, granted: str
) -> None:
    """A pgtenancy role that is a member of another pgtenancy role, of a predefined role that
    reads or writes every table or the server's files, or of a role with SUPERUSER or BYPASSRLS
    (which its members reach with SET ROLE) lets every login granted it out of its tenant: e.g.
    tenancy_app in pg_read_all_data reads tenancy.jwt_config's secret and forges tokens."""
    admin = testing.with_dbname(roles_db, "postgres")
    if granted.startswith("{"):
        attribute = granted.strip("{}")
        granted = private_scratch_role
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL(f"alter role {{}} {attribute}").format(sql.Identifier(granted)))
    grant = sql.SQL("grant {} to {}").format(sql.Identifier(granted), sql.Identifier(role))
    revoke = sql.SQL("revoke {} from {}").format(sql.Identifier(granted), sql.Identifier(role))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(grant)
    try:
        with pytest.raises(migrate_mod.MigrateError) as caught:
            migrate(roles_db)
        message = str(caught.value)
        assert f"'{role}'" in message and f"member of {granted}" in message, message
        assert "fix: revoke" in message and "Nothing was applied" in message
        assert scalar(roles_db, "select to_regnamespace('tenancy') is null") is True
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(revoke)
    assert migrate(roles_db)
    # Once installed, the check still holds on every later run.
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(grant)
    try:
        with pytest.raises(migrate_mod.MigrateError, match=f"member of {granted}"):
            migrate(roles_db)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(revoke)
    assert migrate(roles_db) == []


def test_roles_migration_refuses_a_role_with_a_forbidden_membership(roles_db: str) -> None:
    """The roles step checks memberships by itself too, for SQL applied without migrate."""
    admin = testing.with_dbname(roles_db, "postgres")
    source = (sql_dir() / "migrations" / "0001_tenancy_roles.sql").read_text()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("grant pg_read_all_data to tenancy_app")
    try:
        with (
            psycopg.connect(roles_db) as conn,
            pytest.raises(
                psycopg.errors.InsufficientPrivilege,
                match="tenancy_app is a member of pg_read_all_data",
            ),
        ):
            conn.execute(source.encode())
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("revoke pg_read_all_data from tenancy_app")
    with psycopg.connect(roles_db) as conn:
        conn.execute(source.encode())


ROUTINES = {
    "procedure": (
        "-- tenancy.zz_routine: a procedure.\n"
        "create or replace procedure tenancy.zz_routine(p_x integer)\n"
        "language sql\nas 'select 1';\n"
    ),
    "aggregate": (
        "-- tenancy.zz_routine: an aggregate.\n"
        "create or replace aggregate tenancy.zz_routine(integer) (\n"
        "    sfunc = pg_catalog.int4pl, stype = integer\n);\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(ROUTINES))
def test_removed_procedure_or_aggregate_is_dropped(
    empty_db: str, sql_copy: Path, kind: str
) -> None:
    """sql/functions may hold procedures and aggregates too: DROP FUNCTION refuses them
    (WrongObjectType), and every later migrate would fail on the removed one."""
    path = sql_copy / "functions" / "zz" / "zz_routine.sql"
    path.parent.mkdir()
    path.write_text(ROUTINES[kind])
    migrate(empty_db)
    assert overloads(empty_db, "zz_routine") == ["tenancy.zz_routine(integer)"]
    assert migrate_mod.migrate_database(empty_db).dropped == []

    path.unlink()
    assert migrate_mod.migrate_database(empty_db).dropped == ["tenancy.zz_routine(integer)"]
    assert overloads(empty_db, "zz_routine") == []


def test_application_yoyo_row_committed_during_the_move_is_kept(empty_db: str) -> None:
    """The application's own yoyo records a step while pgtenancy moves 0.1.0's rows out of
    public: the tables in public are dropped only if nothing is left in them once that step
    commits, never with the application's new row in them."""
    _schema_of_0_1_0(empty_db)
    _yoyo_in_public(empty_db, "0001_roles", "0002_core")
    errors: list[BaseException] = []

    def move() -> None:
        try:
            migrate_mod._prepare_bookkeeping(empty_db)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    with psycopg.connect(empty_db) as app:
        app.execute(
            "insert into public._yoyo_migration (migration_hash, migration_id, applied_at_utc)"
            " values (md5('0001_app_orders'), '0001_app_orders', now() at time zone 'utc')"
        )
        app_pid = app.info.backend_pid
        mover = threading.Thread(target=move)
        mover.start()
        # Wait until the move waits for the application's transaction.
        deadline = time.monotonic() + 30
        with psycopg.connect(empty_db, autocommit=True) as watch:
            while time.monotonic() < deadline and mover.is_alive():
                row = watch.execute(
                    "select count(*) from pg_stat_activity where %s = any(pg_blocking_pids(pid))",
                    (app_pid,),
                ).fetchone()
                if row and row[0]:
                    break
                time.sleep(0.05)
        app.commit()
    mover.join(60)
    assert not mover.is_alive() and errors == []

    assert scalar(empty_db, "select array_agg(migration_id)::text from public._yoyo_migration") == (
        "{0001_app_orders}"
    )
    assert scalar(empty_db, "select count(*) from tenancy_migrations._yoyo_migration") == 2


def test_partial_history_records_no_step_as_adopted(empty_db: str, sql_copy: Path) -> None:
    """A refused history is refused before anything is recorded: a step whose replaced steps
    are all there is not adopted either when a later one finds its history incomplete."""
    migrate(empty_db)
    mark_applied(empty_db, "zz_old_a", "zz_old_b")
    (sql_copy / "migrations" / "9000_zz_replacing.sql").write_text(REPLACING)
    (sql_copy / "migrations" / "9001_zz_partial.sql").write_text(
        "-- tenancy.zz_partial: reproduces a step the database has and one it lacks.\n"
        "-- migrate: replaces zz_old_a zz_old_c\n"
        "create table tenancy.zz_partial (id integer);\n"
    )

    with pytest.raises(migrate_mod.MigrateError, match="has zz_old_a but not zz_old_c"):
        migrate(empty_db)
    applied = {s.id: s.applied for s in status(empty_db)}
    assert applied["9000_zz_replacing"] is False
    assert applied["9001_zz_partial"] is False


def test_removed_functions_are_found_under_the_steps_search_path(empty_db: str) -> None:
    """The function files run again, to find which functions they define, the way the steps
    ran them (search_path pg_catalog): under the migrating user's own search_path a type such as
    public.text would resolve in their place and the files would define other functions."""
    migrate(empty_db)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("create domain public.text as pg_catalog.text")
    before = snapshot(empty_db)
    own_path = empty_db + "&options=-csearch_path%3Dpublic,pg_catalog"

    outcome = migrate_mod.migrate_database(own_path)

    assert (outcome.applied, outcome.dropped) == ([], [])
    assert snapshot(empty_db) == before


def test_existing_role_member_of_a_row_secured_tables_owner_is_refused(
    scratch_role: str, empty_db: str
) -> None:
    """Granting the application's table owner to tenancy_app (to hand it the tables'
    privileges) lets every login of tenancy_app SET ROLE to that owner, which is exempt from
    row level security (unless forced) and may disable it or drop the policies."""
    admin = testing.with_dbname(empty_db, "postgres")
    owner = sql.Identifier(scratch_role)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("create table public.orders (tenant_id uuid)")
        conn.execute(sql.SQL("alter table public.orders owner to {}").format(owner))
        conn.execute("alter table public.orders enable row level security")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("grant {} to tenancy_app").format(owner))
    try:
        with pytest.raises(migrate_mod.MigrateError) as caught:
            migrate(empty_db)
        message = str(caught.value)
        assert f"'tenancy_app' is a member of {scratch_role}" in message, message
        assert "row level security" in message and "fix: revoke" in message
        assert scalar(empty_db, "select to_regnamespace('tenancy') is null") is True
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("revoke {} from tenancy_app").format(owner))
    assert migrate(empty_db)
