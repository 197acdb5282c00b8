"""pgtenancy in a hostile session: pg_temp shadows every type and relation name it uses.

A login that may create temporary objects (here granted TEMPORARY explicitly) can plant, in its
own session, temporary domains named ``text``, ``uuid``, ``bool`` ... and temporary tables
named ``tenants``, ``memberships``, ``projects`` ... PostgreSQL searches ``pg_temp`` first for
types and relations, so any name that pgtenancy's functions, triggers or policies resolve
through the search path would bind to the planted object, and its CHECK constraint (or policy,
or trigger) would run the planter's code inside pgtenancy's function, with that function's
privileges, in whatever transaction uses the session next (a pooled connection). PL/pgSQL
resolves the names of a function when the session first compiles it, so every session here is
a fresh backend that plants its shadows before calling anything.

Every shadow calls ``pg_temp.shadow_spy(what)``, which records the call with the PL/pgSQL
call stack (``GET DIAGNOSTICS ... = PG_CONTEXT``) in a temporary table and as a warning (the
warning reaches the client even when the transaction rolls back). The test's own SQL names
no shadowed type or relation, so the record must stay empty while the session does everything
the isolation suite does, with correct results.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import Roles, Tenant, new_user_id, one, seed, token_for, visible
from psycopg import sql
from psycopg_pool import ConnectionPool

from pgtenancy import (
    authenticated_transaction,
    pool_authenticated_transaction,
    reset_session,
    tenant_transaction,
    testing,
)

REPO = Path(__file__).resolve().parents[2]

# Type names pgtenancy's SQL (or SQL it might grow) could spell without a schema. Keywords such
# as integer, bigint, boolean or numeric are parsed as pg_catalog types and cannot be shadowed;
# their internal names (int4, int8, bool) can, and are planted too.
SHADOWED_TYPES = [
    "text", "uuid", "bool", "int2", "int4", "int8", "bytea", "json", "jsonb", "timestamptz",
    "timestamp", "date", "interval", "numeric", "float4", "float8", "name", "regclass",
    "regproc", "regprocedure", "regtype", "regrole", "regnamespace", "oid", "char", "varchar",
    "bpchar", "bit", "varbit",
]  # fmt: skip

# Schemas whose relation names (tables, views, sequences) are shadowed.
SHADOWED_SCHEMAS = ["tenancy", "app"]

SPY = """
create temporary table shadow_calls (
    pid pg_catalog.int4, what pg_catalog.text, context pg_catalog.text
);
grant all on pg_temp.shadow_calls to public;

create function pg_temp.shadow_spy(p_what pg_catalog.text) returns pg_catalog.bool
language plpgsql volatile as $spy$
declare
    v_context pg_catalog.text;
begin
    get diagnostics v_context = pg_context;
    insert into pg_temp.shadow_calls (pid, what, context)
    values (pg_catalog.pg_backend_pid(), p_what, v_context);
    raise warning using message = pg_catalog.concat('shadow used: ', p_what, E'\\n', v_context);
    return true;
end
$spy$;

create function pg_temp.shadow_trigger() returns trigger
language plpgsql volatile as $trg$
begin
    perform pg_temp.shadow_spy(pg_catalog.concat('relation ', tg_table_name, ' ', tg_op));
    return null;
end
$trg$;

"""

PLANT_RELATIONS = """
do $plant$
declare
    v_rel pg_catalog.record;
    v_columns pg_catalog.text;
