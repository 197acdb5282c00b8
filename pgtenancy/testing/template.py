"""Fresh databases for tests: a migrated template, cloned once per test session.

A template is pgtenancy's schema (``migrate``), then the extensions and the extra SQL sources a
:class:`Template` lists, applied in order. pgtenancy's own (:func:`project_template`) adds pgTAP,
the test fixture schema (``tests/fixtures``) with its generated policies, and the pgTAP checks of
``sql/testing`` (schema ``tenancy_test``). Its name carries a hash of every SQL source, so editing
any of them builds a new template and stale ones are dropped.

``python -m pgtenancy.testing create [--seeded]`` prints the URL of a new database (used by
``make test`` for pg_prove; ``--seeded`` first gives it tenants and rows and re-applies every
definition on top of them); ``drop URL`` removes it.
"""

from __future__ import annotations

import hashlib
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..migrate import migrate
from ..resources import sql_dir
from . import cluster

TEMPLATE_PREFIX = "pgtenancy_tpl_"
TEST_PREFIX = "pgtenancy_test_"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def example_sources() -> list[Path]:
    """The test fixture schema (tests/fixtures) then its generated policies, in apply order."""
    app = repo_root() / "tests" / "fixtures"
    files = [app / "schema.sql"] if (app / "schema.sql").exists() else []
    files += sorted((app / "policies").glob("*.sql"))
    return files


def testing_sources() -> list[Path]:
    """The pgTAP checks of ``sql/testing/`` (schema ``tenancy_test``), in install order."""
    return sql_files([sql_dir() / "testing"])


def sql_files(sources: Iterable[Path]) -> list[Path]:
    """``sources`` in order, each directory replaced by its ``*.sql`` files, recursively, sorted
    by their path inside it."""
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(source.rglob("*.sql"), key=lambda f: f.relative_to(source).parts)
        elif source.is_file():
            files.append(source)
        else:
            raise FileNotFoundError(f"template source not found: {source}")
    return files


@dataclass(frozen=True)
class Template:
    """What a test database holds on top of pgtenancy's migrations.

    ``extensions`` are created first (``create extension if not exists``), then ``sources`` (SQL
    files, or directories of them: see :func:`sql_files`) are applied in order, each file in its
    own transaction.
    """

    sources: tuple[Path, ...] = ()
    extensions: tuple[str, ...] = ()

    def files(self) -> list[Path]:
        return sql_files(self.sources)

    def family(self) -> str:
        """Identifies the template whatever the sources' contents: a template of the same
        family with other contents is stale."""
        h = hashlib.sha256()
        for item in (*self.extensions, *(str(p.resolve()) for p in self.sources)):
            h.update(item.encode() + b"\0")
        return h.hexdigest()[:8]


def project_sources() -> list[Path]:
    """What pgtenancy's own test databases get after migrating and creating pgTAP, in apply
    order: files or directories (their ``*.sql``, recursively). A fixture schema and pgTAP
    check functions (``sql/testing``) belong here."""
    return [*example_sources(), *testing_sources()]


def project_template() -> Template:
    """The template of pgtenancy's own tests (pytest and pg_prove)."""
    return Template(sources=tuple(project_sources()), extensions=("pgtap",))


def with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def as_login(url: str, user: str) -> str:
    """The same server and database as ``url``, as login role ``user`` (no password)."""
    params: dict[str, Any] = conninfo_to_dict(url)
    params["user"] = user
    params.pop("password", None)
    return make_conninfo(**params)


def dbname_of(url: str) -> str:
    path = urlsplit(url).path.lstrip("/")
    if path:
        return unquote(path)
    return parse_qs(urlsplit(url).query).get("dbname", ["postgres"])[0]


