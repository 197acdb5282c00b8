"""The tenant column of each table (``tenant_column``) on a real database, for every type.

For a column of each allowed type (uuid under another name, bigint, integer, text, a domain over
a domain over bigint), ``pgtenancy generate`` reads the catalog, its policy file applies, and its
generated pgTAP test passes: the isolation checks on keyed fixture tenants. Changing a table's
tenant column and applying again leaves the guards on the new column only. The fixture table keyed
by a bigint (app.ledger) works in a session whose temporary objects shadow every name. The
tutorial schema keyed by company_id bigint is isolated by adopt + generate + apply, unedited.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import Roles, one, run_cli
from psycopg import sql
from test_adopt import TUTORIAL, adopt, execute, psql, rows, write_spec
from test_generator import apply_sql, generate_for, in_tmp, pg_prove, tap_summary
from test_hostile_session import hostile_login, open_hostile, report

from pgtenancy import tenant_transaction, testing

__all__ = ["hostile_login", "in_tmp"]  # fixtures, used by name

#: (table, its tenant column, the column's type as written in the DDL)
TABLES = [
    ("org_notes", "org_id", "uuid"),
    ("campaigns", "company_id", "bigint"),
    ("shops", "shop_id", "integer"),
    ("labels", "tenant_id", "text"),
    ("domain_keyed", "company_id", "{s}.company_key"),
]


@pytest.fixture(scope="module")
def schema(database_url: str) -> Iterator[str]:
    name = f"col_{uuid.uuid4().hex[:10]}"
    ddl = [
        f"create schema {name}",
        f"grant usage on schema {name} to tenancy_app",
        f"create domain {name}.company_ref as bigint check (value > 0)",
        f"create domain {name}.company_key as {name}.company_ref",
    ]
    for table, column, kind in TABLES:
        ddl.append(
            f"create table {name}.{table} ({column} {kind.format(s=name)} not null, "
            f"id bigint generated always as identity, label text, primary key ({column}, id))"
        )
    # Two candidate tenant columns: the spec says which one is the tenant column.
    ddl.append(
        f"create table {name}.two_columns (tenant_id uuid not null, company_id bigint not null, "
        f"id bigint generated always as identity, primary key (tenant_id, company_id, id))"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in ddl:
            conn.execute(statement.encode())
    try:
        yield name
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(name)))


@pytest.mark.parametrize(("table", "column", "kind"), TABLES, ids=[t[0] for t in TABLES])
def test_each_type_is_generated_applied_and_its_isolation_test_passes(
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    schema: str,
    in_tmp: Path,
    table: str,
    column: str,
    kind: str,
) -> None:
    target = f"{schema}.{table}"
    spec = f'[tables."{target}"]\ntenant_column = "{column}"\nsample = {{ label = "\'x\'" }}\n'
    out, tests = generate_for(capsys, database_url, in_tmp, spec)
    assert capsys.readouterr().err == ""  # no key layout warning
    apply_sql(database_url, (out / f"{target}.sql").read_text())
    proved = pg_prove(database_url, tests / f"{target}.sql")
    assert proved.returncode == 0, tap_summary(proved)
    assert f'"{schema}"."{table}" defaults to tenancy.' in proved.stdout


#: The guard triggers of a table: name, the columns of UPDATE OF, the arguments.
TRIGGERS = """
select t.tgname::text,
       array(select a.attname::text from pg_attribute as a
             where a.attrelid = t.tgrelid and a.attnum = any(t.tgattr::int2[]) order by a.attnum),
       encode(t.tgargs, 'escape')
