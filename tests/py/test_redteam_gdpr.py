"""GDPR subject rights under attack: tenant A's owner or admin, as ``tenancy_app``, against B.

The attacker holds a rightful context of tenant A (an admin's JWT) on an application connection
and may send any SQL: the SECURITY DEFINER helpers called directly with fabricated arguments
(tenancy.record_erasure, tenancy.import_erasure_ledger), the generated per-table functions with
B's subject ids, temporary objects and search_path games before the subject rights functions,
hostile subject ids, weaker or forged contexts, EXPLAIN. Each attack proves the refusal (or that
nothing of B changed) and that the rightful operation still succeeds. The world is that of
gdpr_support.make_world: A's subject and a look-alike, B's customer under the subject's id.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

import psycopg
import pytest
from conftest import Roles, Tenant, add_member, one, token_for
from gdpr_support import (
    World,
    add_customer,
    as_member,
    erase,
    holding,
    make_world,
    person,
    scan,
    verify,
)
from psycopg.types.json import Jsonb

from pgtenancy import authenticated_transaction, tenant_transaction

Conn = psycopg.Connection[Any]


@pytest.fixture
def world(roles: Roles, make_tenant: Any) -> World:
    return make_world(roles, make_tenant)


def refused(conn: Conn, query: str, params: Any = None) -> psycopg.Error:
    """The error ``query`` raises, in a savepoint (the transaction and its context go on)."""
    with pytest.raises(psycopg.Error) as info, conn.transaction():
        conn.execute(query, params)
    return info.value


def audit_of(roles: Roles, tenant: Tenant) -> list[tuple[Any, ...]]:
    """Every audit row of ``tenant`` as stored (superuser): id, data, redaction mark."""
    with psycopg.connect(roles.superuser) as conn:
        return conn.execute(
            "select id, old_data, new_data, redacted_at from tenancy.audit_logs"
            " where tenant_id = %s order by id",
            (tenant.id,),
        ).fetchall()


def ledger_of(roles: Roles, tenant: Tenant) -> list[tuple[Any, ...]]:
    with psycopg.connect(roles.superuser) as conn:
        return conn.execute(
            "select id, subject_hash, reapplied_at, reapplied_rows from tenancy.erasure_ledger"
            " where tenant_id = %s order by id",
            (tenant.id,),
        ).fetchall()


def customers_oid(conn: Conn) -> str:
    return str(one(conn, "select 'app.customers'::regclass::oid"))


def subject_hash(tenant: Tenant, subject: str) -> str:
    return hashlib.sha256(f"{tenant.id}:{subject}".encode()).hexdigest()


# -- tenancy.record_erasure with fabricated results ------------------------------------------


def test_record_erasure_with_fabricated_results_never_touches_b(roles: Roles, world: World) -> None:
    w = world
    b_only = add_customer(roles, w.b, person("bea"))  # an id A has no customer with
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, w.b.id):
        b_entry = one(conn, "select tenancy.erase_subject(%s, 'b erasure')", (str(b_only),))
    b_trail, b_ledger = audit_of(roles, w.b), ledger_of(roles, w.b)
    a_trail = audit_of(roles, w.a)
    with as_member(roles, w.a, w.a_admin) as conn:
        oid = customers_oid(conn)
        forged_keys = [json.dumps({"id": b_only}), json.dumps({"id": w.other_id + 10**9})]
        for entity in ('"app"."customers"', '"app"."orders"', '"tenancy"."audit_logs"', "x"):
            result = one(
                conn,
                "select tenancy.record_erasure(%s, 'forged', %s, %s)",
                (
                    str(b_only),
                    Jsonb(
                        {
                            oid: {
                                "entity": entity,
                                "table": "app.customers",
                                "rows": 0,
                                "keys": forged_keys,
                            }
                        }
                    ),
                    None,
                ),
            )
            assert result["audit_rows"] == 0
            # B's ledger entry "applied again" from A: not an entry of A's (22023).
            err = refused(
                conn,
                "select tenancy.record_erasure(%s, 'forged', '{}', %s)",
                (str(b_only), b_entry["ledger_id"]),
            )
            assert err.sqlstate == "22023", err
        # Keys that are not a table's, results that are not an object: refused.
        err = refused(conn, "select tenancy.record_erasure('1', 'x', '[]', null)")
        assert err.sqlstate == "22023"
        err = refused(
            conn, "select tenancy.record_erasure('1', 'x', %s, null)", (Jsonb({"pg_class": {}}),)
        )
        assert err.sqlstate == "22P02"
    assert audit_of(roles, w.b) == b_trail
    assert ledger_of(roles, w.b) == b_ledger
    assert verify(roles.superuser, w.b)[0]
    # A's trail gained the attempts' own entries and lost no value.
    assert audit_of(roles, w.a)[: len(a_trail)] == a_trail
    # Rightful: A's admin erases A's subject; B's customer under the same id is untouched.
    erase(roles, w.a, w.a_admin, str(w.subject_id))
    with psycopg.connect(roles.superuser) as conn:
        found = scan(conn, w.subject.values() + w.other.values(), everything=True)
    assert holding({v: found[v] for v in w.subject.values()}) == {}
    assert all(found[v] for v in w.other.values())
    assert verify(roles.superuser, w.a)[0] and verify(roles.superuser, w.b)[0]


def test_record_erasure_redacts_only_the_registered_tables_trail(
    roles: Roles, world: World
) -> None:
    """A fabricated entity type names audit rows of a table outside the registry (invitations:
    their rows hold the invitee's email): the entity comes from the registry, so they keep
    their values (record_erasure used to take the entity from p_results)."""
    w = world
    invitee = f"invitee.{uuid.uuid4().hex[:10]}@mail.test"
    with as_member(roles, w.a, w.a_admin) as conn:
        invitation = one(conn, "select id from tenancy.invite(%s, 'member')", (invitee,))
    with psycopg.connect(roles.superuser) as conn:
        key = one(
            conn,
            "select entity_id from tenancy.audit_logs where tenant_id = %s"
            " and entity_type = '\"tenancy\".\"invitations\"' and new_data ->> 'id' = %s",
            (w.a.id, str(invitation)),
        )
    with as_member(roles, w.a, w.a_admin) as conn:
        # app.customers' personal columns are email, full_name, phone: the invitation's email.
        result = one(
            conn,
            "select tenancy.record_erasure('cover-up', 'forged', %s, null)",
            (
                Jsonb(
                    {
                        customers_oid(conn): {
                            "entity": '"tenancy"."invitations"',
                            "table": "app.customers",
                            "rows": 1,
                            "keys": [key],
                        }
                    }
                ),
            ),
        )
    assert result["audit_rows"] == 0
    with psycopg.connect(roles.superuser) as conn:
        assert holding(scan(conn, [invitee], everything=True))[invitee] != []
        assert (
            one(
                conn,
                "select new_data ->> 'email' from tenancy.audit_logs where tenant_id = %s"
                " and entity_id = %s and action = 'INSERT'",
                (w.a.id, key),
            )
            == invitee
        )


# -- the generated functions and export_subject, from A's context, for B's subjects -----------


def test_generated_functions_never_reach_b(roles: Roles, world: World) -> None:
    w = world
    b_only = add_customer(roles, w.b, person("bob"))
    before = audit_of(roles, w.b)
    with as_member(roles, w.a, w.a_admin) as conn:
        for table in ("customers", "orders", "visits"):
            exported = one(conn, f"select app.tenancy_export_{table}(%s)", ([str(b_only)],))
            assert exported == {"rows": [], "keys": []}
            erased = one(conn, f"select app.tenancy_erase_{table}(%s)", ([str(b_only)],))
            assert erased == {"rows": 0, "keys": []}
        export = one(conn, "select tenancy.export_subject(%s)", (str(b_only),))
        assert export["tables"] == {"app.customers": [], "app.orders": [], "app.visits": []}
        assert export["audit"] == [] and export["security_events"] == []
        # Rightful: the subject's id is also B's customer's; A's export holds A's rows only.
        export = json.dumps(one(conn, "select tenancy.export_subject(%s)", (str(w.subject_id),)))
        assert w.subject.email in export and w.subject.address in export
        for value in w.other.values() + w.lookalike.values():
            assert value not in export
    with psycopg.connect(roles.superuser) as conn:
        assert (
            one(
                conn,
                "select count(*) from app.customers where tenant_id = %s"
                " and email not like 'erased-%%'",
                (w.b.id,),
            )
            == 2
        )
        assert one(conn, "select count(*) from app.visits where tenant_id = %s", (w.b.id,)) == 4
    assert audit_of(roles, w.b) == before


# -- temporary objects and search_path ------------------------------------------------------

TEMP_OBJECTS = [
    "create temp table personal_data (table_name regclass, subject_column name,"
    " subject_references regclass, pii text[], erase text, depth int, export_function text,"
    " erase_function text)",
    "insert into pg_temp.personal_data values ('app.customers', 'id', null, '{}', 'anonymize', 0,"
    " 'pg_temp.nothing(text[])', 'pg_temp.nothing(text[])')",
    "create temp table pg_class (oid oid, relname name, relnamespace oid)",
    "create temp table audit_logs (id bigint, tenant_id uuid)",
    "create temp table erasure_ledger (tenant_id uuid, id uuid)",
    "create temp view tenants as select gen_random_uuid() as id",
    "create function pg_temp.subject_hash(uuid, text) returns text language sql"
    " as $$ select repeat('0', 64) $$",
    "create function pg_temp.tenancy_export_customers(text[]) returns jsonb language sql"
    ' as $$ select \'{"rows": [], "keys": []}\'::jsonb $$',
    "create function pg_temp.jsonb_build_object(variadic text[]) returns jsonb language sql"
    " as $$ select '{}'::jsonb $$",
    "set local search_path = pg_temp, tenancy, app, public",
]


def test_temp_objects_and_search_path_change_nothing(roles: Roles, world: World) -> None:
    """Inside A's admin transaction (the test databases keep TEMPORARY for PUBLIC, as a database
    migrated with keep_temp_privilege does): temporary tables named like the registry, the
    trail, the ledger and pg_class, a temporary view named tenants, temporary functions named
    like pgtenancy's and pg_catalog's, and pg_temp first in search_path. The subject rights
    functions run with search_path pg_catalog, pg_temp and qualify tenancy's names: the export
    is the clean one and the erasure erases, with the true subject hash."""
    w = world
    subject = str(w.subject_id)
    with as_member(roles, w.a, w.a_admin) as conn:
        clean = one(conn, "select tenancy.export_subject(%s)", (subject,))
        for statement in TEMP_OBJECTS:
            conn.execute(statement)
        gamed = one(conn, "select tenancy.export_subject(%s)", (subject,))
        for part in ("tables", "security_events"):
            assert gamed[part] == clean[part], part
        assert gamed["audit"][: len(clean["audit"])] == clean["audit"]
        assert len(gamed["tables"]["app.orders"]) == 2
        result = one(conn, "select tenancy.erase_subject(%s, 'art. 17')", (subject,))
        assert result["tables"] == {"app.customers": 1, "app.orders": 2, "app.visits": 2}
        assert result["subject_hash"] == subject_hash(w.a, subject)
    with psycopg.connect(roles.superuser) as conn:
        found = scan(conn, w.subject.values() + w.kept, everything=True)
    assert holding({v: found[v] for v in w.subject.values()}) == {}
    assert all(found[v] for v in w.kept)
    assert verify(roles.superuser, w.a)[0]


def test_temp_objects_left_on_a_pooled_connection_stop_the_next_borrower(
    roles: Roles, world: World
) -> None:
    """A's admin leaves a temporary table and a session-wide search_path on a shared connection:
    B's next transaction on it is refused (TN008: the session is not clean) before any subject
    function runs; once the pool resets the session (DISCARD ALL), B's export is B's."""
    w = world
    b_admin = add_member(roles, w.b, "admin")
    with psycopg.connect(roles.app, autocommit=True) as conn:
        with authenticated_transaction(conn, token_for(w.a.id, w.a_admin)):
            conn.execute("create temp table personal_data (table_name regclass)")
            conn.execute("select set_config('search_path', 'pg_temp, public', false)")
        with (
            pytest.raises(psycopg.Error) as info,
            authenticated_transaction(conn, token_for(w.b.id, b_admin)),
        ):
            conn.execute("select tenancy.export_subject(%s)", (str(w.other_id),))
        assert info.value.sqlstate == "TN008", info.value
        conn.execute("discard all")
        with authenticated_transaction(conn, token_for(w.b.id, b_admin)):
            export = json.dumps(one(conn, "select tenancy.export_subject(%s)", (str(w.other_id),)))
    assert w.other.email in export and w.subject.email not in export


# -- hostile subject ids -----------------------------------------------------------------------

HOSTILE_ACCEPTED = [
    "1 or 1=1",
    "1'); delete from app.customers; --",
    "' or ''='",
    "1) or (true",
    "%",
    "_",
    ".*",
    "{1}",
    '{"id": 1}',
    "\uff11",  # FULLWIDTH DIGIT ONE
    "1\u200b",  # ZERO WIDTH SPACE
    "\u202e1",  # RIGHT-TO-LEFT OVERRIDE
    "\U0001f984",
    "01",
    "+1",
    " 1",
    "a" * 500,
]
HOSTILE_REFUSED = ["", "a" * 501, "1\n", "1\r", "\x01", "\x1b[2J", "1\x7f", "\t1"]


def test_hostile_subject_ids(roles: Roles, world: World) -> None:
    w = world
    with as_member(roles, w.a, w.a_admin) as conn:
        for subject in HOSTILE_ACCEPTED + [
            s.replace("1", str(w.subject_id)) for s in HOSTILE_ACCEPTED
        ]:
            with conn.transaction():
                export = one(conn, "select tenancy.export_subject(%s)", (subject,))
                assert all(rows == [] for rows in export["tables"].values()), subject
                result = one(conn, "select tenancy.erase_subject(%s, 'hostile')", (subject,))
                assert set(result["tables"].values()) == {0}, (subject, result)
        for subject in HOSTILE_REFUSED + [None]:
            for query in (
                "select tenancy.export_subject(%s)",
                "select tenancy.erase_subject(%s, 'hostile')",
                "select tenancy.record_erasure(%s, 'hostile', '{}', null)",
                "select tenancy.open_subject_request('erasure', %s)",
            ):
                err = refused(conn, query, (subject,))
                assert err.sqlstate == "22023", (subject, query, err)
        # NUL never reaches the server: the driver refuses it.
        with pytest.raises(psycopg.DataError):
            conn.execute("select tenancy.export_subject(%s)", ("1\x00",))
    with psycopg.connect(roles.superuser) as conn:
        found = scan(conn, w.subject.values() + w.kept, everything=True)
    assert all(found.values()), "a hostile id erased something"
    # Rightful: the real id still erases the subject.
    erase(roles, w.a, w.a_admin, str(w.subject_id))


# -- import_erasure_ledger -----------------------------------------------------------------------


def entry(tenant: Tenant, subject_hash: str | None = None, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tenant_id": str(tenant.id),
        "id": str(uuid.uuid4()),
        "subject_hash": subject_hash or hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
        "reason": "imported",
        "erased_at": "2026-01-01T00:00:00+00:00",
    }
    row.update(changes)
    return row


def test_import_erasure_ledger_takes_only_the_current_tenants_entries(
    roles: Roles, world: World
) -> None:
    w = world
    b_before = ledger_of(roles, w.b)
    forged = [
        [entry(w.b)],
        [entry(w.a), entry(w.b)],  # one of B's among A's: all refused
        [entry(w.a, subject_hash="A" * 64)],
        [entry(w.a, subject_hash="0" * 63)],
        [entry(w.a, id="not-a-uuid")],
        [entry(w.a, reason="")],
        [entry(w.a, tenant_id=None)],
        ["not an object"],
    ]
    with as_member(roles, w.a, w.a_admin) as conn:
        for entries in forged:
            err = refused(conn, "select tenancy.import_erasure_ledger(%s)", (Jsonb(entries),))
            assert err.sqlstate == "22023", (entries, err)
        err = refused(conn, "select tenancy.import_erasure_ledger(%s)", (Jsonb({"a": 1}),))
        assert err.sqlstate == "22023"
        # A hash of B's subject under A's tenant: imported (A may), never matches B's rows.
        b_hash = subject_hash(w.b, str(w.other_id))
        assert (
            one(
                conn,
                "select tenancy.import_erasure_ledger(%s)",
                (Jsonb([entry(w.a, subject_hash=b_hash)]),),
            )
            == 1
        )
        reapplied = conn.execute(
            "select subject_hash, subjects from tenancy.reapply_erasures()"
        ).fetchall()
        assert (b_hash, 0) in reapplied
        # Rightful: A's own kept entry is imported once, then found again (idempotent).
        own = entry(w.a, subject_hash=subject_hash(w.a, str(w.subject_id)))
        assert one(conn, "select tenancy.import_erasure_ledger(%s)", (Jsonb([own]),)) == 1
        assert one(conn, "select tenancy.import_erasure_ledger(%s)", (Jsonb([own]),)) == 0
        applied = {
            r[0]: r[1]
            for r in conn.execute("select subject_hash, subjects from tenancy.reapply_erasures()")
        }
        assert applied[own["subject_hash"]] == 1
    assert ledger_of(roles, w.b) == b_before
    with psycopg.connect(roles.superuser) as conn:
        found = scan(conn, w.subject.values() + w.other.values(), everything=True)
    assert holding({v: found[v] for v in w.subject.values()}) == {}
    assert all(found[v] for v in w.other.values())


HUGE = 20_000


def test_import_erasure_ledger_with_a_huge_array(roles: Roles, world: World) -> None:
    """No bound on the array: 20,000 forged entries are taken in one call, and every later
    reapply walks them (A's own transaction and time only). Measured, not refused."""
    w = world
    entries = [entry(w.a) for _ in range(HUGE)]
    with as_member(roles, w.a, w.a_admin) as conn:
        started = time.monotonic()
        assert one(conn, "select tenancy.import_erasure_ledger(%s)", (Jsonb(entries),)) == HUGE
        imported = time.monotonic() - started
        started = time.monotonic()
        rows = conn.execute("select count(*) from tenancy.reapply_erasures()").fetchone()
        reapplied = time.monotonic() - started
    assert rows == (HUGE,)
    print(
        f"import of {HUGE} entries: {imported:.2f} s; reapply_erasures over them: {reapplied:.2f} s"
    )
    assert ledger_of(roles, w.b) == []


# -- weaker and forged contexts ------------------------------------------------------------------

SUBJECT_FUNCTIONS = [
    ("select tenancy.export_subject(%s)", lambda s: (s,)),
    ("select tenancy.erase_subject(%s, 'x')", lambda s: (s,)),
    ("select tenancy.record_erasure(%s, 'x', '{}', null)", lambda s: (s,)),
    ("select tenancy.record_subject_export(%s, '{}', 0)", lambda s: (s,)),
    ("select tenancy.open_subject_request('erasure', %s)", lambda s: (s,)),
    ("select tenancy.import_erasure_ledger('[]')", lambda s: ()),
    ("select * from tenancy.reapply_erasures()", lambda s: ()),
]


def test_members_viewers_and_forged_contexts_are_refused(roles: Roles, world: World) -> None:
    w = world
    subject = str(w.subject_id)
    for role in ("member", "viewer"):
        user = add_member(roles, w.a, role)
        with as_member(roles, w.a, user) as conn:
            for query, params in SUBJECT_FUNCTIONS:
                err = refused(conn, query, params(subject))
                assert err.sqlstate == "42501", (role, query, err)
            assert one(conn, "select count(*) from tenancy.erasure_ledger") == 0
            if role == "viewer":
                # The generated erasure runs as the caller: rows it sees but may not change.
                err = refused(conn, "select app.tenancy_erase_customers(%s)", ([subject],))
                assert err.sqlstate == "42501"
        # A member or viewer forges an owner's context value with set_config: no context at all.
        with as_member(roles, w.a, user) as conn:
            for forged in (
                f"v3|{w.a.id}|owner|0|{w.a.owner}",
                f"v3|{w.a.id}|service|0|",
                f"v3|{w.b.id}|owner|0|{user}",
            ):
                with conn.transaction():
                    conn.execute("select set_config('tenancy.context', %s, true)", (forged,))
                    for query, params in SUBJECT_FUNCTIONS:
                        err = refused(conn, query, params(subject))
                        assert err.sqlstate == "TN001", (forged, query, err)
    # No context, an expired token, a token of A used for B's subject rights: refused.
    with psycopg.connect(roles.app) as conn:
        err = refused(conn, "select tenancy.export_subject(%s)", (subject,))
        assert err.sqlstate == "TN001"
        expired = token_for(w.a.id, w.a_admin, ttl=-120)
        with pytest.raises(psycopg.Error), conn.transaction():
            conn.execute("select tenancy.authenticate(%s)", (expired,))
        with pytest.raises(psycopg.Error), conn.transaction():
            conn.execute("select tenancy.authenticate(%s)", (token_for(w.b.id, w.a_admin),))
    # Nothing was erased; the rightful owner erases.
    with psycopg.connect(roles.superuser) as conn:
        assert all(scan(conn, w.subject.values(), everything=True).values())
    result = erase(roles, w.a, w.a.owner, subject)
    assert result["tables"]["app.customers"] == 1


# -- EXPLAIN -----------------------------------------------------------------------------------


def test_explain_of_export_subject_shows_no_inner_query(roles: Roles, world: World) -> None:
    """EXPLAIN ANALYZE of a call shows one Result node: the function's queries (and any row
    counts of their scans) stay inside. A direct EXPLAIN ANALYZE of the same condition on an
    RLS table still counts the rows the policy removed (PostgreSQL's side channel of row level
    security, which these functions neither open nor close): documented here."""
    w = world
    with as_member(roles, w.a, w.a_admin) as conn:
        plan = one(
            conn,
            "explain (analyze, verbose, format json) select tenancy.export_subject(%s)",
            (str(w.subject_id),),
        )
        text = json.dumps(plan)
        assert plan[0]["Plan"]["Node Type"] == "Result" and "Plans" not in plan[0]["Plan"]
        assert "Rows Removed" not in text and "customers" not in text
        conn.execute("set local enable_indexscan = off")
        conn.execute("set local enable_bitmapscan = off")
        plan = one(
            conn,
            "explain (analyze, format json) select * from app.customers as t"
            " where t.id::text = any(%s)",
            ([str(w.subject_id)],),
        )
    node = plan[0]["Plan"]
    while node.get("Node Type") != "Seq Scan":
        node = node["Plans"][0]
    with psycopg.connect(roles.superuser) as conn:
        others = one(conn, "select count(*) from app.customers where tenant_id <> %s", (w.a.id,))
    # The policy's filter removed every other tenant's row, and says how many.
    assert node["Rows Removed by Filter"] >= others
