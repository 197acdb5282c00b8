"""``pgtenancy tenant export / import / restore`` against real databases.

A source database (the test template: pgtenancy, the fixture tables app.projects, app.documents
and app.ledger with their generated policies) gets two tenants with rows in every kind of table
(application rows, members, domains, settings, feature flags, API keys, invitations, usage,
webhooks and their secrets, outbox events, a tenant's own identity provider, sealed audit rows,
a legal hold). Tenant A is exported, imported into fresh databases, and compared table by table
with checksums computed in SQL on both sides; tenant B must never appear in the export. Restore
rebuilds a tenant's documents (and ledger) as they were before a set of changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from conftest import Roles, run_cli
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pgtenancy import tenant_export, testing

FEATURE = "beta.export"

#: The newest versioned migration: what an export of a database migrated now names.
LAST_MIGRATION = sorted(
    p.stem
    for p in (Path(__file__).resolve().parents[2] / "sql" / "migrations").glob(
        "[0-9][0-9][0-9][0-9]_*.sql"
    )
)[-1]


@dataclass(frozen=True)
class Seeded:
    id: uuid.UUID
    slug: str
    key: str
    marker: str


def execute_as(url: str, role: str, statements: list[tuple[str, Any]]) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        for query, params in statements:
            conn.execute(query, params)


def seed_tenant(url: str, slug: str, key: str, marker: str) -> Seeded:
    """A tenant with rows in every kind of table an export reads."""
    owner = f"auth0|{marker}-owner"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set role tenancy_admin")
        tid = conn.execute(
            "select tenancy.create_tenant(%s, %s, %s, p_key => %s)",
            (slug, f"{marker} Inc", owner, key),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("select tenancy.set_feature_flag(%s, %s, 'true')", (tid, FEATURE))
        conn.execute(
            "select tenancy.configure_issuer(%s, array['aud'], p_algorithms => array['ES256'],"
            " p_tenant_id => %s)",
            (f"https://idp.{marker}.example/", tid),
        )
        conn.execute("select tenancy.set_legal_hold(%s, true, %s)", (tid, f"{marker} hold"))
        conn.execute("reset role")
        # A key of the tenant's issuer (the material check needs numbers, not a real curve point).
        conn.execute(
            "insert into tenancy.jwt_keys (issuer_id, kid, kty, alg, x, y, jwk)"
            " select id, %s, 'EC', 'ES256', 1, 2, '{}' from tenancy.jwt_issuers"
            " where tenant_id = %s",
            (f"{marker}-kid", tid),
        )
    statements: list[tuple[str, Any]] = [
        ("select tenancy.set_context(%s)", (tid,)),
        ("insert into app.projects (name) values (%s), (%s)", (f"{marker} one", f"{marker} two")),
        (
            "insert into app.documents (project_id, title, body, internal_note)"
            " select id, 'doc ' || name, %s, %s from app.projects order by id",
            (f"{marker}\ttab\nnewline \\ backslash é", f"{marker} note"),
        ),
        (
            "insert into app.ledger (amount, memo) values (12.50, %s), (-3.25, %s)",
            (f"{marker} first", f"{marker}\nsecond"),
        ),
        ("select tenancy.set_branding(%s)", (json.dumps({"display_name": f"{marker} brand"}),)),
        ("select tenancy.add_custom_domain(%s)", (f"docs.{marker}.example",)),
        ("select tenancy.create_api_key(%s, 'member')", (f"{marker} key",)),
        ("select tenancy.invite(%s, 'member')", (f"{marker}@example.com",)),
        ("select tenancy.create_meter('api_calls')", None),
        ("select tenancy.create_tier('pro', 10, '{\"api_calls\": 4}')", None),
        ("select tenancy.subscribe(%s, 'pro')", (f"{marker}-customer",)),
        # 4 of 4: crosses both alert thresholds (80 % and 100 %): usage_alerts and their events.
        ("select tenancy.track_usage('api_calls', %s, 4)", (f"{marker}-customer",)),
        ("select tenancy.configure_webhook('hook', %s)", (f"https://hooks.example.com/{marker}",)),
        ("select tenancy.track_event('signed_up', %s)", (f"{marker}-user",)),
        ("select tenancy.log_connector_event('crm', 'synced', %s)", (json.dumps({"m": marker}),)),
    ]
    execute_as(url, "tenancy_service", statements)
    execute_as(url, "tenancy_service", [("select * from tenancy.seal_audit()", None)])
    return Seeded(tid, slug, key, marker)


def platform_ready(url: str) -> None:
    """What a platform database holds before tenants arrive: its base domain (tenants get
    subdomains) and the feature flag's default."""
    execute_as(
        url,
        "tenancy_admin",
        [
            ("select tenancy.configure_domains(array['platform.test'])", None),
            ("select tenancy.set_feature_default(%s, 'false')", (FEATURE,)),
        ],
    )


