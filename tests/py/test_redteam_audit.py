"""The audit trail under attack from a shared (pooled) connection.

A transaction pooler (pgbouncer in transaction mode) hands one server session to many
borrowers and resets nothing between their transactions. SQL injected into one borrower's
transaction, running as the application role, can leave session-level settings behind with
``set_config(name, value, false)``. ``tenancy.request_metadata`` is such a setting: the request
metadata of one transaction must never reach the audit rows of the next borrower's
transaction (forged request ids and IP addresses in another tenant's trail), and a malformed
value left behind must not make every later audited write on the connection fail. The rightful
metadata, set with ``tenancy.set_request_metadata`` in the same transaction, still reaches
the rows: of the trigger, of ``log_audit`` and of support access.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from conftest import Roles, Tenant, one

from pgtenancy import tenant_transaction

INSERT_PROJECT = "insert into app.projects (name) values (%s)"
LEAVE_SESSION_SETTING = "select pg_catalog.set_config('tenancy.request_metadata', %s, false)"
FORGED = {"request_id": "forged", "ip": "198.51.100.66"}


def metadata_of(roles: Roles, tenant: Tenant, name: str) -> Any:
    """The metadata of the audit row recording the insert of project ``name``."""
    with psycopg.connect(roles.superuser) as conn:
        row = conn.execute(
            "select metadata from tenancy.audit_logs where tenant_id = %s and action = 'INSERT'"
            " and new_data ->> 'name' = %s",
            (tenant.id, name),
        ).fetchone()
    assert row is not None, f"no audit row for {name}"
    return row[0]


def event_metadata(roles: Roles, audit_id: int) -> Any:
    with psycopg.connect(roles.superuser) as conn:
        row = conn.execute(
            "select metadata from tenancy.audit_logs where id = %s", (audit_id,)
        ).fetchone()
    assert row is not None
    return row[0]


def test_session_level_request_metadata_does_not_reach_the_next_borrowers_audit_rows(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    attacker, victim = tenants
    # One connection, as a pooler hands it out: first the attacker's transaction, then the victim's.
    with psycopg.connect(roles.service, autocommit=True) as conn:
        with tenant_transaction(conn, attacker.id):
            conn.execute(LEAVE_SESSION_SETTING, (json.dumps(FORGED),))
            conn.execute(INSERT_PROJECT, ("rt-attacker",))
        assert conn.execute("select current_setting('tenancy.request_metadata')").fetchone() == (
            json.dumps(FORGED),
        ), "the session-level value outlives the transaction"
        with tenant_transaction(conn, victim.id):
            conn.execute(INSERT_PROJECT, ("rt-victim-plain",))
            event = one(
                conn, "select tenancy.log_audit('report.exported', 'report', 'r1', null, null)"
            )
        # The rightful metadata of the victim's own transaction is still recorded, whole.
        with tenant_transaction(conn, victim.id, metadata={"request_id": "real"}):
            conn.execute(INSERT_PROJECT, ("rt-victim-meta",))
            event_meta = one(
                conn,
                "select tenancy.log_audit('report.exported', 'report', 'r2', null, null, %s)",
                ('{"n": 1}',),
            )
    assert metadata_of(roles, victim, "rt-victim-plain") == {}
    assert event_metadata(roles, event) == {}
    assert metadata_of(roles, victim, "rt-victim-meta") == {"request_id": "real"}
    assert event_metadata(roles, event_meta) == {"request_id": "real", "n": 1}
    # Within its own transaction, a raw set_config is no way around set_request_metadata either.
    assert metadata_of(roles, attacker, "rt-attacker") == {}


def test_malformed_session_level_request_metadata_does_not_break_later_writes(
    roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    attacker, victim = tenants
    with psycopg.connect(roles.app) as conn:
        conn.autocommit = True
        conn.execute(LEAVE_SESSION_SETTING, ("not json at all",))
    with psycopg.connect(roles.service, autocommit=True) as conn:
        with tenant_transaction(conn, attacker.id):
            conn.execute(LEAVE_SESSION_SETTING, ("not json at all",))
        with tenant_transaction(conn, victim.id):
            conn.execute(INSERT_PROJECT, ("rt-victim-after-garbage",))
            conn.execute("select tenancy.log_audit('report.exported', 'report', 'r3', null, null)")
        with tenant_transaction(conn, victim.id, metadata={"request_id": "after-garbage"}):
            conn.execute(INSERT_PROJECT, ("rt-victim-after-garbage-meta",))
    assert metadata_of(roles, victim, "rt-victim-after-garbage") == {}
    rightful = metadata_of(roles, victim, "rt-victim-after-garbage-meta")
    assert rightful == {"request_id": "after-garbage"}
