"""pgbouncer in transaction pooling mode: one server connection shared by every client.

A private pgbouncer runs in front of the session database with ``default_pool_size = 1``, so
all clients of the application role take turns on the same PostgreSQL backend (asserted with
``pg_backend_pid()``). The tenant context is transaction-scoped and verified against the
transaction that set it, so nothing one client authenticated survives into the next client's
transaction, not even when that client replays the exact context value with ``set_config``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import (
    INSERT_SQL,
    Roles,
    Tenant,
    context_now,
    one,
    seed,
    token_for,
    visible_rows,
)
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from test_session_hygiene import CLEAN, LEFT, leave_everything, leftovers

from pgtenancy import authenticated_transaction, tenant_transaction

PGBOUNCER = "/usr/sbin/pgbouncer"
RUN_AS = "postgres"
DBNAME = "tenancy"

NO_CONTEXT = (None, None, None)


@dataclass
class Bouncer:
    socket_dir: Path
    port: int
    log: Path

    def url(self, role_url: str) -> str:
        """The same login role as ``role_url``, through pgbouncer."""
        user = conninfo_to_dict(role_url)["user"]
        return make_conninfo(
            host=str(self.socket_dir), port=self.port, dbname=DBNAME, user=str(user)
        )

    def connect(self, role_url: str) -> psycopg.Connection[Any]:
        # No server-side prepared statements: the next transaction may run on another client's
        # session, which pgbouncer 1.18 does not track.
        return psycopg.connect(self.url(role_url), prepare_threshold=None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _signal_pgbouncer(pid_file: Path, ini: Path, sig: int) -> bool:
    """Signal the pgbouncer started with ``ini`` (checked, so a reused pid is left alone)."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    if str(ini).encode() not in cmdline:
        return False
    os.kill(pid, sig)
    return True


def _stop(proc: subprocess.Popen[bytes], tmp: Path) -> None:
    """Stop pgbouncer itself, so runuser reaps it and exits; then reap runuser."""
    pid_file, ini = tmp / "pgbouncer.pid", tmp / "pgbouncer.ini"
    if not _signal_pgbouncer(pid_file, ini, signal.SIGTERM):
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        _signal_pgbouncer(pid_file, ini, signal.SIGKILL)
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def bouncer(database_url: str, roles: Roles) -> Iterator[Bouncer]:
    # pgbouncer's defaults: server_reset_query is DISCARD ALL, but transaction mode ignores it.
    yield from _run_bouncer(database_url, roles, reset_query="DISCARD ALL", reset_always=False)


@pytest.fixture(scope="module")
def resetting_bouncer(database_url: str, roles: Roles) -> Iterator[Bouncer]:
    """pgbouncer that runs DISCARD ALL on the server connection after every transaction.

    In transaction mode pgbouncer ignores server_reset_query unless server_reset_query_always
    is set: these two lines are what docs/python.md recommends.
    """
    yield from _run_bouncer(database_url, roles, reset_query="DISCARD ALL", reset_always=True)