@pytest.fixture(scope="module")
def source(pgtenancy_make_database: Callable[[], str]) -> tuple[str, Seeded, Seeded]:
    url = pgtenancy_make_database()
    platform_ready(url)
    a = seed_tenant(url, "acme-export", "4242", "alphamarker")
    b = seed_tenant(url, "bravo-export", "4343", "bravomarker")
    return url, a, b


@pytest.fixture(scope="module")
def exported(
    source: tuple[str, Seeded, Seeded], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any], str]:
    url, a, _ = source
    out = tmp_path_factory.mktemp("export") / "acme"
    res = run_cli(
        "tenant", "export", a.slug, "--out", str(out), "--progress", "--database-url", url
    )
    assert res.returncode == 0, res.stderr
    return out, json.loads((out / "manifest.json").read_text()), res.stdout + res.stderr


def owner_predicate(name: str, tenant_column: str | None, tenant: Seeded) -> sql.Composable:
    """The tenant's rows of a table, written independently of the module under test."""
    special = {
        "tenancy.tenants": "id = {t}",
        "tenancy.connector_secrets": (
            "endpoint_id in (select id from tenancy.connector_endpoints where tenant_id = {t})"
        ),
        "tenancy.jwt_keys": (
            "issuer_id in (select id from tenancy.jwt_issuers where tenant_id = {t})"
        ),
    }
    if name in special:
        return sql.SQL(special[name]).format(t=sql.Literal(tenant.id))
    assert tenant_column is not None
    value: Any = int(tenant.key) if tenant_column == "account_key" else tenant.id
    return sql.SQL("{} = {}").format(sql.Identifier(tenant_column), sql.Literal(value))


# Columns holding platform-wide numbers that import renumbers.
RENUMBERED = {"tenancy.jwt_issuers": {"id"}, "tenancy.jwt_keys": {"issuer_id"}}


def table_checksum(url: str, entry: dict[str, Any], tenant: Seeded) -> tuple[int, str]:
    """Rows and an md5 over the tenant's rows of a table (its export columns, in row order)."""
    cols = [
        c["name"] for c in entry["columns"] if c["name"] not in RENUMBERED.get(entry["name"], ())
    ]
    schema, table = entry["name"].split(".")
    row = sql.SQL("row({})::text").format(sql.SQL(", ").join(map(sql.Identifier, cols)))
    query = sql.SQL(
        "select count(*), coalesce(md5(string_agg({row}, E'\\n' order by {row})), '')"
        " from {table} where {pred}"
    ).format(
        row=row,
        table=sql.Identifier(schema, table),
        pred=owner_predicate(entry["name"], entry["tenant_column"], tenant),
    )
    with psycopg.connect(url) as conn:
        n, digest = conn.execute(query).fetchone()  # type: ignore[misc]
    return int(n), str(digest)


