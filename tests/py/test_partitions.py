"""Partitions and inheritance children of tenant tables get the table's row level security.

Queried through the parent, their rows follow the parent's policies; queried directly, a
partition or child follows only its own. The generated policy file secures every partition and
child that exists when it is generated (recursively), and refuses to apply (TN007) when the
database holds one it does not cover. After a schema-wide GRANT, as operators do, direct access
shows only the current tenant's rows and refuses writes without a context.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgtenancy.generator import cli_main
from psycopg import sql

Conn = psycopg.Connection[Any]

SCHEMA_DDL = """
create schema {s};
grant usage on schema {s} to tenancy_app;

-- Range-partitioned by day; the 2026 partition is itself partitioned by hash of tenant_id.
create table {s}.docs (
    tenant_id uuid not null,
    id bigint not null,
    day date not null,
    title text not null,
    constraint docs_pkey primary key (tenant_id, id, day)
) partition by range (day);
create table {s}.docs_2026 partition of {s}.docs
for values from ('2026-01-01') to ('2027-01-01') partition by hash (tenant_id);
create table {s}.docs_2026_h0 partition of {s}.docs_2026 for values with (modulus 2, remainder 0);
create table {s}.docs_2026_h1 partition of {s}.docs_2026 for values with (modulus 2, remainder 1);
create table {s}.docs_2027 partition of {s}.docs for values from ('2027-01-01') to ('2028-01-01');

