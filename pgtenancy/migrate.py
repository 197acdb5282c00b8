"""Apply pgtenancy's schema with yoyo.

Two kinds of steps:

* versioned migrations, ``sql/migrations/NNNN_name.sql``: applied once, in order;
* definitions, ``sql/functions/*.sql`` then ``sql/policies/*.sql``: idempotent
  (``create or replace``), identified by their content hash, so a definition is applied again
  exactly when its source changes. ``create or replace`` keeps the grants of a function.

Every step runs in its own transaction, together with yoyo's record of it: a failing step leaves
the database as it was, and a step is never applied without being recorded. Steps other than
the ones that create roles (``NNNN_*roles.sql``) run as ``tenancy_owner`` so that it owns every
object.

Then PUBLIC loses TEMPORARY on the database (unless ``keep_temp_privilege``): by default every
role may create temporary tables, views, functions and domains, and on a pooled connection those
shadow names for whoever borrows the session next. Revoking needs the database owner (or a
member of its role, or a superuser); a migrating user who cannot do it is told so before any
step is applied (:class:`MigrateError`).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .resources import sql_dir


class MigrateError(RuntimeError):
    """The database is not in a state ``migrate`` can bring it to; nothing was applied."""


#: Directives a versioned migration may carry in its leading comment lines:
#: ``-- migrate: as-migrating-user`` (it creates roles or schemas, which tenancy_owner may not)
#: and ``-- migrate: replaces ID ...`` (it reproduces steps of an earlier release, see
#: :func:`_adopt_replaced`).
DIRECTIVE = re.compile(r"^--\s*migrate:\s*(.*?)\s*$")
DEFINITION_KINDS = ("functions", "policies")


@dataclass(frozen=True)
class Step:
    """One migration step rendered from a SQL source file."""

    id: str
    source: Path
    sql: str
    as_owner: bool
    depends: tuple[str, ...]
    replaces: tuple[str, ...] = ()
    display: str = ""

    def text(self) -> str:
        # Names in a step resolve as on a plain connection, whatever the backend's search_path.
        prefix = "set local check_function_bodies = off;\nset local search_path to default;\n"
        if not self.as_owner:
            return prefix + self.sql
        # Back to the migrating user at the end: the same transaction then records the step in
        # yoyo's tables, which tenancy_owner does not own.
        return prefix + "set local role tenancy_owner;\n" + self.sql + "\n;\nreset role;\n"


def directives(text: str) -> list[str]:
    """The ``-- migrate:`` directives of a migration's leading comment block."""
    found: list[str] = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        match = DIRECTIVE.match(line)
        if match:
            found.append(match[1])
    return found


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _versioned(path: Path, previous: str | None) -> Step:
    text = path.read_text()
    as_owner = True
    replaces: tuple[str, ...] = ()
    for directive in directives(text):
        word, _, rest = directive.partition(" ")
        if word == "as-migrating-user" and not rest:
            as_owner = False
        elif word == "replaces" and rest.split():
            replaces = tuple(rest.split())
        else:
            raise MigrateError(f"{path}: unknown directive '-- migrate: {directive}'")
    return Step(
        id=path.stem,
        source=path,
        sql=text,
        as_owner=as_owner,
        depends=(previous,) if previous else (),
        replaces=replaces,
        display=f"migrations/{path.name}",
    )


def steps(root: Path | None = None) -> list[Step]:
    """All steps in application order.

    Definitions may sit in subfolders (``sql/functions/context/…``); they apply in the order of
    their paths, and their ids carry the path, so two files of the same name in different
    folders are different steps.
    """
    root = root or sql_dir()
    versioned: list[Step] = []
    for path in sorted((root / "migrations").glob("*.sql")):
        versioned.append(_versioned(path, versioned[-1].id if versioned else None))
    definitions: list[Step] = []
    all_versioned = tuple(s.id for s in versioned)
    for order, kind in enumerate(DEFINITION_KINDS, start=1):
        base = root / kind
        for path in sorted(base.rglob("*.sql"), key=lambda p: p.relative_to(base).parts):
            text = path.read_text()
            digest = hashlib.sha256(text.encode()).hexdigest()[:12]
            relative = path.relative_to(base).with_suffix("")
            definitions.append(
                Step(
                    id=f"{order}_{kind}_{_slug('/'.join(relative.parts))}_{digest}",
                    source=path,
                    sql=text,
                    as_owner=True,
                    depends=all_versioned,
                    display=f"{kind}/{path.relative_to(base).as_posix()}",
                )
            )
    return versioned + definitions


def yoyo_url(database_url: str) -> str:
    """Turn a libpq URL into the URL yoyo's psycopg 3 backend expects."""
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise ValueError(f"unsupported database URL scheme {parts.scheme!r} in {database_url!r}")
    return urlunsplit(("postgresql+psycopg", *parts[1:]))


_TEMPLATE = '''"""Rendered by pgtenancy from {source}."""
from yoyo import step

__depends__ = {depends!r}

SQL = {sql!r}


def apply_step(conn):
    conn.cursor().execute(SQL)


steps = [step(apply_step)]
'''