def written(url: str) -> tuple[int, ...]:
    """Row counts that any import would change: tenants, the audit trail, the fixture tables,
    the outbox."""
    with psycopg.connect(url) as conn:
        return tuple(
            conn.execute(
                "select (select count(*) from tenancy.tenants),"
                " (select count(*) from tenancy.audit_logs),"
                " (select count(*) from app.projects), (select count(*) from app.documents),"
                " (select count(*) from tenancy.domain_claims),"
                " (select count(*) from tenancy.analytics_events),"
                " (select count(*) from tenancy.deliveries),"
                " (select count(*) from tenancy.jwt_issuers)"
            ).fetchone()  # type: ignore[arg-type]
        )


# -- export --------------------------------------------------------------------------------------


def test_export_writes_every_table_of_the_tenant_with_counts_and_checksums(
    source: tuple[str, Seeded, Seeded], exported: tuple[Path, dict[str, Any], str]
) -> None:
    url, a, b = source
    out, manifest, output = exported
    assert manifest["format"] == "pgtenancy.tenant_export" and manifest["version"] == 1
    assert manifest["tenant"]["id"] == str(a.id)
    assert (manifest["tenant"]["slug"], manifest["tenant"]["key"]) == (a.slug, a.key)
    assert manifest["source"]["last_migration"] == LAST_MIGRATION
    assert manifest["source"]["database"] == testing.dbname_of(url)
    assert manifest["contains_secrets"] is True
    tables = {t["name"]: t for t in manifest["tables"]}
    roles = {name: t["role"] for name, t in tables.items()}
    assert manifest["tables"][0]["name"] == "tenancy.tenants"
    archive = {n for n, r in roles.items() if r == "archive"}
    assert archive == {
        "tenancy.audit_logs",
        "tenancy.audit_seals",
        "tenancy.audit_legal_holds",
        "tenancy.security_events",
    }
    with psycopg.connect(url) as conn:
        tenant_tables = {
            r[0]
            for r in conn.execute(
                "select l.relid::regclass::text from tenancy.lint_tenant_tables as l"
                " join pg_class as c on c.oid = l.relid where not c.relispartition"
            )
        }
    assert tenant_tables <= set(tables), tenant_tables - set(tables)
    for name in ("app.projects", "app.documents", "app.ledger", "tenancy.connector_secrets"):
        assert tables[name]["role"] == "data"
    # Every table: its file's checksum, and the count of the tenant's rows in the source.
    for name, entry in tables.items():
        path = out / entry["file"]
        assert entry["file"] == f"{name}.copy"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], name
        rows, _ = table_checksum(url, entry, a)
        assert entry["rows"] == rows, name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "manifest.json").stat().st_mode) == 0o600
    # Something in every kind of table (the seed wrote them all).
    for name in (
        "app.documents",
        "app.ledger",
        "tenancy.memberships",
        "tenancy.domain_claims",
        "tenancy.tenant_domains",
        "tenancy.tenant_settings",
        "tenancy.feature_flags",
        "tenancy.api_key_secrets",
        "tenancy.invitation_tokens",
        "tenancy.connector_secrets",
        "tenancy.jwt_issuers",
        "tenancy.jwt_keys",
        "tenancy.usage_alerts",
        "tenancy.deliveries",
        "tenancy.audit_logs",
        "tenancy.audit_seals",
        "tenancy.audit_legal_holds",
        "tenancy.security_events",
    ):
        assert tables[name]["rows"] > 0, name
    # Generated columns, of which the fixtures have none, would be left out; columns are typed.
    assert {"name": "account_key", "type": "bigint"} in tables["app.ledger"]["columns"]
    # Tenant B never appears: not its id, not its key's rows, not its values.
    everything = b"".join(p.read_bytes() for p in out.iterdir())
    for needle in (str(b.id), b.marker, b.slug):
        assert needle.encode() not in everything, needle
    assert a.marker.encode() in everything
    assert "exported app.documents: 2 rows" in output
    assert f"exported tenant {a.slug} ({a.id})" in output
    assert "the export holds secrets (1 webhook URL(s) and signing secret(s)" in output


