"""``pgtenancy doctor --spec``: lint 0020 (live policies differ from the generated ones) and lint
0021 (a tenant table the spec does not list), on the example application, planted and fixed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import run_cli
from psycopg import sql

from pgtenancy import doctor, testing
from pgtenancy.migrate import migrate

APP = testing.repo_root() / "examples" / "app"
SPEC = APP / "tenancy.toml"
SELECT = '"tenant rows are visible to readers of the tenant"'
DELETE = '"tenant rows are deleted by writers of the tenant"'
UPDATE = '"tenant rows are updated by writers of the tenant"'
INSERT = '"tenant rows are inserted by writers of the tenant"'


@pytest.fixture
def app_db(base_url: str) -> Iterator[str]:
    """A new database with pgtenancy, the example application, its generated policies, tenants,
    members and rows (as ``make demo`` builds it); dropped afterwards."""
    name = f"pgtenancy_doctor_{uuid.uuid4().hex[:12]}"
    admin = testing.with_dbname(base_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = testing.with_dbname(base_url, name)
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            for path in [APP / "schema.sql", *sorted((APP / "policies").glob("*.sql"))]:
                with conn.transaction():
                    conn.execute(path.read_bytes())
        testing.seed_and_remigrate(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(name)))


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def reapply(url: str, table: str) -> None:
    """``pgtenancy apply`` of the table's generated policy file, the fix lint 0020 names."""
    res = run_cli("apply", "--database-url", url, str(APP / "policies" / f"{table}.sql"))
    assert res.returncode == 0, res.stderr


def spec_findings(url: str, spec: Path = SPEC) -> list[dict[str, str]]:
    """The findings of lints 0020 and 0021 of ``doctor --spec`` (JSON), in doctor's order."""
    res = run_cli(
        "doctor", "--database-url", url, "--spec", str(spec), "--format", "json", "--level", "info"
    )
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr, res.stderr
    return [f for f in json.loads(res.stdout) if f["code"] in ("0020", "0021")]


def assert_nothing_found(url: str, spec: Path = SPEC) -> None:
    res = run_cli("doctor", "--database-url", url, "--spec", str(spec), "--level", "info")
    assert (res.returncode, res.stdout.strip()) == (0, "doctor: no problem found"), (
        res.stdout + res.stderr
    )


def test_policy_drift_each_kind_planted_then_reapplied(app_db: str) -> None:
    """Nothing on the example app as generated; then one WARN 0020 per drifted policy, naming
    the table, the policy and what differs (USING, a missing policy, an extra one, the roles);
    re-applying the generated file (and dropping the extra policy, which apply leaves alone)
    finds nothing again."""
    assert_nothing_found(app_db)

    # USING (true) instead of the tenant predicate.
    execute(app_db, f"alter policy {SELECT} on app.projects using (true)")
    found = spec_findings(app_db)
    assert [(f["level"], f["object"]) for f in found] == [("WARN", f"{SELECT} on app.projects")]
    detail = found[0]["detail"]
    assert "differs from the one pgtenancy generate renders" in detail, detail
    assert "USING: true instead of (tenant_id = ( SELECT tenancy.context_tenant_id(" in detail
    assert found[0]["remediation"].endswith("pgtenancy apply <policies>/app.projects.sql")
    reapply(app_db, "app.projects")
    assert spec_findings(app_db) == []

    # A generated policy dropped.
    execute(app_db, f"drop policy {DELETE} on app.documents")
    found = spec_findings(app_db)
    assert [f["object"] for f in found] == [f"{DELETE} on app.documents"]
    assert found[0]["detail"].startswith(f"app.documents has no policy {DELETE}, which ")
    assert "for delete, to public, using (tenant_id = " in found[0]["detail"]
    reapply(app_db, "app.documents")
    assert spec_findings(app_db) == []

    # An extra permissive policy: apply drops only the generator's own policies, so the fix is
    # to drop it.
    execute(app_db, "create policy extra on app.projects for select to tenancy_app using (true)")
    found = spec_findings(app_db)
    assert [f["object"] for f in found] == ["extra on app.projects"]
    assert (
        "policy extra on app.projects (permissive, for select, to tenancy_app, using true) is not "
        "one pgtenancy generate renders" in found[0]["detail"]
    )
    assert found[0]["remediation"].startswith("drop policy extra on app.projects;")
    reapply(app_db, "app.projects")
    assert [f["object"] for f in spec_findings(app_db)] == ["extra on app.projects"]
    execute(app_db, "drop policy extra on app.projects")
    assert spec_findings(app_db) == []

    # The roles of a policy changed.
    execute(app_db, f"alter policy {UPDATE} on app.documents to tenancy_app, tenancy_service")
    found = spec_findings(app_db)
    assert [f["object"] for f in found] == [f"{UPDATE} on app.documents"]
    assert "roles: to tenancy_app, tenancy_service instead of to public" in found[0]["detail"]
    reapply(app_db, "app.documents")

    # Restrictive instead of permissive, and another command, with the same expressions.
    with psycopg.connect(app_db, autocommit=True) as conn:
        row = conn.execute(
            "select pg_get_expr(polqual, polrelid) from pg_policy "
            "where polrelid = 'app.projects'::regclass and polname = %s",
            (SELECT.strip('"'),),
        ).fetchone()
        assert row is not None
        with conn.transaction():
            conn.execute(f"drop policy {SELECT} on app.projects")
            conn.execute(
                f"create policy {SELECT} on app.projects as restrictive for all to public "
                f"using ({row[0]})"  # type: ignore[str-format]
            )
    found = spec_findings(app_db)
    assert [f["object"] for f in found] == [f"{SELECT} on app.projects"]
    assert (
        "command: for all instead of for select; restrictive instead of permissive"
        in (found[0]["detail"])
    )
    reapply(app_db, "app.projects")
    assert_nothing_found(app_db)


