"""``pgtenancy tenant move``: move one tenant's rows, online, to another placement.

The rows travel by PostgreSQL's logical replication with row filters: a publication on the
source lists every table the move carries (``tenancy.move_tables``) with ``WHERE (tenant column =
the tenant)``, and a subscription on the destination copies them (``copy_data``) and then
applies every later change in commit order. One mechanism gives the initial copy and the
catch-up from the replication slot's consistent point, so no change falls between a snapshot
and a recorded position. Then:

1. the tenant's writes are fenced on the source (``tenancy.fence_tenant``: inside the database,
   whoever the client; reads go on);
2. a marker row is written on the source and awaited on the destination: replication applies in
   commit order, so once it has arrived every write committed before the fence has too;
3. the connector secrets (no tenant column, not replicated) are copied, the sequences the
   tables draw from are raised on the destination to at least the source's values, and every
   table's row count and order-independent checksum (``tenancy.move_checksums``) are compared
   on both sides;
4. the placement flips (``tenancy.set_tenant_placement``, bumping the epoch routers cache by)
   and the destination's fence is lifted: the fence lasted from step 1 to here;
5. the replication objects are dropped, and the report goes into both audit trails.

The source keeps its rows, fenced, for the rollback window (``--keep``); ``--release`` then
deletes them in batches (``tenancy.release_moved_tenant``, offboarding's code path). Every step
is idempotent and its progress is recorded on the source (``tenancy.tenant_moves``): the same
command resumes after a crash. ``--abort`` undoes a move that has not flipped.

The move runs as a superuser on both databases (``CREATE SUBSCRIPTION`` needs one), and the
source needs ``wal_level = logical``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

Conn = psycopg.Connection[Any]
Say = Callable[[str], None]

#: Tables whose rows a move compares but that are not tenant data (written by the move itself).
MARKERS = "tenancy.move_markers"


class MoveError(Exception):
    """The move cannot go on as asked (exit status 2); what was done is recorded and resumable."""


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    slug: str
    status: str
    key: str | None
    placement: str


@dataclass
class MoveOptions:
    source_url: str
    destination_url: str
    destination: str
    #: How the destination server reaches the source (the subscription's conninfo); by default
    #: ``source_url``.
    source_conninfo: str | None = None
    keep: timedelta = timedelta(days=7)
    fence_wait: float = 5.0
    fence_attempts: int = 12
    copy_timeout: float = 3600.0
    drain_timeout: float = 30.0
    batch_rows: int = 10000


@dataclass
class Report:
    move_id: uuid.UUID
    tenant_id: uuid.UUID
    source: str
    destination: str
    state: str = "copying"
    times: dict[str, float] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    fence_ms: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "move_id": str(self.move_id),
            "tenant_id": str(self.tenant_id),
            "source": self.source,
            "destination": self.destination,
            "state": self.state,
            "rows": self.rows,
            "fence_ms": None if self.fence_ms is None else round(self.fence_ms, 1),
            "times_s": {k: round(v, 3) for k, v in self.times.items()},
            "tables": self.tables,
            "sequences": self.sequences,
        }


def _quiet(_: str) -> None:
    pass


def replication_name(move_id: uuid.UUID) -> str:
    """The publication's, subscription's and slot's name for a move."""
    return "pgtenancy_move_" + move_id.hex[:16]


def find_tenant(conn: Conn, ref: str) -> Tenant:
    """The tenant a command line names: its id (a uuid) or its slug."""
    try:
        tenant_id: uuid.UUID | None = uuid.UUID(ref.strip())
    except ValueError:
        tenant_id = None
    query = "select id, slug, status, key, placement from tenancy.tenants where "
    row = conn.execute(
        query + ("id = %s" if tenant_id is not None else "slug = %s"),
        (tenant_id if tenant_id is not None else ref.strip(),),
    ).fetchone()
    if row is None:
        raise MoveError(f"no tenant {ref!r} (a tenant id or slug)")
    return Tenant(row[0], str(row[1]), str(row[2]), row[3], str(row[4]))


def _where(table: dict[str, Any]) -> str:
    """A move table's predicate with its server-side parameter ($1) as psycopg's placeholder."""
    return str(table["predicate"]).replace("%", "%%").replace("$1", "%s")


