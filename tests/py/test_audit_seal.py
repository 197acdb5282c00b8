"""Sealing the audit trail while writers run: every chain verifies, every row is sealed once.

Writers in several threads change app.projects in many tenants (tenancy_service contexts), some
of their transactions rolled back, while two other connections call tenancy.seal_audit() over
and over. Afterwards every tenant's chain verifies, every committed audit row is in exactly one
seal, and nothing of a rolled-back transaction is anywhere. A transaction left open holds the
frontier back: rows of transactions that started after it and committed wait too, and all are
sealed once it commits. The pgTAP file tests/pgtap/31-audit_seal.sql covers tampering and
redaction; here, the frontier and the CLI.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
from conftest import Roles, Tenant, run_cli

from pgtenancy import audit, tenant_transaction

WRITERS = 4
TRANSACTIONS_PER_WRITER = 60
RENAME_SQL = "update app.projects set name = name || '-renamed' where name = %s"


class Rollback(Exception):
    """Raised inside a tenant transaction to roll it back."""


def seal(url: str) -> audit.SealRound:
    return audit.seal(url)


def audit_ids(roles: Roles, tenant_ids: list[uuid.UUID]) -> list[int]:
    with psycopg.connect(roles.superuser) as conn:
        return [
            r[0]
            for r in conn.execute(
                "select id from tenancy.audit_logs where tenant_id = any(%s) order by id",
                (tenant_ids,),
            )
        ]


def sealed_ids(roles: Roles, tenant_ids: list[uuid.UUID]) -> list[int]:
    with psycopg.connect(roles.superuser) as conn:
        return [
            r[0]
            for r in conn.execute(
                "select u.id from tenancy.audit_seals as s"
                " cross join lateral unnest(s.ids) as u (id) where s.tenant_id = any(%s)",
                (tenant_ids,),
            )
        ]


def logged_names(roles: Roles, tenant_ids: list[uuid.UUID]) -> set[str]:
    """Every project name in the tenants' audit rows, old or new."""
    with psycopg.connect(roles.superuser) as conn:
        return {
            r[0]
            for r in conn.execute(
                "select d ->> 'name' from tenancy.audit_logs as l,"
                " lateral (values (l.old_data), (l.new_data)) as v (d)"
                " where l.tenant_id = any(%s) and d ? 'name'",
                (tenant_ids,),
            )
        }


