"""The audit trail over real connections: COPY FROM, commits and rollbacks, the helpers' request
metadata, and partitioned tenant tables.

Every write runs as a login role of the suite (members of tenancy_app, tenancy_service) through
pgtenancy's helpers; the audit rows are read back by the superuser. The DML paths of plain tables
are covered row by row in tests/pgtap/30-audit_capture.sql; these are the paths pgTAP cannot
drive (COPY FROM STDIN, separate transactions, the Python helpers) and partitioned tables, which
the fixture schema does not hold.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import Roles, Tenant, add_member, new_user_id, token_for
from pgtenancy.generator import cli_main
from psycopg import errors, sql
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from test_domains import BASES, domains  # noqa: F401 (fixture)

import pgtenancy.context
from pgtenancy import (
    AuthenticationRefused,
    aapi_key_transaction,
    aauthenticated_transaction,
    api_key_transaction,
    apool_authenticated_transaction,
    apool_tenant_transaction,
    atenant_transaction,
    authenticated_transaction,
    pool_api_key_transaction,
    pool_authenticated_transaction,
    pool_tenant_transaction,
    tenant_transaction,
)
from pgtenancy.web import arequest_transaction, request_transaction

Conn = psycopg.Connection[Any]

TRAIL = (
    "select action, tenant_id, entity_type, table_name, entity_id, old_data, new_data,"
    " changed_columns, actor_user_id, actor_role, api_key_id, db_user::text, metadata, txid"
    " from tenancy.audit_logs where id > %s order by id"
)


@dataclass
class Row:
    """An audit row, as read back by the superuser."""

    action: str
    tenant_id: uuid.UUID | None
    entity_type: str
    table_name: str | None
    entity_id: str | None
    old_data: dict[str, Any] | None
    new_data: dict[str, Any] | None
    changed_columns: list[str] | None
    actor_user_id: str | None
    actor_role: str | None
    api_key_id: uuid.UUID | None
    db_user: str
    metadata: dict[str, Any]
    txid: int


def mark(url: str) -> int:
    """The id of the last audit row so far."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select coalesce(max(id), 0) from tenancy.audit_logs").fetchone()
    assert row is not None
    return int(row[0])


def trail_since(url: str, since: int) -> list[Row]:
    """The audit rows written after ``since``, in order."""
    with psycopg.connect(url, autocommit=True) as conn:
        return [Row(*r) for r in conn.execute(TRAIL, (since,)).fetchall()]


def user_of(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("select session_user::text").fetchone()
    assert row is not None
    return str(row[0])


def project_of(roles: Roles, tenant: Tenant) -> int:
    """A project of ``tenant``, for documents to belong to."""
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, tenant.id):
        row = conn.execute(
            "insert into app.projects (name) values (%s) returning id", (f"p-{uuid.uuid4().hex}",)
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(params=[True, False], ids=["pipeline", "no-pipeline"])
def pipeline(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """The helpers with and without libpq's pipeline mode (one round trip, or several)."""
    # libpq 14 and later have pipeline mode; the machines this runs on have libpq 15.
    assert pgtenancy.context._PIPELINE, "libpq has no pipeline mode: the helpers' path is untested"
    monkeypatch.setattr(pgtenancy.context, "_PIPELINE", request.param)
    return bool(request.param)


# -- COPY FROM -----------------------------------------------------------------------------------


def test_copy_runs_in_a_helper_block(roles: Roles, make_tenant: Any, pipeline: bool) -> None:
    # The block runs in normal mode whether or not the helper opened it in pipeline mode:
    # psycopg refuses COPY in pipeline mode.
    tenant = make_tenant()
    with (
        psycopg.connect(roles.service) as conn,
        tenant_transaction(conn, tenant.id),
        conn.cursor().copy("copy (select tenancy.current_member_role()) to stdout") as copy,
    ):
        assert conn.pgconn.pipeline_status == 0
        assert list(copy.rows()) == [("service",)]


async def test_copy_runs_in_an_async_helper_block(
    roles: Roles, make_tenant: Any, pipeline: bool
) -> None:
    tenant = make_tenant()
    async with (
        await psycopg.AsyncConnection.connect(roles.service) as conn,
        atenant_transaction(conn, tenant.id),
    ):
        assert conn.pgconn.pipeline_status == 0
        async with conn.cursor().copy("copy (select 1) to stdout") as copy:
            assert [row async for row in copy.rows()] == [("1",)]


@pytest.fixture
def bulk_loader(database_url: str) -> Iterator[tuple[str, str]]:
    """(name, URL) of a login that bypasses row level security, in tenancy_service: a bulk
    loader. Dropped afterwards: roles outlive the test database, and doctor reports them."""
    name = f"t_loader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create role {} login bypassrls in role tenancy_service").format(
                sql.Identifier(name)
            )
        )
    try:
        yield name, pgtenancy.testing.as_login(database_url, name)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