def _run_bouncer(
    database_url: str, roles: Roles, reset_query: str, reset_always: bool = False
) -> Iterator[Bouncer]:
    target = conninfo_to_dict(database_url)
    tmp = Path(tempfile.mkdtemp(prefix="pgtenancy-bouncer-"))
    as_root = os.geteuid() == 0
    if as_root:
        pw = pwd.getpwnam(RUN_AS)
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    port = _free_port()
    users = [str(conninfo_to_dict(url)["user"]) for url in (roles.app, roles.service)]
    (tmp / "userlist.txt").write_text("".join(f'"{u}" ""\n' for u in users))
    server = f"host={target['host']} port={target['port']} dbname={target['dbname']}"
    (tmp / "pgbouncer.ini").write_text(
        f"""[databases]
{DBNAME} = {server}

[pgbouncer]
listen_addr =
listen_port = {port}
unix_socket_dir = {tmp}
auth_type = trust
auth_file = {tmp}/userlist.txt
pool_mode = transaction
default_pool_size = 1
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 50
server_reset_query = {reset_query}
server_reset_query_always = {int(reset_always)}
logfile = {tmp}/pgbouncer.log
pidfile = {tmp}/pgbouncer.pid
"""
    )
    if as_root:
        for name in ("userlist.txt", "pgbouncer.ini"):
            os.chown(tmp / name, pw.pw_uid, pw.pw_gid)
    cmd = [PGBOUNCER, str(tmp / "pgbouncer.ini")]
    if as_root:
        cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    bouncer = Bouncer(socket_dir=tmp, port=port, log=tmp / "pgbouncer.log")
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                log = bouncer.log.read_text() if bouncer.log.exists() else ""
                pytest.fail(f"pgbouncer exited with {proc.returncode}:\n{out}\n{log}")
            try:
                with bouncer.connect(roles.app) as conn:
                    conn.execute("select 1")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield bouncer
    finally:
        _stop(proc, tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def test_one_server_connection_for_all_clients(bouncer: Bouncer, roles: Roles) -> None:
    with bouncer.connect(roles.app) as c1, bouncer.connect(roles.app) as c2:
        pids = set()
        for conn in (c1, c2, c1, c2):
            with conn.transaction():
                pids.add(one(conn, "select pg_backend_pid()"))
        assert len(pids) == 1


def test_context_does_not_reach_the_next_client(
    bouncer: Bouncer, roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    with bouncer.connect(roles.app) as c1, bouncer.connect(roles.app) as c2:
        with authenticated_transaction(c1, token_for(a.id, a.owner)) as ctx:
            assert ctx.tenant_id == a.id
            pid = one(c1, "select pg_backend_pid()")
            assert visible_rows(c1) == [(a.id, "a1"), (a.id, "a2")]
        with c2.transaction():
            assert one(c2, "select pg_backend_pid()") == pid
            assert context_now(c2) == NO_CONTEXT
            assert visible_rows(c2) == []
            assert one(c2, "select count(*) from app.projects") == 0
        # Paired: client 2 authenticates as B on that same server connection and sees B only.
        with authenticated_transaction(c2, token_for(b.id, b.owner)):
            assert one(c2, "select pg_backend_pid()") == pid
            assert visible_rows(c2) == [(b.id, "b1"), (b.id, "b2"), (b.id, "b3")]


@pytest.mark.parametrize("is_local", [True, False], ids=["set_local", "set_session"])
def test_replayed_context_value_gives_nothing(
    bouncer: Bouncer, roles: Roles, tenants: tuple[Tenant, Tenant], is_local: bool
) -> None:
    a, b = tenants
    with bouncer.connect(roles.app) as c1, bouncer.connect(roles.app) as c2:
        with authenticated_transaction(c1, token_for(a.id, a.owner)):
            stolen = one(c1, "select current_setting('tenancy.context')")
            pid = one(c1, "select pg_backend_pid()")
            assert stolen.startswith("v3|") and str(a.id) in stolen
            assert len(visible_rows(c1)) == 2
        try:
            with c2.transaction():
                # Same server session, so the session's fingerprint still matches this value;
                # the value belongs to client 1's transaction, though, and is refused.
                assert one(c2, "select pg_backend_pid()") == pid
                c2.execute("select set_config('tenancy.context', %s, %s)", (stolen, is_local))
                assert one(c2, "select current_setting('tenancy.context')") == stolen
                assert context_now(c2) == NO_CONTEXT
                assert visible_rows(c2) == []
                assert (
                    one(c2, "select count(*) from app.projects where tenant_id = %s", (a.id,)) == 0
                )
                with pytest.raises(psycopg.Error) as info, c2.transaction():
                    c2.execute(INSERT_SQL, ("replayed",))
                assert info.value.sqlstate == "TN001"
            with c2.transaction():
                # A session-level replay persists on the server connection; still no access.
                assert context_now(c2) == NO_CONTEXT
                assert visible_rows(c2) == []
            # Paired: client 2 with its own token sees exactly its own rows.
            with authenticated_transaction(c2, token_for(b.id, b.owner)):
                assert one(c2, "select pg_backend_pid()") == pid
                assert visible_rows(c2) == [(b.id, "b1"), (b.id, "b2"), (b.id, "b3")]
            with authenticated_transaction(c1, token_for(a.id, a.owner)):
                assert visible_rows(c1) == [(a.id, "a1"), (a.id, "a2")]
        finally:
            if not is_local:  # do not leave the replayed value on the shared server session
                with c2.transaction():
                    c2.execute("reset tenancy.context")


def test_failed_transaction_leaves_nothing_behind(
    bouncer: Bouncer, roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    with bouncer.connect(roles.app) as c1, bouncer.connect(roles.app) as c2:
        with (
            pytest.raises(psycopg.errors.UniqueViolation),
            authenticated_transaction(c1, token_for(a.id, a.owner)),
        ):
            c1.execute(INSERT_SQL, ("a-new",))
            c1.execute(INSERT_SQL, ("a1",))
        with c2.transaction():
            assert context_now(c2) == NO_CONTEXT
            assert visible_rows(c2) == []
        with authenticated_transaction(c2, token_for(a.id, a.owner)):
            assert visible_rows(c2) == [(a.id, "a1"), (a.id, "a2")]


def test_interleaved_clients_each_see_only_their_own_rows(
    bouncer: Bouncer, roles: Roles, make_tenant: Any
) -> None:
    clients, rounds = 6, 4
    tenants = [make_tenant() for _ in range(clients)]
    for i, tenant in enumerate(tenants):
        seed(roles, tenant, [f"seed-{i}-{k}" for k in range(i)])
    failures: list[BaseException] = []
    pids: set[int] = set()
    start = threading.Barrier(clients)

    def work(i: int, tenant: Tenant) -> None:
        try:
            token = token_for(tenant.id, tenant.owner)
            with bouncer.connect(roles.app) as conn:
                start.wait()
                for r in range(rounds):
                    with authenticated_transaction(conn, token):
                        pids.add(one(conn, "select pg_backend_pid()"))
                        conn.execute(INSERT_SQL, (f"row-{i}-{r}",))
                        rows = visible_rows(conn)
                        assert len(rows) == i + r + 1
                        assert {tid for tid, _ in rows} == {tenant.id}
                    with conn.transaction():
                        assert context_now(conn) == NO_CONTEXT
                        assert visible_rows(conn) == []
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i, t)) for i, t in enumerate(tenants)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(pids) == 1  # every client ran on the one server connection
    with psycopg.connect(roles.service) as conn:
        for i, tenant in enumerate(tenants):
            with tenant_transaction(conn, tenant.id):
                assert len(visible_rows(conn)) == i + rounds


# -- what a client leaves in the shared server session ----------------------------------------


def test_transaction_mode_ignores_server_reset_query_by_default(
    bouncer: Bouncer, roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    """Without server_reset_query_always, the next client inherits the session's state."""
    _, b = tenants
    with bouncer.connect(roles.app) as c1, bouncer.connect(roles.app) as c2:
        try:
            with c1.transaction():
                pid = one(c1, "select pg_backend_pid()")
            leave_everything(c1)
            with c2.transaction():
                assert one(c2, "select pg_backend_pid()") == pid
            assert leftovers(c2) == LEFT
            # The settings alone are a denial of service (the objects are dropped first, so
            # nothing else refuses the request): its transaction is read-only by default.
            c2.autocommit = True
            c2.execute("close all")
            c2.execute("discard temp")
            c2.execute("deallocate all")
            c2.autocommit = False
            with (
                pytest.raises(psycopg.Error) as info,
                authenticated_transaction(c2, token_for(b.id, b.owner)),
            ):
                pass
            assert info.value.sqlstate == "25006"
        finally:
            c2.autocommit = True
            c2.execute("discard all")  # the fixture's server connection serves later tests
        with authenticated_transaction(c2, token_for(b.id, b.owner)):
            assert visible_rows(c2) == [(b.id, "b1"), (b.id, "b2"), (b.id, "b3")]


def test_server_reset_query_always_leaves_nothing_for_the_next_client(
    resetting_bouncer: Bouncer, roles: Roles, tenants: tuple[Tenant, Tenant]
) -> None:
    """server_reset_query = DISCARD ALL with server_reset_query_always = 1."""
    a, b = tenants
    with resetting_bouncer.connect(roles.app) as c1, resetting_bouncer.connect(roles.app) as c2:
        for _ in range(2):
            with authenticated_transaction(c1, token_for(a.id, a.owner)):
                pid = one(c1, "select pg_backend_pid()")
                assert visible_rows(c1) == [(a.id, "a1"), (a.id, "a2")]
            leave_everything(c1)
            with c2.transaction():
                assert one(c2, "select pg_backend_pid()") == pid
            assert leftovers(c2) == CLEAN
            with authenticated_transaction(c2, token_for(b.id, b.owner)):
                assert one(c2, "show transaction_isolation") == "read committed"
                assert visible_rows(c2) == [(b.id, "b1"), (b.id, "b2"), (b.id, "b3")]