def test_export_refuses_a_login_under_row_level_security_and_a_used_directory(
    source: tuple[str, Seeded, Seeded], roles: Roles, tmp_path: Path
) -> None:
    url, a, _ = source
    service = testing.as_login(url, conninfo_to_dict(roles.service)["user"])
    out = tmp_path / "refused"
    res = run_cli("tenant", "export", a.slug, "--out", str(out), "--database-url", service)
    assert res.returncode == 2
    assert res.stdout == ""
    user = conninfo_to_dict(roles.service)["user"]
    assert res.stderr == (
        f"pgtenancy: tenant export: login {user} is subject to row level security, so the tenant "
        "tables would show it no rows (or one context's): export needs a superuser or a role "
        "with BYPASSRLS; nothing was done\n"
    )
    assert not out.exists()  # the directory it made is gone again
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine\n")
    res = run_cli("tenant", "export", a.slug, "--out", str(used), "--database-url", url)
    assert res.returncode == 2
    assert f"--out {used} is not empty" in res.stderr
    assert sorted(p.name for p in used.iterdir()) == ["notes.txt"]
    res = run_cli("tenant", "export", "no-such-tenant", "--out", str(out), "--database-url", url)
    assert res.returncode == 2
    assert "no tenant has the slug 'no-such-tenant'" in res.stderr
    assert not out.exists()


# -- import --------------------------------------------------------------------------------------


def test_import_into_a_fresh_database_gives_identical_rows(
    source: tuple[str, Seeded, Seeded],
    exported: tuple[Path, dict[str, Any], str],
    pgtenancy_make_database: Callable[[], str],
) -> None:
    url, a, _ = source
    out, manifest, _ = exported
    dest = pgtenancy_make_database()
    platform_ready(dest)
    res = run_cli("tenant", "import", str(out), "--database-url", dest)
    assert res.returncode == 0, res.stderr
    assert f"imported tenant {a.slug} ({a.id}) into {testing.dbname_of(dest)}" in res.stdout
    assert "not imported (archive, kept in the export): tenancy.security_events" in res.stdout
    for entry in manifest["tables"]:
        if entry["role"] != "data":
            continue
        expected = table_checksum(url, entry, a)
        assert table_checksum(dest, entry, a) == expected, entry["name"]
        assert expected[0] == entry["rows"], entry["name"]
    with psycopg.connect(dest) as conn:
        # The archive stays in the export: the destination's trail holds the import's inserts.
        actions = conn.execute(
            "select distinct action, actor_role from tenancy.audit_logs where tenant_id = %s",
            (a.id,),
        ).fetchall()
        assert actions == [("INSERT", None)]
        assert conn.execute(
            "select count(*) from tenancy.security_events where tenant_id = %s", (a.id,)
        ).fetchone() == (0,)
        # The tenant's issuer got a new number; its key followed it.
        assert conn.execute(
            "select k.kid from tenancy.jwt_keys as k join tenancy.jwt_issuers as i"
            " on i.id = k.issuer_id where i.tenant_id = %s",
            (a.id,),
        ).fetchall() == [(f"{a.marker}-kid",)]
        # Sequences were raised past the imported ids: new rows get new ones.
        top = conn.execute("select max(id) from app.projects").fetchone()[0]  # type: ignore[index]
        conn.execute("set local role tenancy_service")
        conn.execute("select tenancy.set_context(%s)", (a.id,))
        new = conn.execute(
            "insert into app.projects (name) values ('after import') returning id"
        ).fetchone()[0]  # type: ignore[index]
        assert new > top
    # Importing again: the tenant exists now.
    before = written(dest)
    res = run_cli("tenant", "import", str(out), "--database-url", dest)
    assert res.returncode == 2
    assert f"tenant {a.id} exists in the destination already (slug '{a.slug}')" in res.stderr
    assert written(dest) == before


