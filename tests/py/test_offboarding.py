"""Offboarding a tenant, committed step by step, over a real driver as the real login roles.

A database of its own (a clone of the test template: the fixture tables, personal data
included), so that the transactions an offboarding waits for are only this module's. Tenants get
rows in every kind of tenant table (the fixture's application tables, the ledger keyed by the
tenant key, and pgtenancy's own: members, invitations, API keys, domains, settings, flags,
usage, outbox, audit); offboarding one leaves no row naming it anywhere but the kept tables (its
audit trail, security events, its tenants row and offboarding record), the other tenants' rows
untouched, and a certificate that verifies once sealed (and a tampered one that does not).
Steps are resumable after a killed connection or an interrupted procedure; each deletes at most
its batch; a transaction that held a context of the tenant from before its suspension is waited
for, and its late rows deleted. The pgTAP file tests/pgtap/45-offboarding.sql covers the
refusals and the order of the tables within one transaction.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, Roles, new_user_id, run_cli, token_for
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from pgtenancy import offboard, testing

#: Tables that keep rows naming an offboarded tenant, on purpose: its tenants row and
#: offboarding record, its security events, its audit trail (rows, partitions, seals).
KEPT = ("tenancy.tenants", "tenancy.security_events", "tenancy.tenant_offboardings")


def kept(table: str) -> bool:
    return table in KEPT or table.startswith("tenancy.audit_")


Conn = psycopg.Connection[Any]


@dataclass
class Db:
    """The module's database: its superuser URL and the session's logins on it."""

    superuser: str
    app: str
    service: str
    admin: str
    auditor: str


@pytest.fixture(scope="module")
def db(pgtenancy_make_database: Callable[[], str], roles: Roles) -> Iterator[Db]:
    url = pgtenancy_make_database()
    auditor = f"t_auditor_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"create role {auditor} login in role tenancy_auditor")
        conn.execute("set role tenancy_admin")
        conn.execute(
            "select tenancy.configure_jwt(%s, %s, %s)", (JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE)
        )
        conn.execute("select tenancy.configure_auth(p_lockout_failures => 0)")
        conn.execute("select tenancy.configure_domains(array['offboard.test'])")
        conn.execute("select tenancy.configure_regions(array['eu'])")
        conn.execute("select tenancy.set_feature_default('offboarding.beta', 'false')")

    def login(session_url: str) -> str:
        return testing.as_login(url, str(conninfo_to_dict(session_url)["user"]))

    yield Db(
        url,
        login(roles.app),
        login(roles.service),
        login(roles.admin),
        testing.as_login(url, auditor),
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"drop owned by {auditor}")
        conn.execute(f"drop role {auditor}")


@dataclass
class Tenant:
    id: uuid.UUID
    slug: str
    key: str
    owner: str


SEED_AS_ADMIN = """
select tenancy.set_tenant_region(%(t)s::uuid, 'eu');
select tenancy.set_feature_flag(%(t)s::uuid, 'offboarding.beta', 'true');
select tenancy.configure_issuer(
    'https://idp-' || %(t)s || '.example.com', array['app'], p_tenant_id => %(t)s::uuid
);
"""

SEED_IN_CONTEXT = """
select tenancy.add_member('auth0|member-' || %(t)s, 'member');
select tenancy.create_api_key('key', 'member');
select tenancy.invite('someone@example.com', 'member');
select tenancy.add_custom_domain('shop-' || left(%(t)s, 8) || '.example.com');
select tenancy.set_branding('{"display_name": "Offboarding test"}');
select tenancy.configure_webhook('hook', 'https://hooks.example.com/' || %(t)s);
select tenancy.log_connector_event('crm', 'synced', '{}');
select tenancy.track_event('signed_up', 'user-1');
select tenancy.create_meter('api_calls');
select tenancy.create_tier('pro', 10, '{"api_calls": 1000}');
select tenancy.subscribe('customer-1', 'pro');
select tenancy.track_usage('api_calls', 'customer-1', 5);
select tenancy.log_audit('note.added', 'note', '1', null, '{"text": "hello"}');
insert into app.projects (name) select 'project ' || g from generate_series(1, %(n)s) as g;
insert into app.documents (project_id, title) select p.id, 'document' from app.projects as p;
insert into app.customers (email, full_name)
select 'c' || g || '@example.com', 'Customer ' || g from generate_series(1, %(n)s) as g;
insert into app.orders (customer_id, shipping_address)
select c.id, 'street' from app.customers as c;
insert into app.visits (customer_id, ip_address) select c.id, '192.0.2.1' from app.customers as c;
insert into app.ledger (amount) select g from generate_series(1, %(n)s) as g;
"""


def run_script(conn: Conn, script: str, params: dict[str, Any]) -> None:
    """The statements of a seed script (one per ';' at the end of a line), one by one."""
    for statement in (s.strip() for s in script.split(";\n")):
        if statement:
            conn.execute(statement, params if "%(" in statement else None)


def make_tenant(db: Db, rows: int = 4) -> Tenant:
    """An active tenant with an owner, a key and rows in every kind of tenant table."""
    slug = f"off-{uuid.uuid4().hex[:10]}"
    key = str(900_000_000 + uuid.uuid4().int % 90_000_000)
    owner = new_user_id()
    with psycopg.connect(db.admin, autocommit=True) as conn:
        row = conn.execute(
            "select tenancy.create_tenant(%s, %s, %s, p_key => %s)", (slug, "Offboard", owner, key)
        ).fetchone()
        assert row is not None
        tenant = Tenant(row[0], slug, key, owner)
        run_script(conn, SEED_AS_ADMIN, {"t": str(tenant.id)})
    with psycopg.connect(db.service) as conn, conn.transaction():
        conn.execute("select tenancy.set_context(%s)", (tenant.id,))
        run_script(conn, SEED_IN_CONTEXT, {"t": str(tenant.id), "n": rows})
    return tenant


def naming_rows(db: Db, tenant: Tenant) -> dict[tuple[str, str], int]:
    """Per (table, column), the rows that name the tenant, as the superuser reads them: a uuid
    column holding its id, a text column holding it as text, a tenant column holding its key.
    Tables, not partitioned roots (their partitions are counted)."""
    found: dict[tuple[str, str], int] = {}
    with psycopg.connect(db.superuser, autocommit=True) as conn:
        columns = conn.execute(
            "select c.oid::regclass::text, a.attname, a.atttypid = 'uuid'::regtype,"
            " tt.relid is not null"
            " from pg_class as c"
            " join pg_namespace as s on s.oid = c.relnamespace"
            " join pg_attribute as a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped"
            " left join tenancy.lint_tenant_tables as tt"
            "   on tt.relid in (c.oid, (select i.inhparent from pg_inherits as i"
            "                           where i.inhrelid = c.oid))"
            "   and tt.tenant_column = a.attname"
            " where c.relkind = 'r' and s.nspname !~ '^pg_' and s.nspname <> 'information_schema'"
            "   and (a.atttypid in ('uuid'::regtype, 'text'::regtype) or tt.relid is not null)"
        ).fetchall()
        for table, column, is_uuid, tenant_column in columns:
            value = tenant.key if tenant_column and not is_uuid else str(tenant.id)
            row = conn.execute(
                f'select count(*) from {table} where "{column}"::text = %s', (value,)
            ).fetchone()
            if row and row[0]:
                found[(table, column)] = int(row[0])
    return found


def rows_left(db: Db, tenant: Tenant) -> int:
    """The tenant's rows in its tenant tables (their roots), read by the superuser."""
    total = 0
    with psycopg.connect(db.superuser, autocommit=True) as conn:
        tables = conn.execute(
            "select table_name, predicate,"
            " tenancy.offboarding_value(%s, %s, value_kind) from tenancy.offboarding_tables()",
            (tenant.id, tenant.key),
        ).fetchall()
        for table, predicate, value in tables:
            if value is None:
                continue
            where = str(predicate).replace("$1", "%s")  # the predicate's parameter, for psycopg
            row = conn.execute(
                f"select count(*) from {table} as t where {where}", (value,)
            ).fetchone()
            total += int(row[0]) if row else 0
    return total