def test_copy_from_is_refused_under_row_level_security_and_captured_for_bulk_loaders(
    roles: Roles, database_url: str, make_tenant: Any, bulk_loader: tuple[str, str]
) -> None:
    tenant = make_tenant()
    project = project_of(roles, tenant)
    rows = [(project, f"copied-{i}", f"secret-{i}") for i in range(3)]
    columns = "copy app.documents (project_id, title, internal_note) from stdin"

    # PostgreSQL refuses COPY FROM into a table with row level security to every role subject to
    # it (0A000), FORCE making that the owner too: no tenancy_app or tenancy_service login can.
    since = mark(database_url)
    with (
        psycopg.connect(roles.app) as conn,
        pytest.raises(errors.FeatureNotSupported, match="COPY FROM not supported with row-level"),
        authenticated_transaction(conn, token_for(tenant.id, tenant.owner)),
        conn.cursor().copy(columns) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    with (
        psycopg.connect(roles.service) as conn,
        pytest.raises(errors.FeatureNotSupported),
        tenant_transaction(conn, tenant.id),
        conn.cursor().copy(columns) as copy,
    ):
        copy.write_row(rows[0])
    assert trail_since(database_url, since) == []

    # A bulk loader that bypasses row level security (BYPASSRLS, or a superuser), in a service
    # context with request metadata: every copied row is an INSERT row of the trail.
    loader, loader_url = bulk_loader
    since = mark(database_url)
    with (
        psycopg.connect(loader_url) as conn,
        tenant_transaction(conn, tenant.id, metadata={"job": "import-42"}),
    ):
        with conn.cursor().copy(columns) as copy:
            for row in rows:
                copy.write_row(row)
        stored = {
            r[1]: r[0]
            for r in conn.execute(
                "select to_jsonb(d) - 'internal_note', title from app.documents as d"
                " where title like 'copied-%%' order by id"
            )
        }
    trail = trail_since(database_url, since)
    assert [(r.action, r.tenant_id, r.entity_type, r.table_name) for r in trail] == [
        ("INSERT", tenant.id, '"app"."documents"', "documents")
    ] * 3
    assert [r.new_data for r in trail] == [stored[f"copied-{i}"] for i in range(3)]
    assert [json.loads(r.entity_id or "") for r in trail] == [
        {"id": stored[f"copied-{i}"]["id"]} for i in range(3)
    ]
    assert {(r.actor_user_id, r.actor_role, r.db_user, json.dumps(r.metadata)) for r in trail} == {
        (None, "service", loader, '{"job": "import-42"}')
    }
    assert all("internal_note" not in (r.new_data or {}) for r in trail)
    assert len({r.txid for r in trail}) == 1

    # The superuser without a context, into the key-typed table: the tenant comes from the key.
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        keyed = conn.execute(
            "select tenancy.create_tenant(%s, 'Keyed', %s, null, %s)",
            (f"k-{uuid.uuid4().hex[:10]}", new_user_id(), "7001"),
        ).fetchone()
    assert keyed is not None
    since = mark(database_url)
    with (
        psycopg.connect(database_url) as conn,
        conn.transaction(),
        conn.cursor().copy("copy app.ledger (account_key, amount, memo) from stdin") as copy,
    ):
        copy.write_row((7001, "1.50", "copied into 7001"))
        copy.write_row((7999, "2.50", "copied into a key nobody holds"))
    trail = trail_since(database_url, since)
    assert [(r.action, r.tenant_id, (r.new_data or {})["memo"], r.actor_role) for r in trail] == [
        ("INSERT", keyed[0], "copied into 7001", None),
        ("INSERT", None, "copied into a key nobody holds", None),
    ]


# -- commits and rollbacks -------------------------------------------------------------------


def test_a_committed_transaction_has_its_rows_and_a_rolled_back_one_none(
    roles: Roles, database_url: str, make_tenant: Any
) -> None:
    tenant = make_tenant()
    project = project_of(roles, tenant)
    token = token_for(tenant.id, tenant.owner)
    since = mark(database_url)
    committed: list[str] = []
    rolled_back: list[str] = []
    with psycopg.connect(roles.app) as conn:
        for i in range(20):
            titles = [f"tx-{i}-{j}" for j in range(3)]
            if i % 2 == 0:
                with authenticated_transaction(conn, token):
                    for title in titles:
                        conn.execute(
                            "insert into app.documents (project_id, title) values (%s, %s)",
                            (project, title),
                        )
                    conn.execute(
                        "update app.documents set body = 'edited' where title = %s", (titles[0],)
                    )
                committed += titles
            else:
                with pytest.raises(ZeroDivisionError), authenticated_transaction(conn, token):
                    for title in titles:
                        conn.execute(
                            "insert into app.documents (project_id, title) values (%s, %s)",
                            (project, title),
                        )
                    1 / 0  # noqa: B018 - the block fails after its writes
                rolled_back += titles
            assert conn.info.transaction_status == TransactionStatus.IDLE
    # A transaction whose connection dies before it commits.
    with (
        psycopg.connect(roles.app) as conn,
        pytest.raises(psycopg.OperationalError),
        authenticated_transaction(conn, token),
    ):
        conn.execute(
            "insert into app.documents (project_id, title) values (%s, 'tx-killed')", (project,)
        )
        with psycopg.connect(database_url, autocommit=True) as killer:
            killer.execute("select pg_terminate_backend(%s)", (conn.info.backend_pid,))
        conn.execute("select 1")
    rolled_back.append("tx-killed")

    trail = trail_since(database_url, since)
    inserted = [(r.new_data or {})["title"] for r in trail if r.action == "INSERT"]
    updated = [(r.new_data or {})["title"] for r in trail if r.action == "UPDATE"]
    assert sorted(inserted) == sorted(committed)
    assert sorted(updated) == sorted(t for t in committed if t.endswith("-0"))
    assert not set(rolled_back) & {(r.new_data or {}).get("title") for r in trail}
    # Each committed transaction's rows share one transaction id, and no two share it.
    by_txid: dict[int, set[str]] = {}
    for r in trail:
        by_txid.setdefault(r.txid, set()).add((r.new_data or {})["title"].rsplit("-", 1)[0])
    assert sorted(len(v) for v in by_txid.values()) == [1] * 10
    assert {r.actor_user_id for r in trail} == {tenant.owner}
    assert {r.actor_role for r in trail} == {"owner"}


# -- request metadata through the helpers -----------------------------------------------------


def api_key_of(roles: Roles, tenant: Tenant) -> tuple[uuid.UUID, str]:
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, tenant.id):
        row = conn.execute(
            "select id, key from tenancy.create_api_key('metadata', 'admin', null)"
        ).fetchone()
    assert row is not None
    return row[0], row[1]