def test_concurrent_writers_and_sealer_every_chain_verifies(roles: Roles, make_tenant: Any) -> None:
    tenants: list[Tenant] = [make_tenant() for _ in range(8)]
    ids = [t.id for t in tenants]
    committed: set[str] = set()
    rolled_back: set[str] = set()
    lock = threading.Lock()
    errors: list[BaseException] = []
    writers_done = threading.Event()

    def writer(n: int) -> None:
        rng = random.Random(n)
        try:
            with psycopg.connect(roles.service) as conn:
                for i in range(TRANSACTIONS_PER_WRITER):
                    tenant = rng.choice(tenants)
                    names = [
                        f"w{n}-t{i}-r{k}-{uuid.uuid4().hex[:6]}" for k in range(rng.randint(1, 4))
                    ]
                    undo = rng.random() < 0.2
                    try:
                        with tenant_transaction(conn, tenant.id):
                            for name in names:
                                conn.execute("insert into app.projects (name) values (%s)", (name,))
                            if len(names) > 1:
                                conn.execute(RENAME_SQL, (names[0],))
                                names.append(names[0] + "-renamed")
                            if undo:
                                raise Rollback
                    except Rollback:
                        with lock:
                            rolled_back.update(names)
                        continue
                    with lock:
                        committed.update(names)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    rounds: list[audit.SealRound] = []

    def sealer(url: str) -> None:
        try:
            while not writers_done.is_set():
                rounds.append(seal(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    # Two sealers: they take turns (the state row's lock), never sealing a row twice.
    sealers = [threading.Thread(target=sealer, args=(url,)) for url in (roles.service, roles.admin)]
    for t in sealers + threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    writers_done.set()
    for t in sealers:
        t.join(timeout=300)
    assert not errors, errors
    final = seal(roles.admin)

    assert sum(1 for r in rounds if r.sealed_rows > 0) >= 2, rounds  # sealed while writing
    assert rolled_back and committed

    written = audit_ids(roles, ids)
    sealed = sealed_ids(roles, ids)
    assert written, "the writers wrote audit rows"
    duplicates = [i for i, c in Counter(sealed).items() if c > 1]
    assert duplicates == []
    assert sorted(sealed) == written  # every committed row, once; nothing else

    names = logged_names(roles, ids)
    assert committed <= names
    assert not (rolled_back - committed) & names  # nothing of a rolled-back transaction

    for tenant in tenants:
        result = audit.verify(roles.admin, tenant.id)
        assert result.ok, (tenant.id, result)
        assert result.first_bad_id is None and result.problem is None
    assert sum(audit.verify(roles.admin, t).checked_rows for t in ids) == len(written)
    assert final.frontier >= max(r.frontier for r in rounds)


def test_an_open_transaction_holds_the_frontier_back(roles: Roles, make_tenant: Any) -> None:
    early, late = make_tenant(), make_tenant()
    seal(roles.service)
    before = set(audit_ids(roles, [early.id, late.id]))

    with psycopg.connect(roles.service) as held:
        held.execute("begin")
        held.execute("select tenancy.set_context(%s)", (early.id,))
        held.execute("insert into app.projects (name) values ('started first, committed last')")
        xid = held.execute("select pg_current_xact_id()::text::bigint").fetchone()
        assert xid is not None
        # A transaction that starts later and commits at once.
        with psycopg.connect(roles.service) as conn, tenant_transaction(conn, late.id):
            conn.execute("insert into app.projects (name) values ('started later, committed')")

        round_ = seal(roles.service)
        assert round_.frontier <= xid[0]  # not past the open transaction
        committed_later = set(audit_ids(roles, [late.id])) - before
        assert len(committed_later) == 1
        assert not committed_later & set(sealed_ids(roles, [early.id, late.id]))  # it waits
        # Neither sealed nor reported: both transactions are at or above the frontier.
        assert audit.verify(roles.admin, early.id).ok
        assert audit.verify(roles.admin, late.id).ok
        held.execute("commit")

    new_rows = set(audit_ids(roles, [early.id, late.id])) - before
    assert len(new_rows) == 2
    round_ = seal(roles.service)
    assert round_.frontier > xid[0]
    assert new_rows <= set(sealed_ids(roles, [early.id, late.id]))
    for tenant in (early, late):
        result = audit.verify(roles.admin, tenant.id)
        assert result.ok, result
        assert result.checked_rows >= 2  # the owner's membership and the project


def test_cli_seal_export_and_verify_with_an_anchor(
    roles: Roles, tenants: tuple[Tenant, Tenant], tmp_path: Path
) -> None:
    a, _ = tenants
    res = run_cli("audit", "seal", "--database-url", roles.service)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("sealed ") and "frontier" in res.stdout

    res = run_cli("audit", "export-seal", str(a.id), "--database-url", roles.admin)
    assert res.returncode == 0, res.stderr
    anchor = json.loads(res.stdout)
    assert anchor["tenant_id"] == str(a.id)
    assert len(anchor["head"]) == 64 and anchor["seq"] >= 1 and anchor["total_rows"] >= 3
    path = tmp_path / "anchor.json"
    path.write_text(res.stdout)

    res = run_cli(
        "audit", "verify", str(a.id), "--anchor", str(path), "--database-url", roles.admin
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith(f"ok: tenant {a.id}: ") and "and the anchor verified" in res.stdout

    # An anchor whose head is not the seal's: exit 1, the seal named.
    forged = dict(anchor, head="0" * 64)
    path.write_text(json.dumps(forged))
    res = run_cli(
        "audit", "verify", str(a.id), "--anchor", str(path), "--database-url", roles.admin
    )
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stdout.startswith(
        f"NOT OK: tenant {a.id}: seal {anchor['seq']} does not match the anchor"
    )

    path.write_text("not json")
    res = run_cli(
        "audit", "verify", str(a.id), "--anchor", str(path), "--database-url", roles.admin
    )
    assert res.returncode == 2 and "is not JSON" in res.stderr
    res = run_cli("audit", "verify", "not-a-uuid", "--database-url", roles.admin)
    assert res.returncode == 2 and "is not a uuid" in res.stderr
    # An application login may not seal.
    res = run_cli("audit", "seal", "--database-url", roles.app)
    assert res.returncode == 2 and "permission denied for function seal_audit" in res.stderr


def test_writers_never_wait_for_a_sealer(roles: Roles, make_tenant: Any) -> None:
    """Throughput cannot collapse under sealing because writers never wait for it: while one
    sealer holds its lock (a seal_audit round left uncommitted, the state row locked) and a second
    sealer waits behind it, writers in several tenants commit their audited writes, each within a
    lock timeout of one second. Once the sealers finish, the writers' rows are sealed by the next
    round and every chain verifies."""
    tenants = [make_tenant() for _ in range(3)]
    ids = [t.id for t in tenants]
    with psycopg.connect(roles.service) as holder, psycopg.connect(roles.admin) as waiter:
        holder.execute("select * from tenancy.seal_audit()")  # its transaction stays open
        waiting = threading.Thread(
            target=lambda: waiter.execute("select * from tenancy.seal_audit()")
        )
        waiting.start()
        try:
            with psycopg.connect(roles.service) as conn:
                conn.execute("set lock_timeout = '1s'")
                conn.execute("set statement_timeout = '5s'")
                conn.commit()
                for i in range(30):
                    tenant = tenants[i % len(tenants)]
                    with tenant_transaction(conn, tenant.id):
                        conn.execute(
                            "insert into app.projects (name) values (%s)", (f"while-sealing-{i}",)
                        )
                        conn.execute(RENAME_SQL, (f"while-sealing-{i}",))
            assert waiting.is_alive(), "the second sealer waits for the first"
        finally:
            holder.commit()
            waiting.join(timeout=60)
        waiter.commit()
    seal(roles.admin)
    written = audit_ids(roles, ids)
    assert len(written) >= 60
    assert sorted(sealed_ids(roles, ids)) == written
    for tenant in tenants:
        assert audit.verify(roles.admin, tenant.id).ok