-- Classic inheritance: events, and archived events as a child table.
create table {s}.events (
    tenant_id uuid not null,
    id bigint not null,
    what text not null,
    constraint events_pkey primary key (tenant_id, id)
);
create table {s}.events_archive (
    archived_at timestamptz not null default now(),
    constraint events_archive_pkey primary key (tenant_id, id)
) inherits ({s}.events);
"""

SPEC = '[tables."{s}.docs"]\n[tables."{s}.events"]\n'


@dataclass
class Setup:
    url: str
    schema: str
    out: Path
    a: uuid.UUID
    b: uuid.UUID

    def q(self, name: str) -> str:
        return f"{self.schema}.{name}"


def _generate(url: str, directory: Path, spec: str, *extra: str) -> int:
    (directory / "tenancy.toml").write_text(spec)
    return cli_main(
        ["--spec", str(directory / "tenancy.toml"), "--out", str(directory / "out"),
         "--database-url", url, *extra]
    )  # fmt: skip


def _apply(url: str, path: Path) -> None:
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute(path.read_bytes())


@pytest.fixture
def setup(database_url: str, tmp_path: Path) -> Iterator[Setup]:
    schema = f"part_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SCHEMA_DDL.format(s=schema).encode())
        conn.execute("set role tenancy_admin")
        ids = [
            conn.execute(
                "select tenancy.create_tenant(%s, %s, gen_random_uuid()::text)",
                (f"part-{label}-{uuid.uuid4().hex[:8]}", label.upper()),
            ).fetchone()[0]  # type: ignore[index]
            for label in ("a", "b")
        ]
        conn.execute("reset role")
        # Rows of both tenants in every partition and in the child, written by the superuser.
        for n, tenant in enumerate(ids):
            for day in ("2026-03-01", "2026-09-01", "2027-03-01"):
                conn.execute(
                    f"insert into {schema}.docs values (%s, %s, %s, %s)",
                    (tenant, n * 10 + len(day), day, f"doc of {'AB'[n]}"),
                )
            conn.execute(
                f"insert into {schema}.events values (%s, 1, %s)", (tenant, f"event of {'AB'[n]}")
            )
            conn.execute(
                f"insert into {schema}.events_archive (tenant_id, id, what) values (%s, 2, %s)",
                (tenant, f"archived event of {'AB'[n]}"),
            )
    try:
        assert _generate(database_url, tmp_path, SPEC.format(s=schema)) == 0
        yield Setup(database_url, schema, tmp_path / "out", ids[0], ids[1])
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))


def _apply_all(s: Setup) -> None:
    for name in ("docs", "events"):
        _apply(s.url, s.out / f"{s.q(name)}.sql")
    # What operators do, and what made partitions leak: a schema-wide grant.
    with psycopg.connect(s.url, autocommit=True) as conn:
        conn.execute(
            f"grant select, insert, update, delete on all tables in schema {s.schema} "
            "to tenancy_app"
        )


def _tenants_seen(conn: Conn, relation: str) -> set[Any]:
    return {r[0] for r in conn.execute(f"select distinct tenant_id from {relation}")}


def _in_context(s: Setup, tenant: uuid.UUID) -> Conn:
    conn = psycopg.connect(s.url)
    conn.execute("set local role tenancy_service")
    conn.execute("select tenancy.set_context(%s)", (tenant,))
    conn.execute("set local role tenancy_app")
    return conn


LEAVES = ("docs_2026", "docs_2026_h0", "docs_2026_h1", "docs_2027", "events_archive")


def test_every_partition_and_child_is_secured(setup: Setup) -> None:
    s = setup
    _apply_all(s)
    with psycopg.connect(s.url) as conn:
        rows = conn.execute(
            "select c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "(select count(*) from pg_policy as p where p.polrelid = c.oid) "
            "from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relkind in ('r', 'p') order by c.relname",
            (s.schema,),
        ).fetchall()
    assert rows == [(name, True, True, 4) for name in sorted(("docs", "events", *LEAVES))]


def test_direct_access_without_context_sees_nothing_and_writes_nothing(setup: Setup) -> None:
    s = setup
    _apply_all(s)
    with psycopg.connect(s.url) as conn:
        conn.execute("set local role tenancy_app")
        for name in ("docs", "events", *LEAVES):
            assert _tenants_seen(conn, s.q(name)) == set(), name
    for name, columns, values in (
        ("docs_2027", "(tenant_id, id, day, title)", "(%s, 99, '2027-06-01', 'x')"),
        ("events_archive", "(tenant_id, id, what)", "(%s, 99, 'x')"),
    ):
        for statement, params in (
            (f"insert into {s.q(name)} {columns} values {values}", (s.b,)),
            (f"update {s.q(name)} set id = id", ()),
            (f"delete from {s.q(name)}", ()),
        ):
            with psycopg.connect(s.url) as conn:
                conn.execute("set local role tenancy_app")
                with pytest.raises(psycopg.Error) as caught:
                    conn.execute(statement, params)
                assert caught.value.sqlstate == "TN001", statement
    with psycopg.connect(s.url) as conn:
        counted = conn.execute(
            f"select (select count(*) from {s.q('docs')}), (select count(*) from {s.q('events')})"
        ).fetchone()
    assert counted == (6, 4), "nothing was written or removed"


def test_the_rightful_tenant_reads_and_writes_through_parent_and_partition(setup: Setup) -> None:
    s = setup
    _apply_all(s)
    with psycopg.connect(s.url) as conn:
        all_tenants = {name: _tenants_seen(conn, s.q(name)) for name in LEAVES}
    with _in_context(s, s.a) as conn:
        for name in ("docs", "events", *LEAVES):
            # Each tenant's 2026 rows sit in one of the two hash partitions.
            expected = {s.a} if not name.startswith("docs_2026_h") else {s.a} & all_tenants[name]
            assert _tenants_seen(conn, s.q(name)) == expected, name
        assert conn.execute(f"select count(*) from {s.q('docs_2027')}").fetchone() == (1,)
        assert conn.execute(f"select count(*) from {s.q('events')}").fetchone() == (2,)
        conn.execute(
            f"insert into {s.q('docs_2027')} (id, day, title) values (100, '2027-05-01', 'direct')"
        )
        conn.execute(
            f"insert into {s.q('docs')} (id, day, title) values (101, '2026-05-01', 'via parent')"
        )
        conn.execute(f"insert into {s.q('events_archive')} (id, what) values (100, 'direct')")
        conn.execute(f"update {s.q('docs_2026_h0')} set title = title || '!'")
        conn.execute(f"update {s.q('docs_2026_h1')} set title = title || '!'")
        conn.execute(f"update {s.q('events_archive')} set what = 'edited' where id = 100")
        assert conn.execute(
            f"select count(*) from {s.q('docs')} where tenant_id = %s", (s.a,)
        ).fetchone() == (5,)
        conn.commit()
    with _in_context(s, s.a) as conn:
        # Another tenant's row cannot be written into a partition or child directly...
        for statement in (
            f"insert into {s.q('docs_2027')} values (%s, 200, '2027-05-01', 'planted')",
            f"insert into {s.q('events_archive')} (tenant_id, id, what) values (%s, 200, 'x')",
        ):
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(statement, (s.b,))
            assert caught.value.sqlstate == "42501", statement
            conn.rollback()
            conn.execute("set local role tenancy_service")
            conn.execute("select tenancy.set_context(%s)", (s.a,))
            conn.execute("set local role tenancy_app")
        # ...and no row moves to another tenant through one.
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(f"update {s.q('events_archive')} set tenant_id = %s", (s.b,))
        assert caught.value.sqlstate == "TN006"
    with psycopg.connect(s.url) as conn:
        per_tenant = conn.execute(
            f"select tenant_id, count(*) from {s.q('docs')} group by 1 order by 2"
        ).fetchall()
        assert sorted(per_tenant) == sorted([(s.a, 5), (s.b, 3)])
        assert conn.execute(
            f"select count(*) from {s.q('events')} where tenant_id = %s", (s.b,)
        ).fetchone() == (2,)


def test_a_later_partition_or_child_is_flagged_until_regenerated(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = setup
    _apply_all(s)
    stale = (s.out / f"{s.q('docs')}.sql").read_bytes()
    with psycopg.connect(s.url, autocommit=True) as conn:
        conn.execute(
            f"create table {s.q('docs_2028')} partition of {s.q('docs')} "
            "for values from ('2028-01-01') to ('2029-01-01')"
        )
        conn.execute(f"create table {s.q('events_more')} () inherits ({s.q('events')})")
    # generate --check reports both policy files as stale...
    capsys.readouterr()
    assert _generate(s.url, tmp_path, SPEC.format(s=s.schema), "--check") == 1
    report = capsys.readouterr().out
    assert f"stale: {s.out / (s.q('docs') + '.sql')}" in report
    assert f"stale: {s.out / (s.q('events') + '.sql')}" in report
    # ...and the old files refuse to apply, naming the uncovered partition and child.
    for name, child, kind in (
        ("docs", "docs_2028", "partition"),
        ("events", "events_more", "inheritance child"),
    ):
        with pytest.raises(psycopg.Error) as caught:
            _apply(s.url, s.out / f"{s.q(name)}.sql")
        assert caught.value.sqlstate == "TN007"
        assert (
            f"{kind} {s.q(child)} of {s.q(name)} has no row level security from this policy "
            "file; fix: run pgtenancy generate and apply the new file" in str(caught.value)
        )
    assert (s.out / f"{s.q('docs')}.sql").read_bytes() == stale
    # Regenerated, they cover the newcomers.
    assert _generate(s.url, tmp_path, SPEC.format(s=s.schema)) == 0
    _apply_all(s)
    with psycopg.connect(s.url) as conn:
        rows = conn.execute(
            "select relname, relrowsecurity and relforcerowsecurity from pg_class "
            "where oid in (%s::regclass, %s::regclass) order by 1",
            (s.q("docs_2028"), s.q("events_more")),
        ).fetchall()
    assert rows == [("docs_2028", True), ("events_more", True)]
    with _in_context(s, s.a) as conn:
        conn.execute(f"insert into {s.q('events_more')} (id, what) values (7, 'new child')")
        assert _tenants_seen(conn, s.q("events_more")) == {s.a}