INSERT_PROJECT = "insert into app.projects (name) values (%s)"


@pytest.mark.usefixtures("domains")
def test_sync_helpers_set_the_request_metadata_of_the_audit_rows(
    roles: Roles, database_url: str, make_tenant: Any, pipeline: bool
) -> None:
    tenant = make_tenant()
    key_id, key = api_key_of(roles, tenant)
    host = f"{tenant.slug}.{BASES[0]}"
    token = token_for(tenant.id, tenant.owner)
    meta = {"request_id": "r-1", "ip": "203.0.113.9", "tags": ["a", 1, None, True], "n": 1.5}
    since = mark(database_url)
    with psycopg.connect(roles.service) as conn:
        with tenant_transaction(conn, tenant.id, metadata=meta | {"via": "tenant"}):
            conn.execute(INSERT_PROJECT, ("via-tenant",))
        with tenant_transaction(conn, tenant.id):  # the next transaction has none
            conn.execute(INSERT_PROJECT, ("via-tenant-no-metadata",))
        with tenant_transaction(conn, tenant.id, tenant.owner, metadata={"via": "tenant-user"}):
            conn.execute(INSERT_PROJECT, ("via-tenant-user",))
    with (
        ConnectionPool(roles.service, min_size=1, max_size=1, open=False) as pool,
        pool_tenant_transaction(pool, tenant.id, metadata={"via": "pool-tenant"}) as (c, _),
    ):
        c.execute(INSERT_PROJECT, ("via-pool-tenant",))
    with psycopg.connect(roles.app) as conn:
        with authenticated_transaction(conn, token, metadata={"via": "jwt"}):
            conn.execute(INSERT_PROJECT, ("via-jwt",))
        with api_key_transaction(conn, key, metadata={"via": "api-key"}):
            conn.execute(INSERT_PROJECT, ("via-api-key",))
        with request_transaction(conn, host, f"Bearer {token}", metadata={"via": "request"}):
            conn.execute(INSERT_PROJECT, ("via-request",))
    with ConnectionPool(roles.app, min_size=1, max_size=1, open=False) as pool:
        with pool_authenticated_transaction(pool, token, metadata={"via": "pool-jwt"}) as (c, _):
            c.execute(INSERT_PROJECT, ("via-pool-jwt",))
        with pool_api_key_transaction(pool, key, metadata={"via": "pool-api-key"}) as (c, _):
            c.execute(INSERT_PROJECT, ("via-pool-api-key",))
    service, app = user_of(roles.service), user_of(roles.app)
    trail = trail_since(database_url, since)
    got = [
        (
            (r.new_data or {})["name"],
            r.metadata,
            r.actor_user_id,
            r.actor_role,
            r.api_key_id,
            r.db_user,
        )
        for r in trail
        if r.entity_type == '"app"."projects"'
    ]
    assert got == [
        ("via-tenant", meta | {"via": "tenant"}, None, "service", None, service),
        ("via-tenant-no-metadata", {}, None, "service", None, service),
        ("via-tenant-user", {"via": "tenant-user"}, tenant.owner, "owner", None, service),
        ("via-pool-tenant", {"via": "pool-tenant"}, None, "service", None, service),
        ("via-jwt", {"via": "jwt"}, tenant.owner, "owner", None, app),
        ("via-api-key", {"via": "api-key"}, None, "admin", key_id, app),
        ("via-request", {"via": "request"}, tenant.owner, "owner", None, app),
        ("via-pool-jwt", {"via": "pool-jwt"}, tenant.owner, "owner", None, app),
        ("via-pool-api-key", {"via": "pool-api-key"}, None, "admin", key_id, app),
    ]
    # Authenticating with the key records its last use (once a minute): that row, written while
    # the context was set, carries the request's metadata too.
    assert [
        (r.action, r.changed_columns, r.metadata)
        for r in trail
        if r.entity_type == '"tenancy"."api_keys"'
    ] == [("UPDATE", ["last_used_at"], {"via": "api-key"})]