def rewrite(directory: Path, name: str, change: Callable[[bytes], bytes]) -> None:
    """Change a table's file and make the manifest agree with it (sha256 and rows)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    entry = next(t for t in manifest["tables"] if t["name"] == name)
    data = change((directory / entry["file"]).read_bytes())
    (directory / entry["file"]).write_bytes(data)
    entry["sha256"] = hashlib.sha256(data).hexdigest()
    entry["rows"] = data.count(b"\n")
    (directory / "manifest.json").write_text(json.dumps(manifest))


def edit_manifest(directory: Path, change: Callable[[dict[str, Any]], None]) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    change(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_import_refuses_what_does_not_match_and_writes_nothing(
    source: tuple[str, Seeded, Seeded],
    exported: tuple[Path, dict[str, Any], str],
    pgtenancy_make_database: Callable[[], str],
    tmp_path: Path,
) -> None:
    url, a, b = source
    copy_of = tmp_path / "copy"

    def fresh() -> None:
        shutil.rmtree(copy_of, ignore_errors=True)
        shutil.copytree(exported[0], copy_of)

    fresh()
    dest = pgtenancy_make_database()
    platform_ready(dest)
    before = written(dest)

    def refused(directory: Path, *expected: str, target: str = dest) -> None:
        res = run_cli("tenant", "import", str(directory), "--database-url", target)
        assert res.returncode == 2, (res.stdout, res.stderr)
        assert res.stdout == ""
        assert res.stderr.startswith("pgtenancy: tenant import: ")
        for text in expected:
            assert text in res.stderr, res.stderr
        assert "nothing was written" in res.stderr

    documents = copy_of / "app.documents.copy"
    # A changed byte.
    original = documents.read_bytes()
    documents.write_bytes(original.replace(b"doc ", b"DOC ", 1))
    refused(copy_of, "app.documents.copy (table app.documents) has sha256")
    documents.write_bytes(original)
    # A wrong count.
    edit_manifest(copy_of, lambda m: m["tables"][1].update(rows=m["tables"][1]["rows"] + 1))
    name = json.loads((copy_of / "manifest.json").read_text())["tables"][1]["file"]
    refused(copy_of, f"{name} (table ", "the manifest says")
    edit_manifest(copy_of, lambda m: m["tables"][1].update(rows=m["tables"][1]["rows"] - 1))
    # A missing file.
    memberships = (copy_of / "tenancy.memberships.copy").read_bytes()
    (copy_of / "tenancy.memberships.copy").unlink()
    refused(copy_of, "tenancy.memberships.copy (table tenancy.memberships) is missing")
    (copy_of / "tenancy.memberships.copy").write_bytes(memberships)
    # Another format, another version.
    edit_manifest(copy_of, lambda m: m.update(version=2))
    refused(copy_of, "version 2 is not one this pgtenancy reads (version 1)")
    edit_manifest(copy_of, lambda m: m.update(version=1))
    # A file name that leaves the directory.
    edit_manifest(copy_of, lambda m: m["tables"][1].update(file="../../etc/passwd.copy"))
    refused(copy_of, "names file '../../etc/passwd.copy', not a *.copy file of the export")
    fresh()
    # The tenant exists (its id), and its slug or key is another tenant's.
    refused(copy_of, f"tenant {a.id} exists in the destination already", target=url)
    edit_manifest(copy_of, lambda m: m["tenant"].update(slug=b.slug, key="7"))
    rewrite(copy_of, "tenancy.tenants", lambda d: d.replace(a.slug.encode(), b.slug.encode()))
    other = pgtenancy_make_database()
    execute_as(other, "tenancy_admin", [("select tenancy.create_tenant(%s, 'B')", (b.slug,))])
    refused(
        copy_of, f"slug '{b.slug}' of the exported tenant is taken in the destination", target=other
    )
    fresh()
    # A file holding a row of another tenant (its manifest entry made to agree): loaded, found
    # out, rolled back.
    rewrite(
        copy_of,
        "app.projects",
        lambda d: d.replace(str(a.id).encode(), str(b.id).encode(), 1),
    )
    refused(copy_of, "app.projects.copy holds 2 row(s) but 1 of them are rows of tenant")
    fresh()
    # A platform record the tenant's rows refer to is missing (the feature flag's default).
    bare = pgtenancy_make_database()
    bare_before = written(bare)
    refused(
        copy_of,
        "loading tenancy.feature_flags from tenancy.feature_flags.copy failed",
        'violates foreign key constraint "feature_flags_flag_fkey"',
        target=bare,
    )
    assert written(bare) == bare_before
    # A destination at another migration.
    with psycopg.connect(bare) as conn:
        conn.execute(
            "insert into tenancy_migrations._yoyo_migration (migration_hash, migration_id,"
            " applied_at_utc) values ('x', '0099_later', now())"
        )
    refused(
        copy_of,
        f"the export was made at pgtenancy migration {LAST_MIGRATION}, the destination is at "
        "0099_later: import into a database at the export's migration, then migrate it",
        target=bare,
    )
    assert written(bare) == bare_before
    assert written(dest) == before


# -- restore -------------------------------------------------------------------------------------

DOCS = "select id, project_id, title, body from app.documents where tenant_id = %s order by id"


def rows(url: str, query: str, params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(query, params).fetchall()]


def in_context(url: str, tenant: uuid.UUID, statements: list[tuple[str, Any]]) -> None:
    execute_as(url, "tenancy_service", [("select tenancy.set_context(%s)", (tenant,)), *statements])


def test_restore_rebuilds_a_tenants_rows_as_they_were_then_in_place(
    source: tuple[str, Seeded, Seeded],
) -> None:
    url = source[0]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set role tenancy_admin")
        c = conn.execute(
            "select tenancy.create_tenant('restore-c', 'C', p_key => '77')"
        ).fetchone()[0]  # type: ignore[index]
        d = conn.execute("select tenancy.create_tenant('restore-d', 'D')").fetchone()[0]  # type: ignore[index]
    for tenant in (c, d):
        in_context(
            url,
            tenant,
            [
                ("insert into app.projects (name) values ('p')", None),
                (
                    "insert into app.documents (project_id, title, internal_note)"
                    " select id, t, 'note ' || t from app.projects,"
                    " unnest(array['one', 'two', 'three']) as t",
                    None,
                ),
            ],
        )
    in_context(url, c, [("insert into app.ledger (amount, memo) values (1, 'a'), (2, 'b')", None)])
    then_docs = rows(url, DOCS, (c,))
    then_ledger = rows(
        url, "select id, amount, memo from app.ledger where account_key = 77 order by id", None
    )
    time.sleep(0.05)
    with psycopg.connect(url) as conn:
        at = conn.execute("select clock_timestamp()").fetchone()[0]  # type: ignore[index]
    time.sleep(0.05)
    one, two, _ = (r[0] for r in then_docs)
    in_context(
        url,
        c,
        [
            (
                "update app.documents set title = 'ONE', internal_note = 'kept' where id = %s",
                (one,),
            ),
            ("delete from app.documents where id = %s", (two,)),
            (
                "insert into app.documents (project_id, title) select id, 'four' from app.projects",
                None,
            ),
            ("update app.ledger set amount = 99 where memo = 'a'", None),
            ("delete from app.ledger where memo = 'b'", None),
        ],
    )
    in_context(url, d, [("update app.documents set title = 'D changed' where title = 'one'", None)])
    # A row the trail never saw (as if written before the table was audited).
    with psycopg.connect(url) as conn:
        conn.execute("alter table app.documents disable trigger tenancy_audit_insert")
        conn.execute(
            "insert into app.documents (tenant_id, project_id, title)"
            " select tenant_id, id, 'untracked' from app.projects where tenant_id = %s",
            (c,),
        )
        conn.execute("alter table app.documents enable trigger tenancy_audit_insert")
    d_now = rows(url, DOCS, (d,))

    res = run_cli(
        "tenant",
        "restore",
        "restore-c",
        "--at",
        at.isoformat(),
        "--table",
        "app.documents",
        "--database-url",
        url,
    )
    assert res.returncode == 0, res.stderr
    side = f"tenancy_restore.app__documents__restore_c__{at.astimezone(UTC):%Y%m%d_%H%M%S_%f}"
    assert f"side table {side}: the rows of tenant restore-c ({c}) in app.documents" in res.stdout
    assert "rows now 4, rows then 3: in place this would insert 1, update 1, delete 2" in res.stdout
    assert "columns not in the audit trail (audit_exclude): internal_note" in res.stdout
    assert "warning: 1 row(s) of the tenant in app.documents have no row in the audit trail" in (
        res.stdout
    )
    schema, table = side.split(".")
    side_sql = f'select id, project_id, title, body from {schema}."{table}" order by id'
    assert rows(url, side_sql, None) == then_docs
    assert rows(url, f'select distinct internal_note, tenant_id from {schema}."{table}"', None) == [
        (None, c)
    ]
    with psycopg.connect(url) as conn:
        for role in ("tenancy_app", "tenancy_service", "tenancy_admin", "tenancy_auditor"):
            assert conn.execute(
                "select has_table_privilege(%s, %s, 'select')", (role, f'{schema}."{table}"')
            ).fetchone() == (False,), role

    # In place: refused without --yes when there is no terminal to ask on; declined: unchanged.
    res = run_cli(
        "tenant",
        "restore",
        "restore-c",
        "--at",
        at.isoformat(),
        "--table",
        "app.documents",
        "--in-place",
        "--database-url",
        url,
    )
    assert res.returncode == 2
    assert "pass --yes to confirm in a script" in res.stderr
    args = SimpleNamespace(
        tenant="restore-c", at=at.isoformat(), table="app.documents", in_place=True, yes=False
    )
    assert tenant_export.run_restore(args, url, confirm=lambda question: False) == 1
    assert rows(url, DOCS, (c,)) != then_docs
    res = run_cli(
        "tenant",
        "restore",
        str(c),
        "--at",
        at.isoformat(),
        "--table",
        "app.documents",
        "--in-place",
        "--yes",
        "--database-url",
        url,
    )
    assert res.returncode == 0, res.stderr
    assert "(built by an earlier restore to that time: drop it to rebuild)" in res.stdout
    assert "inserted 1, updated 1, deleted 2" in res.stdout
    assert rows(url, DOCS, (c,)) == then_docs
    notes = dict(
        rows(url, "select id, internal_note from app.documents where tenant_id = %s", (c,))
    )
    assert notes[one] == "kept" and notes[two] is None  # excluded: kept, or the default
    assert rows(url, DOCS, (d,)) == d_now  # the other tenant: untouched
    with psycopg.connect(url) as conn:
        audited = conn.execute(
            "select action, actor_role from tenancy.audit_logs where tenant_id = %s"
            ' and entity_type = \'"app"."documents"\' order by id desc limit 3',
            (c,),
        ).fetchall()
    assert sorted(audited) == [("DELETE", "service"), ("INSERT", "service"), ("UPDATE", "service")]

    # A table keyed by the tenant key (bigint account_key).
    res = run_cli(
        "tenant",
        "restore",
        "restore-c",
        "--at",
        at.isoformat(),
        "--table",
        "app.ledger",
        "--in-place",
        "--yes",
        "--database-url",
        url,
    )
    assert res.returncode == 0, res.stderr
    assert "rows now 1, rows then 2: in place this would insert 1, update 1, delete 0" in res.stdout
    assert (
        rows(
            url, "select id, amount, memo from app.ledger where account_key = 77 order by id", None
        )
        == then_ledger
    )

    # The other tenant, restored to the same time by a tenancy_service login (no superuser, no
    # BYPASSRLS: its writes run under row level security in the service context): a side table
    # of its own, its rows as they were, the first tenant's left as they are.
    login = f"t_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create role {} login in role tenancy_service").format(sql.Identifier(login))
        )
        conn.execute(
            sql.SQL("grant create on database {} to {}").format(
                sql.Identifier(testing.dbname_of(url)), sql.Identifier(login)
            )
        )
    as_service = testing.as_login(url, login)
    try:
        args = ["--at", at.isoformat(), "--table", "app.documents", "--in-place", "--yes"]
        res = run_cli("tenant", "restore", "restore-d", *args, "--database-url", as_service)
        assert res.returncode == 2
        assert "may not create tables in schema tenancy_restore: grant usage, create on" in (
            res.stderr
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("grant usage, create on schema tenancy_restore to {}").format(
                    sql.Identifier(login)
                )
            )
        res = run_cli(
            "tenant",
            "restore",
            "restore-d",
            "--at",
            at.isoformat(),
            "--table",
            "app.documents",
            "--in-place",
            "--yes",
            "--database-url",
            testing.as_login(url, login),
        )
        assert res.returncode == 0, res.stderr
        assert "side table tenancy_restore.app__documents__restore_d__" in res.stdout
        assert (
            "rows now 3, rows then 3: in place this would insert 0, update 1, delete 0"
            in res.stdout
        )
        assert [r[2] for r in rows(url, DOCS, (d,))] == ["one", "two", "three"]
        assert rows(url, DOCS, (c,)) == then_docs
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(login)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(login)))


def test_load_order_puts_parents_first_and_survives_a_cycle() -> None:
    refs = {"a": {"b"}, "b": {"c"}, "c": set(), "x": {"y"}, "y": {"x"}}
    assert tenant_export.parents_first(["a", "b", "c"], refs) == ["c", "b", "a"]
    order = tenant_export.parents_first(["x", "a", "y", "b", "c"], refs)
    assert order.index("c") < order.index("b") < order.index("a")
    assert sorted(order) == ["a", "b", "c", "x", "y"]


def test_side_table_names_fit_an_identifier() -> None:
    at = datetime(2026, 12, 6, 10, 15, tzinfo=UTC)
    assert tenant_export.side_table_name("app.documents", "acme-corp", at) == (
        "app__documents__acme_corp__20261206_101500"
    )
    long = tenant_export.side_table_name("app." + "t" * 60, "s" * 63, at.replace(microsecond=7))
    assert len(long.encode()) <= 63 and long.endswith("__20261206_101500_000007")
    other = tenant_export.side_table_name(
        "app." + "t" * 60, "s" * 62 + "x", at.replace(microsecond=7)
    )
    assert other != long


@pytest.mark.parametrize(
    ("table", "at", "expected"),
    [
        ("tenancy.usage_counters", "2020-01-01", "tenancy.usage_counters is not audited"),
        ("app.nothing", "2020-01-01", "table app.nothing does not exist"),
        ("app.documents", "yesterday-ish", "--at 'yesterday-ish' is not a time PostgreSQL reads"),
        ("app.documents", "2999-01-01", "--at '2999-01-01' is in the future"),
    ],
)
def test_restore_refuses_with_a_message(
    source: tuple[str, Seeded, Seeded], table: str, at: str, expected: str
) -> None:
    url, a, _ = source
    res = run_cli("tenant", "restore", a.slug, "--at", at, "--table", table, "--database-url", url)
    assert res.returncode == 2
    assert res.stderr.startswith("pgtenancy: tenant restore: "), res.stderr
    assert expected in res.stderr, res.stderr
    assert "nothing was done" in res.stderr


@pytest.mark.parametrize("action", ["export", "import", "restore"])
def test_each_tenant_action_has_help(action: str) -> None:
    res = run_cli("tenant", action, "--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: pgtenancy tenant {action}")


def test_tenant_actions_without_a_database_refuse(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    res = run_cli("tenant", "export", "acme", "--out", str(tmp_path / "x"), env=env)
    assert res.returncode == 2
    assert res.stderr.startswith("pgtenancy: tenant export: which database?")
    assert not (tmp_path / "x").exists()