def _here(conn: Conn) -> str:
    row = conn.execute("select name from tenancy.placements where here").fetchone()
    if row is None:
        raise MoveError("no placement is marked as this database (tenancy.configure_placement)")
    return str(row[0])


def _one(conn: Conn, query: str | sql.SQL | sql.Composed, params: Any = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def _open_move(conn: Conn, tenant_id: uuid.UUID) -> dict[str, Any] | None:
    row = conn.execute(
        "select id, destination, state, report from tenancy.tenant_moves"
        " where tenant_id = %s and state <> all(array['done', 'aborted'])",
        (tenant_id,),
    ).fetchone()
    if row is None:
        return None
    return {"id": row[0], "destination": row[1], "state": row[2], "report": row[3]}


def _set_state(conn: Conn, move_id: uuid.UUID, state: str, **columns: Any) -> None:
    sets: list[sql.Composable] = [sql.SQL("state = %s"), sql.SQL("updated_at = clock_timestamp()")]
    values: list[Any] = [state]
    for name, value in columns.items():
        sets.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
        values.append(value)
    conn.execute(
        sql.SQL("update tenancy.tenant_moves set {} where id = %s").format(
            sql.SQL(", ").join(sets)
        ),
        (*values, move_id),
    )


# -- pre-flight ---------------------------------------------------------------------------------


def _columns(conn: Conn, table: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "select a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)"
        " from pg_catalog.pg_attribute as a"
        " where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped"
        " order by a.attnum",
        (table,),
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def _migrations(conn: Conn) -> list[str]:
    rows = conn.execute(
        "select migration_id from tenancy_migrations._yoyo_migration"
        " where migration_id ~ '^0[0-9]{3}_' order by 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def preflight(src: Conn, dst: Conn, tenant: Tenant, options: MoveOptions) -> list[str]:
    """Every reason the move cannot start (empty: it can). Reads only."""
    problems: list[str] = []
    here = _here(src)
    if tenant.status == "deleted":
        problems.append(f"tenant {tenant.slug} is deleted")
    if tenant.placement != here:
        problems.append(
            f"tenant {tenant.slug} is placed in {tenant.placement}, not in this database ({here})"
        )
    if options.destination == here:
        problems.append(f"placement {options.destination} is this database already")
    placement = src.execute(
        "select state from tenancy.placements where name = %s", (options.destination,)
    ).fetchone()
    if placement is None:
        problems.append(
            f"placement {options.destination} is unknown here (tenancy.configure_placement)"
        )
    elif placement[0] != "active":
        problems.append(f"placement {options.destination} is {placement[0]}: it takes no tenants")
    dst_here = _one(dst, "select name from tenancy.placements where here")
    if dst_here != options.destination:
        problems.append(
            f"the destination database is placement {dst_here}, not {options.destination}"
        )
    region = _one(
        src, "select region from tenancy.tenant_settings where tenant_id = %s", (tenant.id,)
    )
    dst_region = _one(
        dst, "select region from tenancy.placements where name = %s", (options.destination,)
    )
    if region is not None and dst_region is not None and region != dst_region:
        problems.append(
            f"tenant {tenant.slug} is in region {region} but placement {options.destination} "
            f"is in region {dst_region} (data residency)"
        )
    if _one(src, "show wal_level") != "logical":
        problems.append(
            "the source has wal_level = " + str(_one(src, "show wal_level")) + ", not logical"
        )
    if _migrations(src) != _migrations(dst):
        problems.append(
            "the destination is not migrated to the source's version (pgtenancy migrate)"
        )
    issuers = _one(
        src, "select count(*) from tenancy.jwt_issuers where tenant_id = %s", (tenant.id,)
    )
    if issuers:
        problems.append(
            f"tenant {tenant.slug} has {issuers} token issuer(s) of its own: register them on the "
            "destination and remove them here first (moves do not carry them)"
        )
    existing = dst.execute(
        "select fence_reason from tenancy.tenants where id = %s or slug = %s"
        " or (key is not null and key = %s)",
        (tenant.id, tenant.slug, tenant.key),
    ).fetchall()
    if any(r[0] is None or "move " not in str(r[0]) for r in existing):
        problems.append(
            f"the destination has a tenant with this id, slug or key already ({tenant.slug})"
        )
    for table in _move_tables(src, tenant.id):
        name = table["table_name"]
        if _one(dst, "select to_regclass(%s) is null", (name,)):
            problems.append(f"table {name} does not exist on the destination")
            continue
        if _columns(src, name) != _columns(dst, name):
            problems.append(f"table {name} has other columns on the destination")
        info = src.execute(
            "select c.relpersistence, c.relreplident,"
            " exists (select from pg_catalog.pg_index as i"
            "   where i.indrelid = c.oid and (i.indisprimary or i.indisreplident)"
            "   and (select a.attnum from pg_catalog.pg_attribute as a"
            "        where a.attrelid = c.oid and a.attname = %s) = any(i.indkey::int2[])"
            "   and ((c.relreplident = 'd' and i.indisprimary)"
            "        or (c.relreplident = 'i' and i.indisreplident)))"
            " from pg_catalog.pg_class as c where c.oid = %s::regclass",
            (table["tenant_column"], name),
        ).fetchone()
        assert info is not None
        persistence, identity, covered = info
        if persistence != "p":
            problems.append(f"table {name} is unlogged or temporary: logical replication skips it")
        if table["replicated"] and identity != "f" and not covered:
            problems.append(
                f"table {name}: its replica identity does not hold the tenant column "
                f"{table['tenant_column']} (a row filter needs it for updates and deletes)"
            )
        lobs = _one(
            src,
            "select count(*) from pg_catalog.pg_attribute as a"
            " where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped"
            " and a.atttypid in ('pg_catalog.oid'::regtype, coalesce(to_regtype('lo'), 0))",
            (name,),
        )
        if lobs:
            problems.append(
                f"table {name} has large object columns: moves do not carry large objects"
            )
    return problems


def _move_tables(conn: Conn, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = conn.execute(
        "select table_name, tenant_column::text, predicate, value, replicated, filter"
        " from tenancy.move_tables(%s) order by table_name",
        (tenant_id,),
    ).fetchall()
    keys = ("table_name", "tenant_column", "predicate", "value", "replicated", "filter")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def _sequences(conn: Conn, tables: list[str]) -> list[str]:
    """The sequences the tables draw from: identity and serial columns' own, and those a column
    default calls nextval() on."""
    rows = conn.execute(
        "select s.oid::regclass::text"
        " from pg_catalog.pg_depend as d"
        " inner join pg_catalog.pg_class as s on s.oid = d.objid and s.relkind = 'S'"
        " where d.classid = 'pg_catalog.pg_class'::regclass"
        " and d.refclassid = 'pg_catalog.pg_class'::regclass and d.deptype in ('a', 'i')"
        " and d.refobjid = any(%s::regclass[])"
        " union"
        " select s.oid::regclass::text"
        " from pg_catalog.pg_depend as d"
        " inner join pg_catalog.pg_attrdef as ad on ad.oid = d.objid"
        " inner join pg_catalog.pg_class as s on s.oid = d.refobjid and s.relkind = 'S'"
        " where d.classid = 'pg_catalog.pg_attrdef'::regclass and ad.adrelid = any(%s::regclass[])"
        " order by 1",
        (tables, tables),
    ).fetchall()
    return [str(r[0]) for r in rows]


# -- the move -------------------------------------------------------------------------------------


def _connect(url: str) -> Conn:
    return psycopg.connect(url, autocommit=True)


def _prepare_destination(
    src: Conn, dst: Conn, tenant: Tenant, move_id: uuid.UUID, source: str
) -> None:
    """The tenant's row on the destination, fenced until the flip (no client writes there)."""
    reason = f"move {move_id} from {source}"
    found = _one(dst, "select fence_reason from tenancy.tenants where id = %s", (tenant.id,))
    if found is not None:
        if str(found) != reason:
            raise MoveError(
                f"the destination's tenant {tenant.slug} belongs to another move: {found}"
            )
        return
    row = src.execute(
        "select id, slug, name, status, key, created_at from tenancy.tenants where id = %s",
        (tenant.id,),
    ).fetchone()
    assert row is not None
    with dst.transaction():
        # Its triggers would announce a new tenant; this one only arrives.
        dst.execute("set local session_replication_role = replica")
        dst.execute(
            "insert into tenancy.tenants"
            " (id, slug, name, status, key, created_at, placement, fenced_at, fence_reason)"
            " values (%s, %s, %s, %s, %s, %s, (select name from tenancy.placements where here),"
            " clock_timestamp(), %s)",
            (*row, reason),
        )


def _create_replication(
    src: Conn, dst: Conn, name: str, tables: list[dict[str, Any]], conninfo: str
) -> None:
    if not _one(
        src, "select exists (select from pg_catalog.pg_publication where pubname = %s)", (name,)
    ):
        items = sql.SQL(", ").join(
            sql.SQL("table {} where ({})").format(
                sql.SQL(t["table_name"]),  # schema-qualified, quoted by format('%I.%I')
                sql.SQL(t["filter"]),
            )
            for t in tables
            if t["replicated"]
        )
        src.execute(
            sql.SQL(
                "create publication {} for {} with (publish = 'insert, update, delete',"
                " publish_via_partition_root = true)"
            ).format(sql.Identifier(name), items)
        )
    if not _one(
        dst, "select exists (select from pg_catalog.pg_subscription where subname = %s)", (name,)
    ):
        dst.execute(
            sql.SQL(
                "create subscription {} connection {} publication {}"
                " with (copy_data = true, slot_name = {}, synchronous_commit = 'off')"
            ).format(
                sql.Identifier(name),
                sql.Literal(conninfo),
                sql.Identifier(name),
                sql.Literal(name),
            )
        )


def _drop_replication(src: Conn, dst: Conn, name: str) -> None:
    if _one(
        dst, "select exists (select from pg_catalog.pg_subscription where subname = %s)", (name,)
    ):
        dst.execute(sql.SQL("alter subscription {} disable").format(sql.Identifier(name)))
        # Drops the slot on the source too.
        dst.execute(sql.SQL("drop subscription {}").format(sql.Identifier(name)))
    src.execute(sql.SQL("drop publication if exists {}").format(sql.Identifier(name)))
    # A slot left by a subscription dropped without reaching the source.
    src.execute(
        "select pg_catalog.pg_drop_replication_slot(slot_name) from pg_catalog.pg_replication_slots"
        " where slot_name = %s and not active",
        (name,),
    )


def _wait_synced(dst: Conn, name: str, timeout: float, say: Say) -> None:
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        row = dst.execute(
            "select count(*) filter (where r.srsubstate = 'r'), count(*)"
            " from pg_catalog.pg_subscription_rel as r"
            " inner join pg_catalog.pg_subscription as s on s.oid = r.srsubid"
            " where s.subname = %s",
            (name,),
        ).fetchone()
        assert row is not None
        ready, total = int(row[0]), int(row[1])
        line = f"initial copy: {ready}/{total} tables ready"
        if line != shown:
            say(line)
            shown = line
        if total > 0 and ready == total:
            return
        if time.monotonic() > deadline:
            raise MoveError(
                f"the initial copy did not finish in {timeout:.0f} s ({line});"
                " run again to wait more"
            )
        time.sleep(0.1)


def _marker(
    src: Conn, dst: Conn, move_id: uuid.UUID, tenant_id: uuid.UUID, timeout: float
) -> float:
    """Write a marker on the source and wait for it on the destination; seconds waited."""
    with src.transaction():
        # Flushed at commit whatever the server's default: the walsender sends flushed WAL only.
        src.execute("set local synchronous_commit = on")
        number = int(
            _one(
                src,
                "insert into tenancy.move_markers (move_id, tenant_id, marker)"
                " select %s, %s, coalesce(max(marker), 0) + 1 from tenancy.move_markers"
                " where tenant_id = %s and move_id = %s returning marker",
                (move_id, tenant_id, tenant_id, move_id),
            )
        )
    started = time.monotonic()
    while not _one(
        dst,
        "select exists (select from tenancy.move_markers where tenant_id = %s and move_id = %s"
        " and marker = %s)",
        (tenant_id, move_id, number),
    ):
        if time.monotonic() - started > timeout:
            raise MoveError(f"replication did not deliver marker {number} in {timeout:.0f} s")
        time.sleep(0.002)
    return time.monotonic() - started


def _oldest_transaction(src: Conn) -> float:
    """Seconds the oldest other client transaction of the source database has been running."""
    return float(
        _one(
            src,
            "select coalesce(extract(epoch from clock_timestamp() - min(xact_start)), 0)"
            " from pg_catalog.pg_stat_activity"
            " where backend_type = 'client backend' and datname = current_database()"
            " and pid <> pg_backend_pid() and xact_start is not null",
        )
    )


def fence(
    src: Conn, tenant_id: uuid.UUID, reason: str, options: MoveOptions, say: Say = _quiet
) -> None:
    """Fence the tenant's writes on the source and wait until the fence is complete: every
    transaction running when it committed (which may hold a context set before it) has ended.
    Starts at a quiet moment (no transaction older than half the wait; looked for during twelve
    times the wait at most, then it goes ahead); a fence not complete within
    ``fence_wait`` seconds is lifted and tried again, so writes are never refused for long."""
    for attempt in range(1, options.fence_attempts + 1):
        quiet_until = time.monotonic() + options.fence_wait * 12
        while _oldest_transaction(src) > options.fence_wait / 2:
            if time.monotonic() > quiet_until:
                break
            time.sleep(0.05)
        src.execute("select tenancy.fence_tenant(%s, %s)", (tenant_id, reason))
        watched = _one(src, "select tenancy.fence_transactions()")
        deadline = time.monotonic() + options.fence_wait
        pending: list[Any] = []
        while True:
            pending = src.execute(
                "select pid, application_name from tenancy.fence_pending(%s)", (watched,)
            ).fetchall()
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.002)
        if not pending:
            return
        src.execute("select tenancy.unfence_tenant(%s)", (tenant_id,))
        say(
            f"fence: {len(pending)} transaction(s) begun before it still running after "
            f"{options.fence_wait:g} s (pids {', '.join(str(p[0]) for p in pending)}); lifted, "
            f"attempt {attempt}/{options.fence_attempts}"
        )
        time.sleep(min(5.0, 0.5 * attempt))
    raise MoveError(
        f"could not fence tenant {tenant_id}: transactions kept running past"
        f" {options.fence_wait:g} s;"
        " the tenant writes on the source as before"
    )


def _copy_unreplicated(src: Conn, dst: Conn, tenant: Tenant, tables: list[dict[str, Any]]) -> None:
    for table in tables:
        if table["replicated"]:
            continue
        name = table["table_name"]
        columns = [c for c, _ in _columns(src, name)]
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        rows = src.execute(
            sql.SQL("select {} from {} as t where {}").format(
                cols, sql.SQL(name), sql.SQL(_where(table))
            ),
            (table["value"],),
        ).fetchall()
        with dst.transaction():
            dst.execute("set local session_replication_role = replica")
            dst.execute(
                sql.SQL("delete from {} as t where {}").format(
                    sql.SQL(name), sql.SQL(_where(table))
                ),
                (table["value"],),
            )
            if rows:
                with dst.cursor() as cur:
                    cur.executemany(
                        sql.SQL("insert into {} ({}) values ({})").format(
                            sql.SQL(name),
                            cols,
                            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                        ),
                        rows,
                    )


def _raise_sequences(src: Conn, dst: Conn, tables: list[str]) -> dict[str, int]:
    done: dict[str, int] = {}
    for seq in _sequences(src, tables):
        row = src.execute(
            sql.SQL("select last_value, is_called from {}").format(sql.SQL(seq))
        ).fetchone()
        assert row is not None
        if not row[1]:
            continue  # nothing drawn on the source
        last = int(row[0])
        value = _one(
            dst,
            sql.SQL(
                "select pg_catalog.setval(%s::regclass, greatest(%s, (select case when is_called"
                " then last_value else last_value - 1 end from {})), true)"
            ).format(sql.SQL(seq)),
            (seq, last),
        )
        done[seq] = int(value)
    return done


def _checksums(url: str, tenant_id: uuid.UUID, out: dict[str, tuple[int, str]]) -> None:
    with _connect(url) as conn:
        for name, count, checksum in conn.execute(
            "select table_name, row_count, checksum::text || ' ' || method"
            " from tenancy.move_checksums(%s)",
            (tenant_id,),
        ).fetchall():
            out[str(name)] = (int(count), str(checksum))


def verify(
    options: MoveOptions, tenant_id: uuid.UUID
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Counts and checksums per table, computed on both sides at once; and the differences."""
    left: dict[str, tuple[int, str]] = {}
    right: dict[str, tuple[int, str]] = {}
    worker = threading.Thread(target=_checksums, args=(options.destination_url, tenant_id, right))
    worker.start()
    _checksums(options.source_url, tenant_id, left)
    worker.join()
    tables: dict[str, dict[str, Any]] = {}
    differ: list[str] = []
    for name in sorted(set(left) | set(right)):
        a, b = left.get(name), right.get(name)
        if a is not None:
            tables[name] = {"rows": a[0], "checksum": a[1]}
        if a != b:
            differ.append(f"{name}: source {a}, destination {b}")
    return tables, differ


def move(tenant_ref: str, options: MoveOptions, say: Say = _quiet) -> Report:
    """Move the tenant (or resume its move) up to the flip; returns the report."""
    with _connect(options.source_url) as src, _connect(options.destination_url) as dst:
        tenant = find_tenant(src, tenant_ref)
        source = _here(src)
        started = time.monotonic()
        current = _open_move(src, tenant.id)
        if current is not None and current["destination"] != options.destination:
            raise MoveError(
                f"tenant {tenant.slug} is being moved to {current['destination']} already"
                " (finish it, or --abort it)"
            )
        if current is None:
            problems = preflight(src, dst, tenant, options)
            if problems:
                raise MoveError("pre-flight refused the move:\n  - " + "\n  - ".join(problems))
            move_id = uuid.UUID(
                str(
                    _one(
                        src,
                        "insert into tenancy.tenant_moves (tenant_id, source, destination)"
                        " values (%s, %s, %s) returning id",
                        (tenant.id, source, options.destination),
                    )
                )
            )
            src.execute(
                "select tenancy.log_move(%s, 'tenant.move_started', %s)",
                (tenant.id, json.dumps({"move_id": str(move_id), "to": options.destination})),
            )
            state = "copying"
            say(f"move {move_id}: tenant {tenant.slug} from {source} to {options.destination}")
        else:
            move_id, state = current["id"], current["state"]
            say(f"move {move_id}: resuming tenant {tenant.slug} ({state})")
        report = Report(move_id, tenant.id, source, options.destination, state)
        if state in ("flipped", "cleaning"):
            report.tables = dict((current or {}).get("report", {}).get("tables", {}))
            say(
                f"tenant {tenant.slug} is on {options.destination} already;"
                " --release deletes the source's rows"
            )
            return report
        name = replication_name(move_id)
        tables = _move_tables(src, tenant.id)
        names = [t["table_name"] for t in tables]

        t0 = time.monotonic()
        _prepare_destination(src, dst, tenant, move_id, source)
        _create_replication(src, dst, name, tables, options.source_conninfo or options.source_url)
        _wait_synced(dst, name, options.copy_timeout, say)
        report.times["copy"] = time.monotonic() - t0
        t0 = time.monotonic()
        lag = _marker(src, dst, move_id, tenant.id, options.copy_timeout)
        report.times["catch_up"] = time.monotonic() - t0
        say(f"caught up (marker after {lag * 1000:.0f} ms)")

        # -- the fence: from here to the flip, the tenant writes nowhere ----------------------
        fence_started = time.monotonic()
        fence(src, tenant.id, f"move {move_id} to {options.destination}", options, say)
        fenced = time.monotonic()
        if state == "copying":
            _set_state(src, move_id, "fenced", fenced_at=_one(src, "select clock_timestamp()"))
        report.times["fence_wait"] = fenced - fence_started
        report.times["drain"] = _marker(src, dst, move_id, tenant.id, options.drain_timeout)
        _copy_unreplicated(src, dst, tenant, tables)
        report.sequences = _raise_sequences(src, dst, names)
        t0 = time.monotonic()
        for attempt in range(3):
            report.tables, differ = verify(options, tenant.id)
            if not differ:
                break
            time.sleep(0.2 * (attempt + 1))
        else:
            raise MoveError(
                "verification failed; the tenant stays fenced on the source"
                " (run again, or --abort):\n  - " + "\n  - ".join(differ)
            )
        report.times["verify"] = time.monotonic() - t0
        report.rows = sum(int(t["rows"]) for n, t in report.tables.items() if n != MARKERS)
        epoch = int(
            _one(
                src, "select tenancy.set_tenant_placement(%s, %s)", (tenant.id, options.destination)
            )
        )
        with dst.transaction():
            dst.execute(
                "update tenancy.tenants set placement_epoch = %s where id = %s", (epoch, tenant.id)
            )
            dst.execute("select tenancy.unfence_tenant(%s)", (tenant.id,))
        report.fence_ms = (time.monotonic() - fenced) * 1000
        report.times["fence"] = time.monotonic() - fenced
        # -------------------------------------------------------------------------------------
        report.state = "flipped"
        report.times["total"] = time.monotonic() - started
        _set_state(
            src,
            move_id,
            "flipped",
            flipped_at=_one(src, "select clock_timestamp()"),
            keep_until=_one(src, "select clock_timestamp() + %s", (options.keep,)),
            report=json.dumps(report.as_json()),
        )
        say(
            f"flipped: tenant {tenant.slug} is on {options.destination} (epoch {epoch}); "
            f"{report.rows:,} rows verified; writes fenced for {report.fence_ms:.0f} ms"
        )
        _drop_replication(src, dst, name)
        body = json.dumps(report.as_json())
        src.execute("select tenancy.log_move(%s, 'tenant.moved', %s)", (tenant.id, body))
        dst.execute("select tenancy.log_move(%s, 'tenant.moved', %s)", (tenant.id, body))
        return report


def abort(tenant_ref: str, options: MoveOptions, say: Say = _quiet) -> uuid.UUID:
    """Undo a move that has not flipped: replication dropped, the destination's copy deleted,
    the source unfenced."""
    with _connect(options.source_url) as src, _connect(options.destination_url) as dst:
        tenant = find_tenant(src, tenant_ref)
        current = _open_move(src, tenant.id)
        if current is None:
            raise MoveError(f"tenant {tenant.slug} has no move under way")
        if current["state"] not in ("copying", "fenced"):
            raise MoveError(
                f"the move of tenant {tenant.slug} has flipped already: its rows are on "
                f"{current['destination']} (move it back instead)"
            )
        move_id = current["id"]
        _drop_replication(src, dst, replication_name(move_id))
        reason = f"move {move_id} from {_here(src)}"
        if (
            _one(dst, "select fence_reason from tenancy.tenants where id = %s", (tenant.id,))
            == reason
        ):
            with dst.transaction():
                dst.execute("set local session_replication_role = replica")
                for table in reversed(_move_tables(dst, tenant.id)):
                    dst.execute(
                        sql.SQL("delete from {} as t where {}").format(
                            sql.SQL(table["table_name"]), sql.SQL(_where(table))
                        ),
                        (table["value"],),
                    )
                dst.execute("delete from tenancy.tenants where id = %s", (tenant.id,))
        src.execute("select tenancy.unfence_tenant(%s)", (tenant.id,))
        _set_state(src, move_id, "aborted", finished_at=_one(src, "select clock_timestamp()"))
        src.execute(
            "select tenancy.log_move(%s, 'tenant.move_aborted', %s)",
            (tenant.id, json.dumps({"move_id": str(move_id), "to": current["destination"]})),
        )
        say(f"move {move_id} aborted: tenant {tenant.slug} stays on {_here(src)} and writes again")
        return uuid.UUID(str(move_id))


def release(
    tenant_ref: str,
    source_url: str,
    *,
    batch_rows: int = 10000,
    force: bool = False,
    say: Say = _quiet,
) -> int:
    """Delete the source's rows of a moved tenant, in batches, once its rollback window is over."""
    with _connect(source_url) as src:
        tenant = find_tenant(src, tenant_ref)
        current = _open_move(src, tenant.id)
        if current is None or current["state"] not in ("flipped", "cleaning"):
            raise MoveError(f"tenant {tenant.slug} has no flipped move whose rows are kept here")
        move_id = current["id"]
        keep_until, window_over = src.execute(
            "select keep_until, keep_until <= clock_timestamp()"
            " from tenancy.tenant_moves where id = %s",
            (move_id,),
        ).fetchone() or (None, False)
        if not window_over and not force:
            raise MoveError(
                f"the rollback window of tenant {tenant.slug}'s move lasts until {keep_until}"
                " (--force to release now)"
            )
        _set_state(src, move_id, "cleaning")
        total = 0
        while True:
            count = int(
                _one(
                    src,
                    "select tenancy.release_moved_tenant(%s, %s, true)",
                    (tenant.id, batch_rows),
                )
            )
            if count == 0:
                break
            total += count
            say(f"released {total:,} rows")
        _set_state(src, move_id, "done", finished_at=_one(src, "select clock_timestamp()"))
        src.execute(
            "select tenancy.log_move(%s, 'tenant.move_released', %s)",
            (tenant.id, json.dumps({"move_id": str(move_id), "rows_deleted": total})),
        )
        say(f"tenant {tenant.slug}: {total:,} rows deleted from this placement; the move is done")
        return total


# -- command line ---------------------------------------------------------------------------------


def _say(text: str) -> None:
    print(f"[move] {text}", file=sys.stderr, flush=True)


def _duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip()
    try:
        if text and text[-1] in units:
            return timedelta(seconds=float(text[:-1]) * units[text[-1]])
        return timedelta(seconds=float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r} (e.g. 7d, 12h, 30m, 0)"
        ) from None


def cmd_move(args: argparse.Namespace) -> int:
    from .cli import UsageError, _url

    args.command = "tenant move"
    url = _url(args)
    try:
        if args.release:
            release(args.tenant, url, batch_rows=args.batch_rows, force=args.force, say=_say)
            return 0
        if not args.to or not args.to_url:
            raise MoveError("--to PLACEMENT and --to-url URL are required")
        options = MoveOptions(
            source_url=url,
            destination_url=args.to_url,
            destination=args.to,
            source_conninfo=args.source_conninfo,
            keep=args.keep,
            fence_wait=args.fence_wait,
            batch_rows=args.batch_rows,
        )
        if args.abort:
            abort(args.tenant, options, say=_say)
            return 0
        report = move(args.tenant, options, say=_say)
    except MoveError as exc:
        raise UsageError(f"tenant move: {exc}") from None
    print(json.dumps(report.as_json(), indent=2, sort_keys=True))
    return 0


def add_commands(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``move`` to the actions of ``pgtenancy tenant``."""
    from .cli import _add_url

    q = actions.add_parser(
        "move",
        help="move a tenant online to another placement (logical replication, a write fence, "
        "verified counts and checksums); run it again to resume; --abort, --release",
    )
    q.add_argument("tenant", metavar="TENANT", help="the tenant's id (a uuid) or its slug")
    q.add_argument("--to", metavar="PLACEMENT", help="the destination placement's name")
    q.add_argument("--to-url", metavar="URL", help="the destination database (a superuser)")
    q.add_argument(
        "--source-conninfo",
        metavar="CONNINFO",
        help="how the destination server connects to the source (default: the source's URL)",
    )
    q.add_argument(
        "--keep",
        type=_duration,
        default=timedelta(days=7),
        metavar="DURATION",
        help="how long the source keeps the tenant's rows, fenced, after the flip (default 7d)",
    )
    q.add_argument(
        "--fence-wait",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long the fence waits for the transactions running when it began, per attempt"
        " (default 5)",
    )
    q.add_argument(
        "--batch-rows",
        type=int,
        default=10000,
        metavar="N",
        help="rows per release step (default 10000)",
    )
    q.add_argument("--abort", action="store_true", help="undo a move that has not flipped")
    q.add_argument(
        "--release",
        action="store_true",
        help="delete the source's rows of a moved tenant once its rollback window is over",
    )
    q.add_argument("--force", action="store_true", help="with --release: before the window ends")
    _add_url(q)
    q.set_defaults(func=cmd_move)