@pytest.mark.usefixtures("domains")
async def test_async_helpers_set_the_request_metadata_of_the_audit_rows(
    roles: Roles, database_url: str, make_tenant: Any, pipeline: bool
) -> None:
    tenant = make_tenant()
    key_id, key = api_key_of(roles, tenant)
    host = f"{tenant.slug}.{BASES[0]}"
    token = token_for(tenant.id, tenant.owner)
    since = mark(database_url)
    async with await psycopg.AsyncConnection.connect(roles.service) as conn:
        async with atenant_transaction(conn, tenant.id, metadata={"via": "atenant"}):
            await conn.execute(INSERT_PROJECT, ("via-atenant",))
        async with atenant_transaction(conn, tenant.id):
            await conn.execute(INSERT_PROJECT, ("via-atenant-no-metadata",))
    async with (
        AsyncConnectionPool(roles.service, min_size=1, max_size=1, open=False) as pool,
        apool_tenant_transaction(pool, tenant.id, metadata={"via": "apool"}) as (c, _),
    ):
        await c.execute(INSERT_PROJECT, ("via-apool-tenant",))
    async with await psycopg.AsyncConnection.connect(roles.app) as conn:
        async with aauthenticated_transaction(conn, token, metadata={"via": "ajwt"}):
            await conn.execute(INSERT_PROJECT, ("via-ajwt",))
        async with aapi_key_transaction(conn, key, metadata={"via": "aapi-key"}):
            await conn.execute(INSERT_PROJECT, ("via-aapi-key",))
        async with arequest_transaction(conn, host, f"Bearer {token}", metadata={"via": "areq"}):
            await conn.execute(INSERT_PROJECT, ("via-arequest",))
    async with (
        AsyncConnectionPool(roles.app, min_size=1, max_size=1, open=False) as pool,
        apool_authenticated_transaction(pool, token, metadata={"via": "apool-jwt"}) as (c, _),
    ):
        await c.execute(INSERT_PROJECT, ("via-apool-jwt",))
    trail = trail_since(database_url, since)
    got = [
        ((r.new_data or {})["name"], r.metadata, r.actor_role, r.api_key_id)
        for r in trail
        if r.entity_type == '"app"."projects"'
    ]
    assert got == [
        ("via-atenant", {"via": "atenant"}, "service", None),
        ("via-atenant-no-metadata", {}, "service", None),
        ("via-apool-tenant", {"via": "apool"}, "service", None),
        ("via-ajwt", {"via": "ajwt"}, "owner", None),
        ("via-aapi-key", {"via": "aapi-key"}, "admin", key_id),
        ("via-arequest", {"via": "areq"}, "owner", None),
        ("via-apool-jwt", {"via": "apool-jwt"}, "owner", None),
    ]
    assert [(r.entity_type, r.metadata) for r in trail if r.entity_type != '"app"."projects"'] == [
        ('"tenancy"."api_keys"', {"via": "aapi-key"})
    ]