def status_of(db: Db, tenant: Tenant) -> str:
    with psycopg.connect(db.superuser, autocommit=True) as conn:
        row = conn.execute(
            "select status from tenancy.tenants where id = %s", (tenant.id,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def finish(db: Db, tenant: Tenant, batch: int = 10000, timeout: float = 60.0) -> dict[str, Any]:
    """offboard_tenant until done, as the admin login, each step committed; fails after
    ``timeout`` seconds (a step waiting for an old transaction forever)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db.admin, autocommit=True) as conn:
        while True:
            result = offboard.step(conn, tenant.id, "contract ended", batch)
            if result.get("done"):
                return result
            assert time.monotonic() < deadline, f"offboarding never finished: {result}"
            if result.get("waiting_for"):
                time.sleep(0.1)


def refusal(url: str, query: str, *params: Any) -> tuple[str | None, str]:
    """SQLSTATE and message of the error ``query`` raises (it must raise)."""
    with psycopg.connect(url) as conn, pytest.raises(psycopg.Error) as caught:
        conn.execute(query, params)
    return caught.value.sqlstate, str(caught.value.diag.message_primary)


def seal(db: Db) -> None:
    with psycopg.connect(db.admin, autocommit=True) as conn:
        conn.execute("select tenancy.seal_audit()")


# -- end to end, through the command line ---------------------------------------------------------


def test_offboarding_deletes_every_row_of_the_tenant_and_proves_it(db: Db, tmp_path: Path) -> None:
    a, b = make_tenant(db, rows=6), make_tenant(db, rows=3)
    with psycopg.connect(db.superuser, autocommit=True) as conn:
        endpoints = [
            r[0]
            for r in conn.execute(
                "select id from tenancy.connector_endpoints where tenant_id = %s", (a.id,)
            )
        ]
    assert endpoints
    b_before = {k: n for k, n in naming_rows(db, b).items() if not kept(k[0])}
    a_before = rows_left(db, a)

    res = run_cli(
        "tenant", "offboard", a.slug, "--reason", "contract ended (ticket 7)",
        "--batch-rows", "7", "--yes", "--database-url", db.admin,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "step 1: suspended" in res.stderr and "rows/s" in res.stderr, res.stderr
    cert = json.loads(res.stdout)

    # Nothing names the tenant any more but the kept tables (and its audit trail).
    assert {k: n for k, n in naming_rows(db, a).items() if not kept(k[0])} == {}
    assert rows_left(db, a) == 0
    assert status_of(db, a) == "deleted"
    with psycopg.connect(db.superuser, autocommit=True) as conn:
        assert conn.execute(
            "select count(*) from tenancy.connector_secrets where endpoint_id = any(%s)",
            (endpoints,),
        ).fetchone() == (0,)
    # The other tenant's rows are all there, counted the same way.
    assert {k: n for k, n in naming_rows(db, b).items() if not kept(k[0])} == b_before

    # The certificate: every row counted before deleted, none after, the hash reproducible here.
    assert cert["tenant"] == {"id": str(a.id), "slug": a.slug}
    assert cert["reason"] == "contract ended (ticket 7)"
    # Counted after the suspension, which enqueued PostHog's $groupidentify (an analytics event
    # and its delivery): two rows more than before the command.
    assert cert["rows"] == {"before": a_before + 2, "deleted": a_before + 2, "after": 0}
    assert all(t["after"] == 0 and t["deleted"] == t["before"] for t in cert["tables"])
    assert {t["table"] for t in cert["tables"]} >= {
        "app.customers",
        "app.ledger",
        "tenancy.memberships",
    }
    assert offboard.certificate_sha256(cert) == cert["sha256"]

    # It verifies (the CLI sealed the trail), and so does the tenant's audit chain.
    res = run_cli("tenant", "certificate", str(a.id), "--verify", "--database-url", db.admin)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == cert
    assert res.stderr.startswith("ok: "), res.stderr
    res = run_cli("audit", "verify", str(a.id), "--database-url", db.admin)
    assert res.returncode == 0, res.stdout + res.stderr

    # A copy kept elsewhere verifies; a tampered one does not (exit 1).
    copy = tmp_path / "certificate.json"
    copy.write_text(json.dumps(cert))
    res = run_cli("tenant", "certificate", a.slug, "--file", str(copy), "--database-url", db.admin)
    assert res.returncode == 0, res.stderr
    copy.write_text(json.dumps({**cert, "rows": {**cert["rows"], "before": a_before - 1}}))
    res = run_cli("tenant", "certificate", a.slug, "--file", str(copy), "--database-url", db.admin)
    assert res.returncode == 1, res.stderr
    assert "NOT OK" in res.stderr and "the certificate was changed" in res.stderr

    # Offboarding again prints the same certificate and asks nothing.
    res = run_cli("tenant", "offboard", a.slug, "--reason", "again", "--database-url", db.admin)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == cert

    # The deleted tenant is never usable again.
    deleted = ("TN002", f"tenant {a.id} is deleted")
    assert refusal(db.app, "select tenancy.authenticate(%s)", token_for(a.id, a.owner)) == deleted
    assert refusal(db.service, "select tenancy.set_context(%s)", a.id) == deleted
    with psycopg.connect(db.service, autocommit=True) as conn:
        assert conn.execute(
            "select tenancy.resolve_tenant(%s)", (f"{a.slug}.offboard.test",)
        ).fetchone() == (None,)
        assert conn.execute(
            "select tenancy.resolve_tenant(%s)", (f"{b.slug}.offboard.test",)
        ).fetchone() == (b.id,)


def test_the_certificate_verifies_once_sealed_and_for_auditors(db: Db) -> None:
    tenant = make_tenant(db, rows=2)
    cert = finish(db, tenant)
    cert.pop("done")
    with psycopg.connect(db.auditor, autocommit=True) as conn:
        assert conn.execute("select tenancy.deletion_certificate(%s)", (tenant.id,)).fetchone() == (
            cert,
        )
        check = conn.execute(
            "select ok, sealed, problem from tenancy.verify_deletion_certificate(%s)",
            (Jsonb(cert),),
        ).fetchone()
        assert check is not None and check[:2] == (False, False) and "not sealed yet" in check[2]
    seal(db)
    assert offboard.verify(db.auditor, cert) == offboard.CertificateCheck(
        True, True, cert["audit_id"], None
    )
    with psycopg.connect(db.auditor, autocommit=True) as conn:
        assert conn.execute(
            "select ok, problem from tenancy.verify_audit(%s)", (tenant.id,)
        ).fetchone() == (True, None)
    # A certificate rewritten with a matching hash: the trail holds the real one.
    forged = {**cert, "reason": "asked nicely"}
    forged["sha256"] = offboard.certificate_sha256(forged)
    check = offboard.verify(db.auditor, forged)
    assert not check.ok and "holds another certificate" in str(check.problem)


# -- steps: batches, resuming, waiting ----------------------------------------------------------


def test_each_step_deletes_at_most_its_batch(db: Db) -> None:
    tenant = make_tenant(db, rows=5)
    with psycopg.connect(db.admin, autocommit=True) as conn:
        first = offboard.step(conn, tenant.id, "batches", 2)
        assert first["step"] == 1 and first["deleted"] == 0
        deleted = []
        while True:
            before = rows_left(db, tenant)
            result = offboard.step(conn, tenant.id, "batches", 2)
            if result.get("done"):
                break
            removed = before - rows_left(db, tenant)
            assert removed == result["deleted"] <= 2, result
            deleted.append(result["deleted"])
    assert sum(deleted) == first["rows_before"] == result["rows"]["deleted"]
    assert len(deleted) >= first["rows_before"] // 2


def test_a_killed_connection_loses_one_step_and_offboarding_resumes(db: Db) -> None:
    tenant = make_tenant(db, rows=40)
    with psycopg.connect(db.admin, autocommit=True) as conn:
        offboard.step(conn, tenant.id, "killed", 5)  # suspends and counts
        before = rows_left(db, tenant)
        for _ in range(3):
            offboard.step(conn, tenant.id, "killed", 5)
        pid = conn.info.backend_pid
        with psycopg.connect(db.superuser, autocommit=True) as su:
            su.execute("select pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            offboard.step(conn, tenant.id, "killed", 5)
    assert status_of(db, tenant) == "suspended"
    assert rows_left(db, tenant) == before - 15

    # A procedure interrupted mid-way (its backend terminated): the steps it committed stay.
    def call() -> None:
        with (
            psycopg.connect(db.admin, autocommit=True) as conn,
            contextlib.suppress(psycopg.OperationalError),
        ):
            conn.execute("call tenancy.offboard(%s, %s, 1)", (tenant.id, "killed"))

    with psycopg.connect(db.superuser, autocommit=True) as su:
        thread = threading.Thread(target=call)
        thread.start()
        deadline = time.monotonic() + 30
        while rows_left(db, tenant) > before - 20:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        su.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where query like 'call tenancy.offboard(%%' and pid <> pg_backend_pid()"
        )
        thread.join(30)
    left = rows_left(db, tenant)
    assert 0 < left <= before - 20

    cert = finish(db, tenant)
    assert rows_left(db, tenant) == 0
    assert cert["rows"] == {"before": before, "deleted": before, "after": 0}
    assert cert["steps"] >= 4 + 5 + 1  # ours, at least 5 of the procedure, the last


def test_offboarding_waits_for_a_context_set_before_the_suspension(db: Db) -> None:
    """A transaction that set the tenant's context before it was suspended may still write:
    the last step waits for it to end, and its rows go too."""
    tenant = make_tenant(db, rows=2)
    with psycopg.connect(db.service) as old:
        old.execute("select tenancy.set_context(%s)", (tenant.id,))  # the transaction stays open
        old_pid = old.info.backend_pid
        with psycopg.connect(db.admin, autocommit=True) as conn:
            offboard.step(conn, tenant.id, "waits", 10000)  # suspends
            result = offboard.step(conn, tenant.id, "waits", 10000)  # deletes every row
            assert result["deleted"] > 0
            result = offboard.step(conn, tenant.id, "waits", 10000)
            assert result["done"] is False and result["waiting_for"] == [old_pid]
            # The old context still writes, then its transaction ends.
            old.execute("insert into app.projects (name) values ('written late')")
            old.commit()
            cert = finish(db, tenant)
    assert cert["rows"]["deleted"] == cert["rows"]["before"] + 1
    assert [t["deleted"] - t["before"] for t in cert["tables"] if t["table"] == "app.projects"] == [
        1
    ]
    assert rows_left(db, tenant) == 0


def test_the_procedure_offboards_to_the_end_and_seals(db: Db) -> None:
    tenant = make_tenant(db, rows=3)
    notices: list[str] = []
    with psycopg.connect(db.admin, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        conn.execute("call tenancy.offboard(%s, %s, 4)", (tenant.id, "by procedure"))
        cert = conn.execute("select tenancy.deletion_certificate(%s)", (tenant.id,)).fetchone()
        with pytest.raises(errors.InvalidTransactionTermination), conn.transaction():
            conn.execute("call tenancy.offboard(%s, %s)", (tenant.id, "inside a block"))
    assert cert is not None and cert[0]["reason"] == "by procedure"
    assert any("step 2" in n for n in notices) and "offboarded" in notices[-1], notices
    # The procedure seals once at its end; a transaction elsewhere on the server that began
    # earlier holds the certificate's row back until it ends: seal again until it is chained.
    deadline = time.monotonic() + 60
    while not (check := offboard.verify(db.admin, cert[0])).sealed and time.monotonic() < deadline:
        with psycopg.connect(db.admin, autocommit=True) as conn:
            conn.execute("select tenancy.seal_audit()")
        time.sleep(0.2)
    assert check.ok, check


# -- who may --------------------------------------------------------------------------------


@pytest.mark.parametrize("login", ["app", "service", "auditor"])
def test_only_tenancy_admin_offboards(db: Db, login: str) -> None:
    tenant = make_tenant(db, rows=1)
    url = getattr(db, login)
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied for function"):
            conn.execute("select tenancy.offboard_tenant(%s, %s)", (tenant.id, "not mine"))
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied for procedure"):
            conn.execute("call tenancy.offboard(%s, %s)", (tenant.id, "not mine"))
        if login != "auditor":
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("select tenancy.deletion_certificate(%s)", (tenant.id,))
    assert status_of(db, tenant) == "active" and rows_left(db, tenant) > 0
    # The rightful operator may.
    assert finish(db, tenant)["done"] is True


def test_the_command_line_asks_and_refuses(db: Db) -> None:
    tenant = make_tenant(db, rows=1)
    # Standard input is not a terminal: --yes is needed, and nothing happens without it.
    res = run_cli("tenant", "offboard", tenant.slug, "--reason", "r", "--database-url", db.admin)
    assert res.returncode == 2 and "pass --yes" in res.stderr, res.stderr
    assert status_of(db, tenant) == "active"
    res = run_cli(
        "tenant", "offboard", "no-such-tenant", "--reason", "r", "--yes", "--database-url", db.admin
    )
    assert res.returncode == 2 and "no tenant 'no-such-tenant'" in res.stderr, res.stderr
    res = run_cli("tenant", "certificate", tenant.slug, "--database-url", db.admin)
    assert res.returncode == 2 and "it was never offboarded" in res.stderr, res.stderr
    res = run_cli(
        "tenant", "offboard", tenant.slug, "--reason", " ", "--yes", "--database-url", db.admin
    )
    assert res.returncode == 2 and "invalid offboarding reason" in res.stderr, res.stderr
    assert status_of(db, tenant) == "active"