begin
    for v_rel in
        select c.oid, c.relname
        from pg_catalog.pg_class as c
        join pg_catalog.pg_namespace as n on n.oid operator(pg_catalog.=) c.relnamespace
        where n.nspname operator(pg_catalog.=) any(__SCHEMAS__::pg_catalog.text[])
          and c.relkind operator(pg_catalog.=) any('{r,p,v,m,S,f}'::pg_catalog."char"[])
    loop
        if pg_catalog.to_regclass(pg_catalog.quote_ident('pg_temp') operator(pg_catalog.||) '.'
                operator(pg_catalog.||) pg_catalog.quote_ident(v_rel.relname)) is not null then
            continue;
        end if;
        select pg_catalog.string_agg(
            pg_catalog.quote_ident(a.attname) operator(pg_catalog.||) ' '
            operator(pg_catalog.||) pg_catalog.quote_ident(tn.nspname)
            operator(pg_catalog.||) '.' operator(pg_catalog.||) pg_catalog.quote_ident(t.typname),
            ', ' order by a.attnum)
        into v_columns
        from pg_catalog.pg_attribute as a
        join pg_catalog.pg_type as t on t.oid operator(pg_catalog.=) a.atttypid
        join pg_catalog.pg_namespace as tn on tn.oid operator(pg_catalog.=) t.typnamespace
        where a.attrelid operator(pg_catalog.=) v_rel.oid
          and a.attnum operator(pg_catalog.>) 0 and not a.attisdropped;
        execute pg_catalog.format(
            'create temporary table %I (%s)', v_rel.relname, coalesce(v_columns, '')
        );
        -- One row, so that reads evaluate the policy.
        execute pg_catalog.format('insert into pg_temp.%I default values', v_rel.relname);
        execute pg_catalog.format(
            'alter table pg_temp.%I enable row level security', v_rel.relname
        );
        execute pg_catalog.format('alter table pg_temp.%I force row level security', v_rel.relname);
        execute pg_catalog.format(
            'create policy shadow on pg_temp.%I using (pg_temp.shadow_spy(%L)) '
            'with check (pg_temp.shadow_spy(%L))',
            v_rel.relname, 'relation ' operator(pg_catalog.||) v_rel.relname,
            'relation ' operator(pg_catalog.||) v_rel.relname
        );
        execute pg_catalog.format(
            'create trigger shadow before insert or update or delete or truncate on pg_temp.%I '
            'for each statement execute function pg_temp.shadow_trigger()', v_rel.relname
        );
        execute pg_catalog.format('grant all on pg_temp.%I to public', v_rel.relname);
    end loop;
end
$plant$;
"""

PLANT_TYPES = """
do $types$
declare
    v_type pg_catalog.text;
begin
    foreach v_type in array __TYPES__::pg_catalog.text[] loop
        execute pg_catalog.format(
            'create domain pg_temp.%I as pg_catalog.%I check (pg_temp.shadow_spy(%L))',
            v_type, v_type, 'type ' operator(pg_catalog.||) v_type
        );
    end loop;
end
$types$;