@pytest.mark.parametrize(
    ("metadata", "error", "message"),
    [
        (["request_id", "r-1"], TypeError, "metadata must be a mapping, got list"),
        ('{"request_id": "r-1"}', TypeError, "metadata must be a mapping, got str"),
        ({1: "one"}, TypeError, "metadata keys must be str, got 1"),
        ({"at": uuid.UUID(int=1)}, TypeError, "metadata cannot be written as JSON"),
        ({"ratio": math.nan}, ValueError, "metadata cannot be written as JSON"),
    ],
)
def test_malformed_metadata_is_refused_before_anything_is_sent(
    roles: Roles, make_tenant: Any, metadata: Any, error: type[Exception], message: str
) -> None:
    tenant = make_tenant()
    with psycopg.connect(roles.service, autocommit=True) as conn:
        before = conn.pgconn.transaction_status, conn.info.backend_pid
        with (
            pytest.raises(error, match=message),
            tenant_transaction(conn, tenant.id, metadata=metadata),
        ):
            pytest.fail("the block must not run")
        with (
            pytest.raises(error, match=message),
            authenticated_transaction(conn, token_for(tenant.id, tenant.owner), metadata=metadata),
        ):
            pytest.fail("the block must not run")
        assert (conn.pgconn.transaction_status, conn.info.backend_pid) == before
        # Nothing reached the server: its last statement is still the connection's first.
        row = conn.execute("select query from pg_stat_activity where pid = pg_backend_pid()")
        assert "set_context" not in str(row.fetchone())