def _fingerprint(template: Template) -> str:
    h = hashlib.sha256()
    root = sql_dir()
    for ext in template.extensions:
        h.update(ext.encode() + b"\0")
    for path in sorted(root.rglob("*.sql")) + template.files():
        h.update(str(path.name).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(with_dbname(url, "postgres"), autocommit=True)


def ensure_template(base_url: str, template: Template | None = None) -> str:
    """Create (once) the migrated template database on the server of ``base_url`` and return
    its name; ``template`` defaults to :func:`project_template`."""
    template = project_template() if template is None else template
    family = TEMPLATE_PREFIX + template.family() + "_"
    name = family + _fingerprint(template)
    with _admin(base_url) as conn:
        # One builder at a time across processes.
        conn.execute("select pg_advisory_lock(hashtext('pgtenancy template'))")
        try:
            # A template is complete once it is marked is_template (the last step below); an
            # unmarked one was left by an interrupted build and is rebuilt.
            row = conn.execute(
                "select datistemplate from pg_database where datname = %s", (name,)
            ).fetchone()
            if row and row[0]:
                return name
            stale = [
                str(r[0])
                for r in conn.execute(
                    # This family's other versions, and templates named before families were.
                    "select datname from pg_database where datname <> %s"
                    " and (starts_with(datname, %s) or datname ~ %s)",
                    (name, family, "^" + TEMPLATE_PREFIX + "[0-9a-f]{16}$"),
                )
            ]
            if row:
                stale.append(name)
            for old in stale:
                conn.execute(
                    sql.SQL("alter database {} is_template false").format(sql.Identifier(old))
                )
                conn.execute(sql.SQL("drop database {} (force)").format(sql.Identifier(old)))
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            target = with_dbname(base_url, name)
            migrate(target)
            with psycopg.connect(target, autocommit=True) as db:
                for ext in template.extensions:
                    db.execute(
                        sql.SQL("create extension if not exists {}").format(sql.Identifier(ext))
                    )
                for path in template.files():
                    with db.transaction():
                        db.execute(path.read_bytes())
            conn.execute(sql.SQL("alter database {} is_template true").format(sql.Identifier(name)))
            return name
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('pgtenancy template'))")


def create_test_database(base_url: str | None = None, template: Template | None = None) -> str:
    """A new database cloned from the template (:func:`ensure_template`); returns its URL.

    ``base_url`` names the server (default: ``$DATABASE_URL``, else the throwaway cluster).
    """
    base = base_url or cluster.database_url()
    template_name = ensure_template(base, template)
    name = TEST_PREFIX + uuid.uuid4().hex[:12]
    with _admin(base) as conn:
        conn.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template_name)
            )
        )
    return with_dbname(base, name)


SEED_SQL = """
set role tenancy_admin;
select tenancy.create_tenant('seed-' || n, 'Seed tenant ' || n, 'seed|' || gen_random_uuid())
from generate_series(1, 3) as n;
reset role;
"""


def seed_and_remigrate(url: str) -> None:
    """Give a database tenants and rows, then re-apply every definition on top of them.

    This is the situation of a database in production when a new pgtenancy version arrives:
    data present, functions and policies replaced. The test suites must pass afterwards too.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED_SQL)
        tenants = [r[0] for r in conn.execute("select id from tenancy.tenants order by slug")]
        has_app = conn.execute("select to_regclass('app.projects') is not null").fetchone()
        if has_app and has_app[0]:
            for tenant in tenants:
                with conn.transaction():
                    conn.execute("set local role tenancy_service")
                    conn.execute("select tenancy.set_context(%s)", (tenant,))
                    conn.execute(
                        "insert into app.projects (name) select 'seed project ' || n "
                        "from generate_series(1, 2) as n"
                    )
                    conn.execute(
                        "insert into app.documents (project_id, title) "
                        "select id, 'seed document' from app.projects"
                    )
        # Forget every definition step so that migrate() applies them all again.
        conn.execute(
            "delete from tenancy_migrations._yoyo_migration where migration_id !~ '^[0-9]{4}_'"
        )
    migrate(url)


def drop_test_database(url: str) -> None:
    name = dbname_of(url)
    if not name.startswith(TEST_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a pgtenancy test database")
    with _admin(url) as conn:
        conn.execute(sql.SQL("drop database if exists {} (force)").format(sql.Identifier(name)))


def main(argv: list[str]) -> int:
    if argv[:1] == ["create"]:
        url = create_test_database()
        if "--seeded" in argv[1:]:
            seed_and_remigrate(url)
        print(url)
        return 0
    if len(argv) == 2 and argv[0] == "drop":
        drop_test_database(argv[1])
        return 0
    print("usage: python -m pgtenancy.testing create [--seeded] | drop URL", file=sys.stderr)
    return 2