@contextmanager
def _rendered(all_steps: list[Step]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pgtenancy-migrations-") as tmp:
        out = Path(tmp)
        for s in all_steps:
            (out / f"{s.id}.py").write_text(
                _TEMPLATE.format(
                    source=s.display,
                    depends=set(s.depends),
                    sql=s.text(),
                )
            )
        yield out


@dataclass(frozen=True)
class Status:
    id: str
    source: str
    applied: bool


def _with_backend(database_url: str):  # type: ignore[no-untyped-def]
    from yoyo import get_backend

    return get_backend(yoyo_url(database_url))


_DEFINITION_ID = re.compile(r"^(\d+_(?:" + "|".join(DEFINITION_KINDS) + r")_.+)_[0-9a-f]{12}$")


def _superseded(backend: Any, migrations: Any) -> list[Any]:
    """Applied definitions whose source file was applied in another version since.

    Reverting a source brings back an id that is still marked applied; it must run again.
    """
    backend.ensure_internal_schema_updated()
    rows = backend.execute(
        f"select migration_id from {backend.migration_table_quoted} order by applied_at_utc"
    ).fetchall()
    latest: dict[str, str] = {}
    for (mid,) in rows:
        match = _DEFINITION_ID.match(mid)
        if match:
            latest[match[1]] = mid
    applied = {mid for (mid,) in rows}
    return [
        m
        for m in migrations
        if m.id in applied and (match := _DEFINITION_ID.match(m.id)) and latest[match[1]] != m.id
    ]


def status(database_url: str) -> list[Status]:
    """Every step with whether it is applied."""
    from yoyo import read_migrations

    all_steps = steps()
    # Leaving the backend closes its connection: a lingering one blocks renaming or dropping
    # the database right after.
    with _with_backend(database_url) as backend, _rendered(all_steps) as tmp:
        migrations = read_migrations(str(tmp))
        stale = {m.id for m in _superseded(backend, migrations)}
        applied = {m.id for m in migrations if backend.is_applied(m) and m.id not in stale}
    return [
        Status(s.id, s.display, s.id in applied)
        for s in all_steps
    ]


@dataclass(frozen=True)
class TempPrivilege:
    """Whether PUBLIC may create temporary objects in the database, and who could revoke it."""

    database: str
    public_has_temp: bool
    can_revoke: bool
    owner: str
    user: str


_TEMP_PRIVILEGE = """
select d.datname::text,
       exists (
           select from pg_catalog.aclexplode(
               coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))
           ) as a
           where a.grantee = 0 and a.privilege_type = 'TEMPORARY'
       ),
       pg_catalog.pg_has_role(current_user, d.datdba, 'USAGE')
       or (select r.rolsuper from pg_catalog.pg_roles as r where r.rolname = current_user),
       pg_catalog.pg_get_userbyid(d.datdba)::text,
       current_user::text
from pg_catalog.pg_database as d
where d.datname = pg_catalog.current_database()
"""


def temp_privilege(database_url: str) -> TempPrivilege:
    """Whether PUBLIC holds TEMPORARY on the database of ``database_url``."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(_TEMP_PRIVILEGE).fetchone()
    assert row is not None
    return TempPrivilege(*row)


def _check_temp_revocable(database_url: str) -> TempPrivilege:
    state = temp_privilege(database_url)
    if state.public_has_temp and not state.can_revoke:
        raise MigrateError(
            f"PUBLIC may create temporary objects in database {state.database!r} (the default "
            f"TEMPORARY privilege), which lets any login shadow names for the next user of a "
            f"pooled connection; user {state.user!r} cannot revoke it: that needs the database "
            f"owner {state.owner!r} or a superuser. Nothing was applied. Either run, as "
            f"{state.owner!r}: revoke temporary on database {_quote_ident(state.database)} "
            f"from public; or migrate with --keep-temp-privilege to leave it as it is."
        )
    return state


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def revoke_public_temp(database_url: str) -> bool:
    """Revoke TEMPORARY on the database from PUBLIC; True when it was held and is now revoked.

    Roles granted TEMPORARY explicitly (``grant temporary on database ... to role``) keep it.
    """
    import psycopg
    from psycopg import sql

    state = _check_temp_revocable(database_url)
    if not state.public_has_temp:
        return False
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("revoke temporary on database {} from public").format(
                sql.Identifier(state.database)
            )
        )
    if temp_privilege(database_url).public_has_temp:
        # REVOKE only removes what the acting grantor granted: another grant to PUBLIC remains.
        raise MigrateError(
            f"PUBLIC still holds TEMPORARY on database {state.database!r} after "
            f"revoke temporary on database {_quote_ident(state.database)} from public "
            f"(granted by another role than the owner {state.owner!r}?); see its datacl"
        )
    return True


def migrate(database_url: str, *, keep_temp_privilege: bool = False) -> list[str]:
    """Apply pending steps; return the ids applied (empty when up to date).

    Unless ``keep_temp_privilege``, PUBLIC then loses TEMPORARY on the database; when the
    migrating user cannot revoke it, :class:`MigrateError` is raised before any step is applied.
    """
    from yoyo import read_migrations

    if not keep_temp_privilege:
        _check_temp_revocable(database_url)
    with _with_backend(database_url) as backend, _rendered(steps()) as tmp:
        migrations = read_migrations(str(tmp))
        with backend.lock():
            stale = _superseded(backend, migrations)
            if stale:
                backend.unmark_migrations(stale)
            pending = backend.to_apply(migrations)
            ids = [m.id for m in pending]
            _apply_atomically(backend, pending)
    if not keep_temp_privilege:
        revoke_public_temp(database_url)
    return ids


def _apply_atomically(backend: Any, pending: Any) -> None:
    """Apply each step and record it as applied in one transaction.

    yoyo's own ``apply_migrations`` commits a step, then records it in a second transaction: a
    crash in between would leave a versioned migration applied but pending, and the next run
    would fail on the objects it already created. Here the step runs in a savepoint of a
    transaction that also writes yoyo's log and mark, so both happen or neither does.
    """
    backend.ensure_internal_schema_updated()
    for migration in pending:
        with backend.transaction():
            migration.process_steps(backend, "apply")
            backend.log_migration(migration, "apply")
            backend.mark_one(migration, log=False)