def test_metadata_the_database_refuses_rolls_back_and_a_refused_token_keeps_its_event(
    roles: Roles, database_url: str, make_tenant: Any, pipeline: bool
) -> None:
    tenant = make_tenant()
    too_large = {"user_agent": "x" * 9000}
    stranger = new_user_id()
    since = mark(database_url)
    # Metadata the database refuses fails the transaction before the context call: no block, no
    # row, and no credential looked at (so no refusal to record either).
    with psycopg.connect(roles.service) as conn:
        with (
            pytest.raises(errors.InvalidParameterValue, match="request metadata of 9018 bytes"),
            tenant_transaction(conn, tenant.id, metadata=too_large),
        ):
            pytest.fail("the block must not run")
        assert conn.info.transaction_status == TransactionStatus.IDLE
    with psycopg.connect(roles.app) as conn:
        with (
            pytest.raises(errors.InvalidParameterValue),
            authenticated_transaction(conn, token_for(tenant.id, stranger), metadata=too_large),
        ):
            pytest.fail("the block must not run")
        assert conn.info.transaction_status == TransactionStatus.IDLE
        # A refused token with metadata: its security event commits, as without.
        with (
            pytest.raises(AuthenticationRefused) as info,
            authenticated_transaction(conn, token_for(tenant.id, stranger), metadata={"r": 1}),
        ):
            pytest.fail("the block must not run")
    assert info.value.sqlstate == "TN003"
    assert trail_since(database_url, since) == []
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "select count(*) from tenancy.security_events where user_id = %s", (stranger,)
        ).fetchone()
    assert row == (1,)


# -- partitioned tenant tables ------------------------------------------------------------------

PARTITIONED_DDL = """
create schema {s};
grant usage on schema {s} to tenancy_app;
-- By range of day; the 2026 partition is itself partitioned by hash of tenant_id.
create table {s}.docs (
    tenant_id uuid not null,
    id bigint not null,
    day date not null,
    title text not null,
    secret text,
    constraint docs_pkey primary key (tenant_id, id, day)
) partition by range (day);
create table {s}.docs_2026 partition of {s}.docs
for values from ('2026-01-01') to ('2027-01-01') partition by hash (tenant_id);
create table {s}.docs_2026_h0 partition of {s}.docs_2026 for values with (modulus 2, remainder 0);
create table {s}.docs_2026_h1 partition of {s}.docs_2026 for values with (modulus 2, remainder 1);
create table {s}.docs_2027 partition of {s}.docs for values from ('2027-01-01') to ('2028-01-01');
"""


@dataclass
class Partitioned:
    schema: str
    tenant: Tenant
    leaf_2026: str  # the hash partition holding the tenant's 2026 rows

    @property
    def entity(self) -> str:
        return f'"{self.schema}"."docs"'


@pytest.fixture
def partitioned(
    roles: Roles, database_url: str, make_tenant: Any, tmp_path: Path
) -> Iterator[Partitioned]:
    schema = f"audpart_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(PARTITIONED_DDL.format(s=schema).encode())
    try:
        spec = tmp_path / "tenancy.toml"
        spec.write_text(f'[tables."{schema}.docs"]\naudit_exclude = ["secret"]\n')
        assert (
            cli_main(
                [
                    "--spec",
                    str(spec),
                    "--out",
                    str(tmp_path / "out"),
                    "--database-url",
                    database_url,
                ]
            )
            == 0
        )
        with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
            conn.execute((tmp_path / "out" / f"{schema}.docs.sql").read_bytes())
        tenant = make_tenant()
        with psycopg.connect(database_url, autocommit=True) as conn:
            # The hash partition of 2026 that holds the tenant's rows.
            leaves = [
                name
                for remainder, name in enumerate(("docs_2026_h0", "docs_2026_h1"))
                if conn.execute(
                    "select pg_catalog.satisfies_hash_partition(%s::regclass, 2, %s, %s::uuid)",
                    (f"{schema}.docs_2026", remainder, tenant.id),
                ).fetchone()
                == (True,)
            ]
        assert len(leaves) == 1
        yield Partitioned(schema, tenant, leaves[0])
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))


