"""``pgtenancy doctor``, lint 0022: columns of tenant tables that look personal (by name or by a
sample of their values) but are not classified, on the example application: WARNs naming table,
column and kind (never a value), gone once the spec's pii classifies them and the generated file
is applied; with ``--spec``, the spec decides for the tables it lists."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import run_cli
from psycopg import sql

from pgtenancy import testing
from pgtenancy.migrate import migrate

APP = testing.repo_root() / "examples" / "app"
SPEC = APP / "tenancy.toml"

# A tenant table of leads: email, phone and last_ip say what they hold by their names; contact
# holds email addresses under a neutral name; notes holds words. Secured and indexed as the
# generated files would, and commented, so that no other lint has anything to say about it.
LEADS = """
create table app.leads (
    tenant_id uuid not null,
    id bigint generated always as identity,
    email text,
    phone text,
    last_ip inet,
    contact text,
    notes text,
    constraint leads_pkey primary key (tenant_id, id)
);
comment on table app.leads is 'Leads of the doctor test.';
grant select, insert, update, delete on app.leads to tenancy_app;
alter table app.leads enable row level security, force row level security;
create policy leads_tenant on app.leads to tenancy_app
using (tenant_id = (select tenancy.context_tenant_id(null)));
"""
LEADS_SPEC = """
[tables."app.leads"]
read = ["owner", "admin", "member", "viewer"]
write = ["owner", "admin", "member"]
subject = "id"
pii = ["email", "phone", "last_ip", "contact"]
erase = "delete"
"""
WORDS = ("harbour", "lantern", "meadow", "pebble", "quartz", "saffron")


@pytest.fixture(scope="module")
def app_db(base_url: str) -> Iterator[str]:
    """pgtenancy, the example application, its generated policies, tenants and rows (as ``make
    demo`` builds it), plus app.leads with 12 rows of two tenants; dropped afterwards."""
    name = f"pgtenancy_pii_{uuid.uuid4().hex[:12]}"
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
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(LEADS)
            # Rows of two seeded tenants (the superuser writes them: no context needed).
            conn.execute(
                "insert into app.leads (tenant_id, email, phone, last_ip, contact, notes) "
                "select (select array_agg(id order by slug) from tenancy.tenants)[g %% 2 + 1], "
                "'lead' || g || '@example.net', "
                "'+44 20 7946 ' || (1000 + g), ('192.0.2.' || g)::inet, "
                "'reach' || g || '@example.org', (%s::text[])[g %% 6 + 1] || ' ' || md5(g::text) "
                "from generate_series(1, 12) as g",
                (list(WORDS),),
            )
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(name)))


def values_of(url: str) -> list[str]:
    """Every value of app.leads as text: none may appear in doctor's output."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select email, phone, host(last_ip), contact, notes from app.leads"
        ).fetchall()
    return [str(v) for row in rows for v in row]


def findings(url: str, *args: str) -> list[dict[str, str]]:
    res = run_cli("doctor", "--database-url", url, "--format", "json", "--level", "info", *args)
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr, res.stderr
    return list(json.loads(res.stdout))


def test_unclassified_personal_columns_are_warnings_that_name_no_value(app_db: str) -> None:
    """The leads' email, phone and last_ip (by name) and contact (by contents) are WARNs 0022,
    nothing else is found (not notes, not the example app's classified customers and orders, not
    projects.name); no value of the table appears in the output, in text or JSON. WARNs set
    the exit code as any WARN does: 1 at the default --level warn, 0 at --level error."""
    found = findings(app_db)
    assert [(f["code"], f["level"], f["object"]) for f in found] == [
        ("0022", "WARN", "app.leads.contact"),
        ("0022", "WARN", "app.leads.email"),
        ("0022", "WARN", "app.leads.last_ip"),
        ("0022", "WARN", "app.leads.phone"),
    ], found
    details = {f["object"]: f["detail"] for f in found}
    assert (
        "holds email addresses (by its contents: 12 of the 12 non-empty values sampled)"
        in details["app.leads.contact"]
    )
    assert "holds IP addresses (by its name)" in details["app.leads.last_ip"]
    assert "holds phone numbers (by its name)" in details["app.leads.phone"]
    assert all(f["remediation"].endswith("if it holds no personal data") for f in found)

    text = run_cli("doctor", "--database-url", app_db)
    json_out = run_cli("doctor", "--database-url", app_db, "--format", "json")
    for out in (text.stdout, json_out.stdout):
        leaked = [v for v in values_of(app_db) if v in out]
        assert leaked == [] and "@" not in out, leaked
    assert "doctor: 4 problems (4 WARN)" in text.stdout, text.stdout
    assert "(docs/lints/0022_personal_data_not_classified.md)" in text.stdout
    assert (text.returncode, json_out.returncode) == (1, 1)
    assert run_cli("doctor", "--database-url", app_db, "--level", "error").returncode == 0