-- PL/pgSQL resolves a DECLAREd record through the search path too: a composite named record.
create temporary table record (shadowed pg_temp.text);
"""


def prelude(conn: psycopg.Connection[Any], types: bool = True) -> str:
    """The SQL that plants the spy, then the relation shadows, then (last) the type shadows."""
    text = SPY + PLANT_RELATIONS.replace(
        "__SCHEMAS__", sql.Literal(SHADOWED_SCHEMAS).as_string(conn)
    )
    if types:
        text += PLANT_TYPES.replace("__TYPES__", sql.Literal(SHADOWED_TYPES).as_string(conn))
    return text


@dataclass
class Hostile:
    """A fresh session with the shadows planted, and what it recorded."""

    conn: psycopg.Connection[Any]
    warnings: list[str] = field(default_factory=list)

    def recorded(self) -> list[str]:
        """Every shadow call: warnings (survive rollbacks) and committed records."""
        with self.conn.transaction():
            rows = self.conn.execute(
                "select what || E'\\n' || context from pg_temp.shadow_calls"
            ).fetchall()
        return self.warnings + [f"(recorded) {r[0]}" for r in rows]


@pytest.fixture
def hostile_login(database_url: str) -> Iterator[Any]:
    """Factory: a login in ``groups`` granted TEMPORARY on the database explicitly."""
    made: list[str] = []
    dbname = testing.dbname_of(database_url)

    def factory(*groups: str) -> str:
        name = f"t_hostile_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("create role {} login in role {}").format(
                    sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, groups))
                )
            )
            conn.execute(
                sql.SQL("grant temporary on database {} to {}").format(
                    sql.Identifier(dbname), sql.Identifier(name)
                )
            )
            # A session holding temporary objects may be refused a context unless its login is
            # allowed to use them on purpose; this test is about what runs inside the context.
            row = conn.execute("select to_regrole('tenancy_session_objects')").fetchone()
            if row and row[0] is not None:
                conn.execute(
                    sql.SQL("grant tenancy_session_objects to {}").format(sql.Identifier(name))
                )
        made.append(name)
        return testing.as_login(database_url, name)

    yield factory
    with psycopg.connect(database_url, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


def open_hostile(url: str) -> Hostile:
    conn = psycopg.connect(url, autocommit=True)
    session = Hostile(conn)

    def on_notice(diag: psycopg.errors.Diagnostic) -> None:
        if diag.message_primary and diag.message_primary.startswith("shadow used: "):
            session.warnings.append(diag.message_primary)

    conn.add_notice_handler(on_notice)
    conn.execute(prelude(conn).encode())
    planted = conn.execute(
        "select count(*) from pg_catalog.pg_type"
        " where typnamespace = pg_catalog.pg_my_temp_schema() and typtype = 'd'"
    ).fetchone()
    assert planted == (len(SHADOWED_TYPES),)
    for name in ("tenants", "memberships", "jwt_config", "context_fingerprint", "projects"):
        assert conn.execute("select to_regclass(%s)", (f"pg_temp.{name}",)).fetchone() != (None,)
    # The shadows bite: an unqualified type in a DECLARE, a cast, and a relation name are
    # recorded, each with the frame that used it.
    conn.execute("do $$ declare v text := 'x'; begin perform 1; end $$")
    conn.execute("select gen_random_uuid()::text::uuid")
    conn.execute("select count(*) from tenants")
    canary = session.recorded()
    assert any(
        r.startswith("shadow used: type text") and "inline_code_block" in r for r in canary
    ), canary
    assert any(r.startswith("shadow used: type uuid") for r in canary), canary
    assert any(r.startswith("shadow used: relation tenants") for r in canary), canary
    conn.execute("delete from pg_temp.shadow_calls")
    session.warnings.clear()
    conn.autocommit = False
    return session


def report(recorded: list[str]) -> str:
    """Each distinct shadow use with the function frame that made it, then one full stack."""
    uses = set()
    for entry in recorded:
        lines = entry.removeprefix("(recorded) ").removeprefix("shadow used: ").splitlines()
        frames = [f for f in lines[1:] if "pg_temp" not in f.split(" line ")[0]]
        uses.add(f"{lines[0]}: {frames[0] if frames else '(no function frame)'}")
    return (
        f"{len(recorded)} uses of planted pg_temp objects by pgtenancy code:\n"
        + "\n".join(sorted(uses))
        + "\nfirst full record:\n"
        + recorded[0]
    )


def stored(roles: Roles, tenant: Tenant) -> tuple[list[str], list[str], dict[str, str]]:
    """Projects, document titles and memberships of a tenant, read by a service context in an
    ordinary session."""
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, tenant.id):
        projects = visible(conn)
        titles = [r[0] for r in conn.execute("select title from app.documents order by title")]
        members = {
            str(r[0]): r[1] for r in conn.execute("select user_id, role from tenancy.memberships")
        }
    return projects, titles, members


@pytest.fixture
def two_tenants(roles: Roles, make_tenant: Any) -> tuple[Tenant, Tenant]:
    a, b = make_tenant(), make_tenant()
    seed(roles, a, ["a1", "a2"])
    seed(roles, b, ["b1"])
    return a, b


def test_application_session_with_shadowed_names(
    roles: Roles, two_tenants: tuple[Tenant, Tenant], hostile_login: Any
) -> None:
    a, b = two_tenants
    newcomer = new_user_id()
    session = open_hostile(hostile_login("tenancy_app"))
    conn = session.conn
    try:
        # No context yet: nothing visible, writes refused (the statement trigger runs).
        with conn.transaction():
            assert visible(conn) == []
            assert one(conn, "select tenancy.current_tenant_id()") is None
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute("insert into app.projects (name) values ('no context')")
        assert info.value.sqlstate == "TN001"

        with authenticated_transaction(conn, token_for(a.id, a.owner)) as ctx:
            assert (ctx.tenant_id, ctx.user_id, ctx.role) == (a.id, a.owner, "owner")
            row = conn.execute(
                "select tenancy.current_tenant_id(), tenancy.current_user_id(), "
                "tenancy.current_member_role(), tenancy.current_tenant_key()"
            ).fetchone()
            assert row == (a.id, a.owner, "owner", None)  # a tenant without a key
            assert visible(conn) == ["a1", "a2"]
            assert one(conn, "select count(*) from app.projects where tenant_id = %s", (b.id,)) == 0
            pid = one(conn, "insert into app.projects (name) values ('hostile-a') returning id")
            conn.execute(
                "insert into app.documents (project_id, title) values (%s, 'doc-a')", (pid,)
            )
            conn.execute("update app.projects set name = 'a2-renamed' where name = 'a2'")
            conn.execute("delete from app.projects where name = 'a1'")
            with pytest.raises(psycopg.Error) as info, conn.transaction():
                conn.execute("update app.projects set tenant_id = %s", (b.id,))
            assert info.value.sqlstate == "TN006"
            with pytest.raises(psycopg.Error) as info, conn.transaction():
                conn.execute(
                    "insert into app.projects (tenant_id, name) values (%s, 'into-b')", (b.id,)
                )
            assert info.value.sqlstate == "42501"
            members = conn.execute("select user_id, role from tenancy.memberships").fetchall()
            assert members == [(a.owner, "owner")]
            conn.execute("select tenancy.add_member(%s, 'member')", (newcomer,))
            conn.execute("select tenancy.set_member_role(%s, 'viewer')", (newcomer,))
            assert dict(
                conn.execute("select user_id, role from tenancy.memberships").fetchall()
            ) == {a.owner: "owner", newcomer: "viewer"}
            conn.execute("select tenancy.remove_member(%s)", (newcomer,))
            conn.execute("select tenancy.clear_context()")
            assert one(conn, "select tenancy.current_tenant_id()") is None
            assert visible(conn) == []
        # The same token in a later transaction, on the same session: the writes landed in A.
        with authenticated_transaction(conn, token_for(a.id, a.owner)):
            assert visible(conn) == ["a2-renamed", "hostile-a"]
        with authenticated_transaction(conn, token_for(b.id, b.owner)):
            assert visible(conn) == ["b1"]
        recorded = session.recorded()
    finally:
        conn.close()

    projects, titles, members = stored(roles, a)
    assert projects == ["a2-renamed", "hostile-a"]
    assert titles == ["doc-a"]
    assert members == {str(a.owner): "owner"}
    assert stored(roles, b) == (["b1"], [], {str(b.owner): "owner"})
    assert recorded == [], report(recorded)


def test_service_session_with_shadowed_names(
    roles: Roles, two_tenants: tuple[Tenant, Tenant], hostile_login: Any, database_url: str
) -> None:
    a, b = two_tenants
    slug = f"hostile-{uuid.uuid4().hex[:8]}"
    owner = new_user_id()
    session = open_hostile(hostile_login("tenancy_service"))
    conn = session.conn
    try:
        with tenant_transaction(conn, a.id) as ctx:
            assert (ctx.tenant_id, ctx.user_id, ctx.role) == (a.id, None, "service")
            assert one(conn, "select tenancy.current_member_role()") == "service"
            assert visible(conn) == ["a1", "a2"]
            conn.execute("insert into app.projects (name) values ('service-a')")
        with tenant_transaction(conn, b.id, b.owner) as ctx:
            assert ctx.role == "owner"
            assert visible(conn) == ["b1"]
        with conn.transaction():
            new_id = one(conn, "select tenancy.create_tenant(%s, 'Hostile', %s)", (slug, owner))
        with tenant_transaction(conn, new_id, owner) as ctx:
            assert ctx.role == "owner"
            assert visible(conn) == []
        recorded = session.recorded()
    finally:
        conn.close()

    assert stored(roles, a)[0] == ["a1", "a2", "service-a"]
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "select t.slug, m.user_id, m.role from tenancy.tenants as t "
            "join tenancy.memberships as m on m.tenant_id = t.id where t.id = %s",
            (new_id,),
        ).fetchone()
    assert row == (slug, owner, "owner")
    assert recorded == [], report(recorded)


def test_admin_session_with_shadowed_names(
    roles: Roles, two_tenants: tuple[Tenant, Tenant], hostile_login: Any
) -> None:
    a, b = two_tenants
    session = open_hostile(hostile_login("tenancy_admin", "tenancy_service"))
    conn = session.conn
    try:
        with conn.transaction():
            conn.execute("select tenancy.suspend_tenant(%s)", (a.id,))
        with pytest.raises(psycopg.Error) as info, tenant_transaction(conn, a.id):
            pass
        assert info.value.sqlstate == "TN002"
        with conn.transaction():
            conn.execute("select tenancy.reactivate_tenant(%s)", (a.id,))
        with tenant_transaction(conn, a.id) as ctx:
            assert ctx.role == "service"
            assert visible(conn) == ["a1", "a2"]
        with tenant_transaction(conn, b.id):
            assert visible(conn) == ["b1"]
        recorded = session.recorded()
    finally:
        conn.close()
    with psycopg.connect(roles.admin) as conn:
        assert one(conn, "select status from tenancy.tenants where id = %s", (a.id,)) == "active"
    assert recorded == [], report(recorded)


def test_audit_functions_with_shadowed_names(
    roles: Roles, two_tenants: tuple[Tenant, Tenant], hostile_login: Any
) -> None:
    """The audit trail's functions in hostile sessions: an owner sets request metadata, writes
    (the audit triggers run), logs an event and reads the trail, a row's history, a row and the
    table at a time; a service job seals, verifies and exports a seal. Every result is right and
    no planted object is ever used (the digest functions carry no SET clause: they name
    everything with its schema)."""
    a, b = two_tenants
    app = open_hostile(hostile_login("tenancy_app"))
    try:
        with authenticated_transaction(app.conn, token_for(a.id, a.owner)):
            conn = app.conn
            conn.execute('select tenancy.set_request_metadata(\'{"request_id": "hostile"}\')')
            pid = one(conn, "insert into app.projects (name) values ('audited') returning id")
            conn.execute("update app.projects set name = 'audited-2' where id = %s", (pid,))
            event = one(
                conn,
                "select tenancy.log_audit('user.updated', 'user', 'u-1', "
                '\'{"plan": "free"}\', \'{"plan": "pro"}\')',
            )
            trail = conn.execute(
                "select id, metadata ->> 'request_id', changed_columns"
                " from tenancy.audit_trail('user', 'u-1')"
            ).fetchall()
            assert trail == [(event, "hostile", ["plan"])]
            history = conn.execute(
                "select action, new_data ->> 'name', metadata ->> 'request_id' from"
                " tenancy.record_history('app.projects', pg_catalog.jsonb_build_object('id', %s))",
                (pid,),
            ).fetchall()
            assert history == [
                ("INSERT", "audited", "hostile"),
                ("UPDATE", "audited-2", "hostile"),
            ]
            at = one(
                conn,
                "select tenancy.record_at('app.projects', pg_catalog.jsonb_build_object('id', %s),"
                " pg_catalog.clock_timestamp()) ->> 'name'",
                (pid,),
            )
            assert at == "audited-2"
            names = [
                r[0]
                for r in conn.execute(
                    "select data ->> 'name' from tenancy.table_at('app.projects',"
                    " pg_catalog.clock_timestamp())"
                )
            ]
            assert "audited-2" in names and "b1" not in names
        recorded = app.recorded()
    finally:
        app.conn.close()
    assert recorded == [], report(recorded)

    service = open_hostile(hostile_login("tenancy_service"))
    try:
        with service.conn.transaction():
            service.conn.execute("select * from tenancy.seal_audit()")
        with service.conn.transaction():
            verified = service.conn.execute(
                "select ok, problem from tenancy.verify_audit(%s)", (a.id,)
            ).fetchone()
            assert verified == (True, None)
            seal = one(service.conn, "select tenancy.export_seal(%s)", (a.id,))
            assert seal["tenant_id"] == str(a.id) and seal["total_rows"] >= 4
        recorded = service.recorded()
    finally:
        service.conn.close()
    assert recorded == [], report(recorded)


def test_reset_hook_removes_planted_shadows_before_the_next_borrower(
    roles: Roles, two_tenants: tuple[Tenant, Tenant], hostile_login: Any
) -> None:
    """The pooled version of the attack: one borrower plants, the next authenticates."""
    a, _ = two_tenants
    url = hostile_login("tenancy_app")
    warnings: list[str] = []

    def configure(conn: psycopg.Connection[Any]) -> None:
        conn.add_notice_handler(
            lambda d: (
                warnings.append(d.message_primary or "")
                if (d.message_primary or "").startswith("shadow used: ")
                else None
            )
        )

    with ConnectionPool(
        url, min_size=1, max_size=1, configure=configure, reset=reset_session, open=True
    ) as pool:
        with pool.connection() as conn:
            planter = one(conn, "select pg_backend_pid()")
            conn.commit()
            conn.autocommit = True
            conn.execute(prelude(conn).encode())
            conn.autocommit = False
        with pool_authenticated_transaction(pool, token_for(a.id, a.owner)) as (conn, ctx):
            assert one(conn, "select pg_backend_pid()") == planter  # the same session
            assert ctx.tenant_id == a.id
            assert visible(conn) == ["a1", "a2"]
            planted = one(
                conn,
                "select count(*) from pg_catalog.pg_class"
                " where relnamespace = pg_catalog.pg_my_temp_schema()",
            )
            assert planted == 0
    assert warnings == []


GENERATED_PGTAP = sorted((REPO / "tests" / "pgtap" / "generated").glob("*.sql"))


@pytest.mark.parametrize("path", GENERATED_PGTAP, ids=[p.stem for p in GENERATED_PGTAP])
def test_generated_pgtap_suite_with_shadowed_relations(database_url: str, path: Path) -> None:
    """The generated isolation tests in a session where pg_temp shadows every relation name.

    Types are not shadowed here: pgTAP's own functions declare ``text``, ``name`` and ``bool``
    without a schema and stop working (``function is(text, pg_catalog.text, pg_catalog.text)
    does not exist``), so only the relation shadows can run under pgTAP; the type shadows are
    exercised by the tests above, through the same operations.
    """
    with psycopg.connect(database_url) as conn:
        script = prelude(conn, types=False) + "\n" + path.read_text()
    res = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database_url],
        input=script,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert [line for line in lines if line.strip().startswith("not ok")] == []
    assert not any("Looks like" in line for line in lines), res.stdout
    assert sum(line.strip().startswith("ok ") for line in lines) > 10
    uses = res.stderr.split("WARNING:  shadow used: ")[1:]
    assert uses == [], report(["shadow used: " + u for u in uses])