def test_partitioned_table_every_path_lands_with_the_roots_entity_type(
    roles: Roles, database_url: str, partitioned: Partitioned
) -> None:
    s, p = partitioned.schema, partitioned
    meta = {"request_id": "part-1"}
    steps: list[tuple[str, list[tuple[Any, ...]]]] = []

    def run(conn: Conn, statement: str, expected: list[tuple[Any, ...]]) -> None:
        """Run one statement and keep what it should have written: (action, table named,
        entity id, old (title, day), new (title, day), changed columns)."""
        steps.append((statement, expected))
        conn.execute(statement.format(s=s, leaf=p.leaf_2026).encode())

    def key(i: int, day: str) -> dict[str, Any]:
        return {"id": i, "day": day}

    since = mark(database_url)
    with (
        psycopg.connect(roles.service) as conn,
        tenant_transaction(conn, p.tenant.id, metadata=meta),
    ):
        # Through the root, into two partitions of the tree.
        run(
            conn,
            "insert into {s}.docs (id, day, title, secret) values"
            " (1, '2026-03-01', 'one', 'secret-1'), (2, '2027-03-01', 'two', 'secret-2')",
            [
                ("INSERT", "docs", key(1, "2026-03-01"), None, ("one", "2026-03-01"), None),
                ("INSERT", "docs", key(2, "2027-03-01"), None, ("two", "2027-03-01"), None),
            ],
        )
        # Directly into a leaf, into the middle level, into the 2027 partition.
        run(
            conn,
            "insert into {s}.{leaf} (id, day, title, secret)"
            " values (3, '2026-04-01', 'three', 'secret-3')",
            [
                (
                    "INSERT",
                    p.leaf_2026,
                    key(3, "2026-04-01"),
                    None,
                    ("three", "2026-04-01"),
                    None,
                )
            ],
        )
        run(
            conn,
            "insert into {s}.docs_2026 (id, day, title) values (4, '2026-05-01', 'four')",
            [("INSERT", "docs_2026", key(4, "2026-05-01"), None, ("four", "2026-05-01"), None)],
        )
        run(
            conn,
            "insert into {s}.docs_2027 (id, day, title) values (5, '2027-05-01', 'five')",
            [("INSERT", "docs_2027", key(5, "2027-05-01"), None, ("five", "2027-05-01"), None)],
        )
        # Through the root: a row moves from a hash leaf of 2026 to the 2027 partition, and
        # another stays; each old image paired with its own new image.
        run(
            conn,
            "update {s}.docs set day = case when id = 1 then day + 365 else day end,"
            " title = title || '+' where id in (1, 3)",
            [
                ("UPDATE", "docs", key(1, "2027-03-01"), ("one", "2026-03-01"),
                 ("one+", "2027-03-01"), ["day", "title"]),
                ("UPDATE", "docs", key(3, "2026-04-01"), ("three", "2026-04-01"),
                 ("three+", "2026-04-01"), ["title"]),
            ],
        )  # fmt: skip
        # Directly in a partition: only what it holds.
        run(
            conn,
            "update {s}.docs_2027 set secret = 'secret-x', title = 'five!' where id = 5",
            [("UPDATE", "docs_2027", key(5, "2027-05-01"), ("five", "2027-05-01"),
              ("five!", "2027-05-01"), ["title"])],
        )  # fmt: skip
        # MERGE through the root: an update, a delete and an insert.
        run(
            conn,
            "merge into {s}.docs as d using (values (2, 'merged'), (4, 'gone'), (6, 'added'))"
            " as m (id, what) on d.id = m.id"
            " when matched and m.what = 'merged' then update set title = 'two merged'"
            " when matched then delete"
            " when not matched then insert (id, day, title) values (m.id, '2026-06-01', 'six')",
            [
                ("UPDATE", "docs", key(2, "2027-03-01"), ("two", "2027-03-01"),
                 ("two merged", "2027-03-01"), ["title"]),
                ("DELETE", "docs", key(4, "2026-05-01"), ("four", "2026-05-01"), None, None),
                ("INSERT", "docs", key(6, "2026-06-01"), None, ("six", "2026-06-01"), None),
            ],
        )  # fmt: skip
        # ON CONFLICT through the root.
        run(
            conn,
            "insert into {s}.docs (id, day, title) values (6, '2026-06-01', 'six again'),"
            " (7, '2026-07-01', 'seven') on conflict (tenant_id, id, day)"
            " do update set title = excluded.title",
            [
                ("UPDATE", "docs", key(6, "2026-06-01"), ("six", "2026-06-01"),
                 ("six again", "2026-06-01"), ["title"]),
                ("INSERT", "docs", key(7, "2026-07-01"), None, ("seven", "2026-07-01"), None),
            ],
        )  # fmt: skip
        # DELETE directly from a leaf, then through the root.
        run(
            conn,
            "delete from {s}.{leaf} where id = 6",
            [
                (
                    "DELETE",
                    p.leaf_2026,
                    key(6, "2026-06-01"),
                    ("six again", "2026-06-01"),
                    None,
                    None,
                )
            ],
        )
        run(
            conn,
            "delete from {s}.docs where id in (1, 7)",
            [
                ("DELETE", "docs", key(1, "2027-03-01"), ("one+", "2027-03-01"), None, None),
                ("DELETE", "docs", key(7, "2026-07-01"), ("seven", "2026-07-01"), None, None),
            ],
        )
    trail = trail_since(database_url, since)

    def image(data: dict[str, Any] | None) -> tuple[str, str] | None:
        return None if data is None else (data["title"], data["day"])

    def canonical(rows: list[tuple[Any, ...]]) -> list[str]:
        return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)

    got = [
        (r.action, r.table_name, json.loads(r.entity_id or "null"), image(r.old_data),
         image(r.new_data), r.changed_columns)
        for r in trail
    ]  # fmt: skip
    want = [row for _, rows in steps for row in rows]
    assert len(got) == len(want), "every changed row exactly once: neither missed nor twice"
    assert canonical(got) == canonical(want)
    assert {r.entity_type for r in trail} == {p.entity}
    assert {(r.tenant_id, r.actor_role, json.dumps(r.metadata)) for r in trail} == {
        (p.tenant.id, "service", '{"request_id": "part-1"}')
    }
    assert not [
        r for r in trail if "secret" in (r.old_data or {}) or "secret" in (r.new_data or {})
    ]
    assert not [r for r in trail if "secret" in (r.changed_columns or [])]
    # The statements' own order: each statement's rows follow the previous statement's.
    assert [r.action for r in trail][:5] == ["INSERT"] * 5


def test_partitioned_table_truncate_is_refused_on_the_root_and_every_partition(
    database_url: str, partitioned: Partitioned
) -> None:
    s = partitioned.schema
    for table in ("docs", "docs_2026", partitioned.leaf_2026, "docs_2027"):
        with psycopg.connect(database_url) as conn:
            with pytest.raises(psycopg.Error) as info:
                conn.execute(f"truncate {s}.{table}")
            assert info.value.sqlstate == "TN015", table


def test_add_member_is_audited_in_pgtenancy_own_tables(
    roles: Roles, database_url: str, make_tenant: Any
) -> None:
    # pgtenancy's own tenant tables carry the generated triggers too: a membership is a row.
    tenant = make_tenant()
    since = mark(database_url)
    user = add_member(roles, tenant, "viewer")
    trail = trail_since(database_url, since)
    assert [(r.action, r.entity_type, (r.new_data or {}).get("user_id")) for r in trail] == [
        ("INSERT", '"tenancy"."memberships"', user)
    ]