from pg_trigger as t
where t.tgrelid = %s::regclass and not t.tgisinternal
order by t.tgname
"""


def test_changing_the_tenant_column_replaces_the_guards(
    capsys: pytest.CaptureFixture[str], database_url: str, schema: str, in_tmp: Path
) -> None:
    """The triggers are named the same whatever the column: applying the file generated for
    another column replaces them, and nothing of the old column's guards is left."""
    target = f"{schema}.two_columns"
    guards = []
    for column, other in (("tenant_id", "company_id"), ("company_id", "tenant_id")):
        # The new tenant column leads the primary key (the policy file checks it).
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                f"alter table {target} drop constraint two_columns_pkey, "
                f"add constraint two_columns_pkey primary key ({column}, {other}, id)".encode()
            )
        spec = f'[tables."{target}"]\ntenant_column = "{column}"\n'
        out, _ = generate_for(capsys, database_url, in_tmp, spec)
        apply_sql(database_url, (out / f"{target}.sql").read_text())
        with psycopg.connect(database_url) as conn:
            guards.append(conn.execute(TRIGGERS, (target,)).fetchall())
            policy = conn.execute(
                "select pg_get_expr(polqual, polrelid) from pg_policy "
                "where polrelid = %s::regclass and polcmd = 'r'",
                (target,),
            ).fetchone()
        assert policy is not None and policy[0].startswith(f"({column} = ")

    def audit(column: str, kind: str, key: str) -> list[tuple[str, list[str], str]]:
        # The audit triggers carry the tenant column, its type and the key without it.
        entity = f'"{schema}"."two_columns"'
        args = f'{column}\\000{kind}\\000{{"{key}","id"}}\\000{{}}\\000{entity}\\000'
        return [
            ("tenancy_audit_delete", [], args),
            ("tenancy_audit_insert", [], args),
            ("tenancy_audit_truncate", [], ""),
            ("tenancy_audit_update", [], args),
        ]

    assert guards == [
        [
            *audit("tenant_id", "uuid", "company_id"),
            ("tenancy_require_context", [], "tenant_id\\000uuid\\000"),
            ("tenancy_tenant_id_immutable", ["tenant_id"], "tenant_id\\000"),
            ("tenancy_tenant_id_immutable_after", [], "tenant_id\\000"),
        ],
        [
            *audit("company_id", "bigint", "tenant_id"),
            ("tenancy_require_context", [], "company_id\\000bigint\\000"),
            ("tenancy_tenant_id_immutable", ["company_id"], "company_id\\000"),
            ("tenancy_tenant_id_immutable_after", [], "company_id\\000"),
        ],
    ]


def test_key_column_in_a_hostile_session(roles: Roles, hostile_login: Any) -> None:
    """tenant_key_int8 and the trigger functions, on the policies' path, resolve no name through
    the search path: with every type and relation name shadowed in pg_temp, a service login
    writes and reads app.ledger by key, and the TN006 and TN009 refusals still come, while no
    planted object is ever used."""
    key_a, key_b = (str(random.randrange(10**9, 2 * 10**9)) for _ in range(2))
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        ids = [
            one_value(
                conn,
                "select tenancy.create_tenant(%s, 'Keyed', null, null, %s)",
                (f"keyed-{uuid.uuid4().hex[:10]}", key),
            )
            for key in (key_a, key_b, None)
        ]
    a, b, keyless = ids
    session = open_hostile(hostile_login("tenancy_service"))
    conn = session.conn
    try:
        with conn.transaction():
            conn.execute("select tenancy.set_context(%s)", (b,))
            conn.execute("insert into app.ledger (amount, memo) values (2, 'hostile b')")
        with conn.transaction():
            conn.execute("select tenancy.set_context(%s)", (a,))
            conn.execute("insert into app.ledger (amount, memo) values (1, 'hostile a')")
            rows = conn.execute(
                "select account_key::pg_catalog.text, memo from app.ledger"
            ).fetchall()
            assert rows == [(key_a, "hostile a")]
            with pytest.raises(psycopg.Error) as info, conn.transaction():
                conn.execute("update app.ledger set account_key = %s", (int(key_b),))
            assert info.value.sqlstate == "TN006"
            with pytest.raises(psycopg.Error) as info, conn.transaction():
                conn.execute(
                    "insert into app.ledger (account_key, amount) values (%s, 3)", (int(key_b),)
                )
            assert info.value.sqlstate == "42501"
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute("select tenancy.set_context(%s)", (keyless,))
            conn.execute("insert into app.ledger (amount) values (4)")
        assert info.value.sqlstate == "TN009"
        recorded = session.recorded()
        assert recorded == [], report(recorded)
    finally:
        conn.close()


def one_value(conn: psycopg.Connection[Any], query: str, params: tuple[object, ...]) -> Any:
    row = conn.execute(query.encode(), params).fetchone()
    assert row is not None
    return row[0]


#: The tutorial's spec (tests/py/test_adopt.py) with the rows the generated tests insert: each
#: table's parents come first (the company row of a fixture tenant has its key as id).
TUTORIAL_SPEC = """
[tables."public.companies"]
tenant_column = "id"
[tables."public.campaigns"]
tenant_column = "company_id"
sample = { name = "'sample campaign'" }
fixtures = ["insert into public.companies (name) values ('fixture company')"]
[tables."public.ads"]
tenant_column = "company_id"
sample = { name = "'sample ad'", campaign_id = "(select min(c.id) from public.campaigns as c)" }
fixtures = [
    "insert into public.companies (name) values ('fixture company')",
    "insert into public.campaigns (name) values ('fixture campaign')",
]
[tables."public.clicks"]
tenant_column = "company_id"
sample = { ad_id = "(select min(a.id) from public.ads as a)" }
fixtures = [
    "insert into public.companies (name) values ('fixture company')",
    "insert into public.campaigns (name) values ('fixture campaign')",
    "insert into public.ads (name, campaign_id) select 'fixture ad', min(id) from public.campaigns",
]
[tables."public.impressions"]
tenant_column = "company_id"
sample = { ad_id = "(select min(a.id) from public.ads as a)" }
fixtures = [
    "insert into public.companies (name) values ('fixture company')",
    "insert into public.campaigns (name) values ('fixture campaign')",
    "insert into public.ads (name, campaign_id) select 'fixture ad', min(id) from public.campaigns",
]
"""