def test_the_fix_classifies_them_then_nothing_is_found(app_db: str, tmp_path: Path) -> None:
    """The remedy, as a DBA follows it: the leads in the spec with its personal columns in pii,
    pgtenancy generate, pgtenancy apply its file (which registers them in
    tenancy.personal_data); doctor then finds nothing, with or without the spec. Finally,
    forgetting the table's personal data brings the WARNs back (undone for the other tests)."""
    spec = tmp_path / "tenancy.toml"
    spec.write_text(SPEC.read_text() + LEADS_SPEC)
    out = tmp_path / "policies"
    gen = run_cli("generate", "--spec", str(spec), "--out", str(out), "--database-url", app_db)
    assert gen.returncode == 0, gen.stderr
    try:
        with psycopg.connect(app_db, autocommit=True) as conn:
            conn.execute("drop policy leads_tenant on app.leads")
        applied = run_cli("apply", str(out / "app.leads.sql"), "--database-url", app_db)
        assert applied.returncode == 0, applied.stderr
        res = run_cli("doctor", "--database-url", app_db, "--level", "info")
        assert (res.returncode, res.stdout.strip()) == (0, "doctor: no problem found"), res.stdout
        res = run_cli("doctor", "--database-url", app_db, "--spec", str(spec), "--level", "info")
        assert (res.returncode, res.stdout.strip()) == (0, "doctor: no problem found"), res.stdout
    finally:
        # The generated policies stay (the other tests filter on 0022 or find none of them).
        with psycopg.connect(app_db, autocommit=True) as conn:
            conn.execute("select tenancy.forget_personal_data('app.leads')")
    assert [f["object"] for f in findings(app_db)] == [
        "app.leads.contact",
        "app.leads.email",
        "app.leads.last_ip",
        "app.leads.phone",
    ]


def test_with_a_spec_the_spec_decides_for_the_tables_it_lists(app_db: str, tmp_path: Path) -> None:
    """--spec: a column the spec's pii (or subject) classifies is not reported before its file
    is applied (the registry does not know it yet); a column the registry classifies but the
    spec no longer does is (the next apply forgets it); a table the spec does not list is judged
    by the registry. The finding names the spec as its source and in its fix."""
    spec = tmp_path / "tenancy.toml"
    text = SPEC.read_text()
    spec.write_text(text + LEADS_SPEC)
    found = [f for f in findings(app_db, "--spec", str(spec)) if f["code"] == "0022"]
    assert found == []

    dropped = text.replace('pii = ["email", "full_name", "phone"]', 'pii = ["email", "full_name"]')
    assert dropped != text
    spec.write_text(dropped + LEADS_SPEC.replace('"phone", ', ""))
    found = [f for f in findings(app_db, "--spec", str(spec)) if f["code"] == "0022"]
    assert [f["object"] for f in found] == ["app.customers.phone", "app.leads.phone"], found
    assert f"but {spec} does not classify it" in found[0]["detail"]
    assert found[0]["remediation"].startswith(
        f'add "phone" to pii of [tables."app.customers"] in {spec}, then pgtenancy generate'
    )

    # app.leads not listed: the registry (which does not classify its columns) decides.
    spec.write_text(text)
    found = [f for f in findings(app_db, "--spec", str(spec)) if f["code"] == "0022"]
    assert [f["object"] for f in found] == [
        "app.leads.contact",
        "app.leads.email",
        "app.leads.last_ip",
        "app.leads.phone",
    ]
    assert "but tenancy.personal_data does not classify it" in found[0]["detail"]


def test_a_large_table_is_sampled_quickly(app_db: str) -> None:
    """200,000 rows (over 1,000 pages): doctor samples at most 100 rows of about 32 pages, so
    its run takes well under a second more than on the small table, and it still finds the
    email addresses in a neutrally named column."""
    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute(LEADS.replace("app.leads", "app.leads_big").replace("leads_pkey", "big_pkey"))
        conn.execute(
            "insert into app.leads_big (tenant_id, contact) select (select min(id::text)::uuid "
            "from tenancy.tenants), 'buyer' || g || '@example.com' from generate_series(1, 200000) "
            "as g"
        )
        conn.execute("analyze app.leads_big")
    try:
        started = time.monotonic()
        found = findings(app_db)
        elapsed = time.monotonic() - started
        assert "app.leads_big.contact" in {f["object"] for f in found}
        with psycopg.connect(app_db, autocommit=True) as conn:
            conn.execute("set search_path = pg_catalog")
            started = time.monotonic()
            conn.execute("select * from tenancy.lint_0022_personal_data_not_classified").fetchall()
            lint = time.monotonic() - started
        assert lint < 0.5, f"lint 0022 took {lint:.3f} s (doctor: {elapsed:.3f} s)"
    finally:
        with psycopg.connect(app_db, autocommit=True) as conn:
            conn.execute("drop table app.leads_big")