def test_policy_drift_follows_the_spec(app_db: str, tmp_path: Path) -> None:
    """A spec that no longer lets anyone write app.projects: its write policies are extra
    (apply drops them, since the generator names them) and the read policy's roles differ."""
    spec = tmp_path / "tenancy.toml"
    spec.write_text(
        SPEC.read_text().replace(
            'read = ["owner", "admin", "member", "viewer"]\nwrite = ["owner", "admin"]',
            'read = ["owner", "admin"]\nwrite = []',
        )
    )
    assert spec.read_text() != SPEC.read_text()
    found = spec_findings(app_db, spec)
    assert sorted(f["object"] for f in found) == sorted(
        f"{name} on app.projects" for name in (SELECT, DELETE, UPDATE, INSERT)
    )
    by_object = {f["object"]: f for f in found}
    select = by_object[f"{SELECT} on app.projects"]
    assert (
        "USING: " in select["detail"]
        and "ARRAY['admin'::text, 'owner'::text]" in (select["detail"].split(" instead of ")[1])
    )
    assert by_object[f"{DELETE} on app.projects"]["remediation"].startswith(
        f"pgtenancy generate --spec {spec}"
    )


def test_tenant_table_not_in_spec_planted_then_listed(app_db: str, tmp_path: Path) -> None:
    """A hand-made tenant table the spec does not list is a WARN 0021; an inheritance child of a
    listed table is not; once listed, 0021 is gone and 0020 compares its policies."""
    execute(
        app_db,
        "create table app.notes (tenant_id uuid not null default tenancy.current_tenant_id(), "
        "id bigint generated always as identity, body text, primary key (tenant_id, id))",
        "comment on table app.notes is 'Notes, secured by hand.'",
        "alter table app.notes enable row level security, force row level security",
        "create policy notes on app.notes using "
        "(tenant_id = (select tenancy.context_tenant_id(array['owner'])))",
        # A child of a listed table, with a tenant policy of its own: the spec covers it.
        "create table app.projects_archive () inherits (app.projects)",
        "alter table app.projects_archive enable row level security, force row level security",
        "create policy archive on app.projects_archive using "
        "(tenant_id = (select tenancy.context_tenant_id(array['owner'])))",
    )
    found = spec_findings(app_db)
    unlisted = [f for f in found if f["code"] == "0021"]
    assert [(f["level"], f["object"]) for f in unlisted] == [("WARN", "app.notes")], found
    assert (
        "tenant table app.notes (its policies compare tenant_id with the tenant context)"
        in (unlisted[0]["detail"])
    )
    assert unlisted[0]["remediation"].startswith(
        'list it in examples/app/tenancy.toml ([tables."app.notes"])'
    )
    # The child is compared with the generated policies of its parent (0020), not reported
    # as unlisted.
    assert {f["object"] for f in found if f["code"] == "0020"} == {
        "archive on app.projects_archive",
        *(f"{name} on app.projects_archive" for name in (SELECT, DELETE, UPDATE, INSERT)),
    }
    assert all(
        "app.projects_archive (a partition or inheritance child of app.projects)" in f["detail"]
        for f in found
        if f["code"] == "0020"
    )

    spec = tmp_path / "tenancy.toml"
    spec.write_text(SPEC.read_text() + '\n[tables."app.notes"]\nread = ["owner"]\nwrite = []\n')
    found = spec_findings(app_db, spec)
    assert [f for f in found if f["code"] == "0021"] == []
    # Listed, its hand-made policy is now compared with the generated one.
    assert {f["object"] for f in found if "app.notes" in f["object"]} == {
        "notes on app.notes",
        f"{SELECT} on app.notes",
    }
    execute(app_db, "drop table app.projects_archive")
    # Without the spec, neither lint runs.
    res = run_cli("doctor", "--database-url", app_db, "--format", "json", "--level", "info")
    assert {f["code"] for f in json.loads(res.stdout)} <= {"0018"}, res.stdout