def test_tutorial_schema_adopted_generated_applied_isolated_and_doctor_clean(
    pgtenancy_make_database: Any, tmp_path: Path
) -> None:
    """The tutorial schema (companies, campaigns, ads, clicks, impressions keyed by company_id
    bigint, the companies by their id): adopt + generate + apply, no file edited; the generated
    isolation tests pass (but the companies', whose one row per tenant leaves its writers no
    second row to insert), each company sees and writes its own rows only, doctor finds nothing
    but the visitors' IP addresses (0022 WARNs: personal data the tutorial does not classify)."""
    db = pgtenancy_make_database()
    execute(db, TUTORIAL)
    spec = write_spec(tmp_path, TUTORIAL_SPEC)
    companies = "select id, name from public.companies"
    res = adopt(db, spec, tmp_path / "adopt.sql", "--tenant-map", companies)
    assert res.returncode == 0, res.stderr
    run = psql(db, tmp_path / "adopt.sql")
    assert run.returncode == 0, run.stderr
    policies, tests = tmp_path / "policies", tmp_path / "tests"
    gen = run_cli(
        "generate", "--spec", str(spec), "--out", str(policies), "--tests", str(tests),
        "--database-url", db,
    )  # fmt: skip
    assert gen.returncode == 0 and gen.stderr == "", gen.stderr
    applied = run_cli("apply", str(policies), "--database-url", db)
    assert applied.returncode == 0, applied.stderr
    # What doctor still asks for is what the tutorial never had: the companies' owners (members
    # come from the application's users: here one each), comments on the tables, and the
    # visitors' IP addresses classified as personal data.
    doctor = run_cli("doctor", "--database-url", db, "--format", "json")
    assert doctor.returncode == 1, doctor.stderr
    found = {(f["code"], f["object"]) for f in json.loads(doctor.stdout)}
    tenants = rows(db, "select id::text, key from tenancy.tenants order by key")
    personal = {("0022", "public.clicks.user_ip"), ("0022", "public.impressions.user_ip")}
    assert found == {("0017", t) for t, _ in tenants} | personal | {
        ("0018", f"public.{t}") for t in ("ads", "campaigns", "clicks", "companies", "impressions")
    }
    for tenant, key in tenants:
        execute(
            db,
            "begin; set local role tenancy_service; "
            f"select tenancy.set_context('{tenant}'); "
            f"select tenancy.add_member('auth0|owner-of-{key}', 'owner'); commit",
        )
    for table in ("ads", "campaigns", "clicks", "companies", "impressions"):
        execute(db, f"comment on table public.{table} is 'The tutorial''s {table}, per company.'")
    doctor = run_cli("doctor", "--database-url", db, "--format", "json", "--level", "info")
    assert {(f["code"], f["object"]) for f in json.loads(doctor.stdout)} == personal, (
        doctor.stdout + doctor.stderr
    )
    doctor = run_cli("doctor", "--database-url", db, "--level", "error")
    assert (doctor.returncode, doctor.stdout.count("WARN  0022")) == (0, 2), doctor.stdout
    for table in ("campaigns", "ads", "clicks", "impressions"):
        proved = pg_prove(db, tests / f"public.{table}.sql")
        assert proved.returncode == 0, tap_summary(proved)

    name = f"t_tutorial_{uuid.uuid4().hex[:8]}"
    execute(db, f"create role {name} login in role tenancy_service")
    service = testing.as_login(db, name)
    acme = rows(db, "select id from tenancy.tenants where key = '1'")[0][0]
    clicks = dict(rows(db, "select company_id, count(*) from public.clicks group by 1"))
    with psycopg.connect(service) as conn:
        with tenant_transaction(conn, acme):
            assert one(conn, "select count(*) from public.clicks") == clicks[1]
            assert one(conn, "select array_agg(distinct company_id) from public.ads") == [1]
            assert one(conn, "select array_agg(id) from public.companies") == [1]
            conn.execute("insert into public.campaigns (name) values ('new')")
            with pytest.raises(psycopg.Error) as info, conn.transaction():
                conn.execute("insert into public.campaigns (company_id, name) values (2, 'x')")
            assert info.value.sqlstate == "42501"
        with tenant_transaction(conn, acme):
            assert one(conn, "select company_id from public.campaigns where name = 'new'") == 1
    with psycopg.connect(service) as conn, conn.transaction():
        assert one(conn, "select count(*) from public.clicks") == 0