def test_policy_drift_takes_no_lock_but_access_share_on_the_users_tables(app_db: str) -> None:
    """While another session holds EXCLUSIVE locks on both tables of the spec (they conflict
    with every lock but ACCESS SHARE, the one reading a policy's expression takes), the drift
    check still completes: with lock_timeout set, a stronger lock (ALTER TABLE, CREATE POLICY,
    LOCK) would fail it. It leaves nothing behind: no lock, no temporary table."""
    spec = doctor.load_spec_file(SPEC)
    with (
        psycopg.connect(app_db) as holder,
        psycopg.connect(app_db, autocommit=True) as conn,
    ):
        holder.execute("lock table app.projects, app.documents in exclusive mode")
        conn.execute("set lock_timeout = '2s'")
        conn.execute("set search_path = pg_catalog")
        assert doctor.drift_findings(conn, spec) == []
        # The lock is real: the next weakest lock does wait for it.
        with pytest.raises(psycopg.errors.LockNotAvailable), conn.transaction():
            conn.execute("lock table app.projects in row share mode")
        holder.rollback()
        # Planted drift is found the same way (the check does compare).
        holder.execute(f"alter policy {SELECT} on app.projects using (true)")
        holder.commit()
        found = doctor.drift_findings(conn, spec)
        assert [f.object for f in found] == [f"{SELECT} on app.projects"]
        left = conn.execute(
            "select count(*) from pg_locks where pid = pg_backend_pid() and locktype = 'relation' "
            "and relation <> 'pg_locks'::regclass"
        ).fetchone()
        assert left == (0,)
        temp = conn.execute(
            "select count(*) from pg_class where relpersistence = 't' "
            "and relnamespace = pg_my_temp_schema()"
        ).fetchone()
        assert temp == (0,)


def test_policy_drift_without_temporary_privilege_is_skipped_with_an_info(app_db: str) -> None:
    """A caller that may not create temporary tables gets one INFO saying 0020 did not run;
    granted TEMPORARY, the same caller (no superuser, no owner) compares and finds nothing."""
    login = f"doctor_{uuid.uuid4().hex[:8]}"
    dbname = psycopg.conninfo.conninfo_to_dict(app_db)["dbname"]
    execute(
        app_db,
        f"create role {login} login in role tenancy_auditor",
        f"grant usage on schema app to {login}",
    )
    try:
        spec = doctor.load_spec_file(SPEC)
        with psycopg.connect(app_db, user=login, autocommit=True) as conn:
            found = doctor.drift_findings(conn, spec)
            assert [(f.code, f.level, f.object) for f in found] == [("0020", "INFO", spec.display)]
            assert f"role {login} may not create temporary tables in database" in (found[0].detail)
            assert found[0].remediation.endswith(f'to "{login}"')
        execute(app_db, f'grant temporary on database "{dbname}" to {login}')
        with psycopg.connect(app_db, user=login, autocommit=True) as conn:
            assert doctor.drift_findings(conn, spec) == []
            execute(app_db, f"alter policy {SELECT} on app.projects using (true)")
            found = doctor.drift_findings(conn, spec)
            assert [(f.level, f.object) for f in found] == [("WARN", f"{SELECT} on app.projects")]
    finally:
        execute(
            app_db,
            f'revoke temporary on database "{dbname}" from {login}',
            f"revoke usage on schema app from {login}",
            f"drop role {login}",
        )


def test_pgtenancys_own_spec_matches_its_own_policies(app_db: str) -> None:
    """pgtenancy's own spec (sql/tenancy.toml) against a database it migrated: its policies are
    the generated ones (no 0020); the application's tenant tables are not in that spec (0021)."""
    found = spec_findings(app_db, testing.repo_root() / "sql" / "tenancy.toml")
    assert [(f["code"], f["object"]) for f in found] == [
        ("0021", "app.customers"),
        ("0021", "app.documents"),
        ("0021", "app.orders"),
        ("0021", "app.projects"),
    ], found
