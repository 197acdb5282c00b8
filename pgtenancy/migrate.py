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


#: The schema holding yoyo's bookkeeping tables (never public), owned by the migrating user.
BOOKKEEPING_SCHEMA = "tenancy_migrations"
#: yoyo's four tables.
YOYO_TABLES = ("_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock")


#: Directives a versioned migration may carry in its leading comment lines:
#: ``-- migrate: as-migrating-user`` (it creates roles or schemas, which tenancy_owner may not)
#: and ``-- migrate: replaces ID ...`` (it reproduces steps of an earlier release, see
#: :func:`_adopt_replaced`). A definition may carry ``-- migrate: as-role ROLE`` (one of
#: :data:`DEFINITION_ROLES`): it runs as that role instead of ``tenancy_owner``.
DIRECTIVE = re.compile(r"^--\s*migrate:\s*(.*?)\s*$")
DEFINITION_KINDS = ("functions", "policies", "lints")
DEFINITION_ROLES = ("tenancy_owner", "tenancy_audit_owner")


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
    #: The role a definition runs as: ``tenancy_owner``, or the role its ``-- migrate: as-role``
    #: directive names (the audit trail's functions belong to ``tenancy_audit_owner``).
    role: str = "tenancy_owner"

    def text(self) -> str:
        # Names in a step resolve in pg_catalog alone (a step names the schema of everything it
        # creates or uses); yoyo's search_path is back for the record written in the same
        # transaction.
        prefix = "set local check_function_bodies = off;\nset local search_path = pg_catalog;\n"
        suffix = f"\n;\nset local search_path to {BOOKKEEPING_SCHEMA};\n"
        if not self.as_owner:
            return prefix + self.sql + suffix
        # Back to the migrating user at the end: the same transaction then records the step in
        # yoyo's tables, which tenancy_owner does not own.
        return prefix + f"set local role {self.role};\n" + self.sql + "\n;\nreset role;" + suffix


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

    Definitions may sit in subfolders (``sql/functions/context/…``); their ids carry the path,
    so two files of the same name in different folders are different steps. They apply in the
    order of their ids, as yoyo orders steps of equal dependencies: the order of their paths,
    but for a name that extends another (``track_usage`` and ``track_usage_batch``), where the
    digest after the shorter name decides.
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
            role = "tenancy_owner"
            for directive in directives(text):
                word, _, rest = directive.partition(" ")
                if word == "as-role" and rest in DEFINITION_ROLES:
                    role = rest
                else:
                    raise MigrateError(f"{path}: unknown directive '-- migrate: {directive}'")
            definitions.append(
                Step(
                    id=f"{order}_{kind}_{_slug('/'.join(relative.parts))}_{digest}",
                    source=path,
                    sql=text,
                    as_owner=True,
                    depends=all_versioned,
                    display=f"{kind}/{path.relative_to(base).as_posix()}",
                    role=role,
                )
            )
    definitions.sort(key=lambda step: step.id)
    return versioned + definitions


def yoyo_url(database_url: str) -> str:
    """Turn a libpq URL into the URL yoyo's psycopg 3 backend expects.

    yoyo's ``schema`` parameter puts its tables in :data:`BOOKKEEPING_SCHEMA` (it sets the
    search_path of its connection; every step resets it for its own transaction).
    """
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        # Not the URL itself: it may carry a password.
        raise ValueError(
            f"unsupported database URL scheme {parts.scheme!r}: migrate needs a URL "
            "postgresql://USER@HOST/DBNAME (not a libpq keyword string)"
        )
    query = "&".join(q for q in (parts.query, f"schema={BOOKKEEPING_SCHEMA}") if q)
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, query, parts.fragment))


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

    # The URL is checked before the bookkeeping schema is created or 0.1.0's rows are moved.
    try:
        url = yoyo_url(database_url)
    except ValueError as exc:
        raise MigrateError(f"{exc}. Nothing was applied.") from None
    _prepare_bookkeeping(database_url)
    return get_backend(url)


#: The versioned steps of pgtenancy 0.1.0, which kept yoyo's tables in public.
LEGACY_IDS = (
    "0001_roles",
    "0002_core",
    "0003_session_roles",
    "0004_keys",
    "0005_jwt",
    "0006_context_key",
)
_LEGACY_STEP = "^(?:" + "|".join(LEGACY_IDS) + r"|[12]_(?:functions|policies)_.+_[0-9a-f]{12})$"


def _prepare_bookkeeping(database_url: str) -> None:
    """Create the bookkeeping schema; move pgtenancy's rows out of yoyo's tables in public.

    pgtenancy 0.1.0 let yoyo keep its tables in public. They are recognised by the 0.1.0 step
    ``0002_core`` together with schema tenancy, which 0.1.0 created: an application's own yoyo
    step of that name, on a database without pgtenancy, is the application's, and its history is
    left alone. Only pgtenancy's rows move (the tables may be shared with an application's own
    yoyo migrations), and the tables in public are dropped once nothing is left in them.
    """
    import psycopg
    from psycopg import sql

    schema = sql.Identifier(BOOKKEEPING_SCHEMA)
    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute(
            "select to_regnamespace(%s) is not null", (BOOKKEEPING_SCHEMA,)
        ).fetchone()
        if not (exists and exists[0]):
            conn.execute(sql.SQL("create schema if not exists {}").format(schema))
            conn.execute(sql.SQL("revoke all on schema {} from public").format(schema))
            conn.execute(
                sql.SQL("comment on schema {} is {}").format(
                    schema,
                    sql.Literal("pgtenancy: yoyo's record of the migration steps applied."),
                )
            )
        tables = conn.execute(
            "select to_regclass('public._yoyo_migration') is not null and to_regclass(%s) is null"
            " and to_regnamespace('tenancy') is not null",
            (f"{BOOKKEEPING_SCHEMA}._yoyo_migration",),
        ).fetchone()
        legacy = (
            tables
            and tables[0]
            and conn.execute(
                "select exists (select from public._yoyo_migration"
                " where migration_id = '0002_core')"
            ).fetchone()
        )
    if not (legacy and legacy[0]):
        return
    with psycopg.connect(database_url) as conn:
        # An application's yoyo may be writing to the same tables: its rows, committed before
        # the tables are counted, must keep them from being dropped (a lock that waits for its
        # open transactions and keeps new ones out, and a second move out, until this commits).
        conn.execute(
            sql.SQL("lock table {} in share row exclusive mode").format(
                sql.SQL(", ").join(sql.Identifier("public", table) for table in YOYO_TABLES)
            )
        )
        # Same columns as yoyo's: copy the tables' shape, then pgtenancy's rows.
        for table in YOYO_TABLES:
            conn.execute(
                sql.SQL("create table {}.{} (like public.{} including all)").format(
                    schema, sql.Identifier(table), sql.Identifier(table)
                )
            )
        conn.execute(
            sql.SQL("insert into {}._yoyo_version select * from public._yoyo_version").format(
                schema
            )
        )
        for table in ("_yoyo_migration", "_yoyo_log"):
            moved = sql.SQL(
                "with moved as (delete from public.{t} where migration_id ~ {p} returning *) "
                "insert into {s}.{t} select * from moved"
            ).format(t=sql.Identifier(table), p=sql.Literal(_LEGACY_STEP), s=schema)
            conn.execute(moved)
        left = conn.execute(
            "select (select count(*) from public._yoyo_migration)"
            " + (select count(*) from public._yoyo_log)"
            " + (select count(*) from public.yoyo_lock)"  # an application's yoyo is running
        ).fetchone()
        if left and left[0] == 0:
            for table in YOYO_TABLES:
                conn.execute(sql.SQL("drop table public.{}").format(sql.Identifier(table)))


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
    return [Status(s.id, s.display, s.id in applied) for s in all_steps]


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


@dataclass(frozen=True)
class Outcome:
    """What one ``migrate`` run did."""

    #: Steps applied, in order.
    applied: list[str]
    #: Steps recorded as applied without running: they reproduce steps of an earlier release
    #: that the database already had (``-- migrate: replaces``).
    adopted: list[str]
    #: Functions dropped because no file in ``sql/functions`` defines them any more.
    dropped: list[str]


def migrate(database_url: str, *, keep_temp_privilege: bool = False) -> list[str]:
    """Apply pending steps; return the ids applied (empty when up to date).

    See :func:`migrate_database`, which also tells what was adopted and dropped.
    """
    return migrate_database(database_url, keep_temp_privilege=keep_temp_privilege).applied


def migrate_database(database_url: str, *, keep_temp_privilege: bool = False) -> Outcome:
    """Bring the database to the current sources.

    Before anything is applied: the roles pgtenancy relies on, where they already exist, must
    have the attributes it gives them (:func:`check_roles`), and unless ``keep_temp_privilege``
    the migrating user must be able to revoke TEMPORARY from PUBLIC; otherwise
    :class:`MigrateError`. Then pending steps apply (each in one transaction with its record),
    functions no source defines any more are dropped (:func:`drop_removed_functions`), and PUBLIC
    loses TEMPORARY on the database.
    """
    from yoyo import read_migrations

    check_roles(database_url)
    if not keep_temp_privilege:
        _check_temp_revocable(database_url)
    all_steps = steps()
    with _with_backend(database_url) as backend, _rendered(all_steps) as tmp:
        migrations = read_migrations(str(tmp))
        with backend.lock():
            stale = _superseded(backend, migrations)
            if stale:
                backend.unmark_migrations(stale)
            adopted = _adopt_replaced(backend, migrations, all_steps)
            pending = backend.to_apply(migrations)
            ids = [m.id for m in pending]
            _apply_atomically(backend, pending)
            dropped = drop_removed_functions(database_url, all_steps)
    if not keep_temp_privilege:
        revoke_public_temp(database_url)
    return Outcome(applied=ids, adopted=adopted, dropped=dropped)


def _adopt_replaced(backend: Any, migrations: Any, all_steps: list[Step]) -> list[str]:
    """Record as applied the steps whose replaced steps the database already has.

    When versioned migrations are reorganised (renamed, split by the object they create), the new
    files declare ``-- migrate: replaces OLD_ID ...``: on a database where every one of those old
    steps is applied, the new step's objects already exist, so it is recorded, not run. A
    database holding only some of them is refused: it was migrated by a version between
    releases, and nothing here knows which of the new step's objects it has.
    """
    backend.ensure_internal_schema_updated()
    applied = {
        str(r[0])
        for r in backend.execute(
            f"select migration_id from {backend.migration_table_quoted}"
        ).fetchall()
    }
    by_id = {s.id: s for s in all_steps}
    adoptable: list[Any] = []
    for migration in migrations:
        step = by_id.get(migration.id)
        if step is None or not step.replaces or migration.id in applied:
            continue
        have = [r for r in step.replaces if r in applied]
        if not have:
            continue
        if len(have) != len(step.replaces):
            missing = [r for r in step.replaces if r not in applied]
            raise MigrateError(
                f"{step.display} replaces steps {', '.join(step.replaces)}, of which this "
                f"database has {', '.join(have)} but not {', '.join(missing)}: it was migrated "
                f"by a version between releases. Migrate it with the release it came from "
                f"first. Nothing was applied."
            )
        adoptable.append(migration)
    # Recorded only once the whole history is known to be complete: a refusal records nothing.
    with backend.transaction():
        for migration in adoptable:
            backend.mark_one(migration, log=True)
    return [m.id for m in adoptable]


#: Attributes pgtenancy gives each of its roles (all NOLOGIN); a pre-existing role with any of
#: the attributes named here is refused rather than adopted.
ROLES = (
    "tenancy_owner",
    "tenancy_app",
    "tenancy_service",
    "tenancy_admin",
    "tenancy_auditor",
    "tenancy_session_objects",
    "tenancy_audit_owner",
)
_ROLE_ATTRIBUTES = """
select r.rolname::text,
       r.rolcanlogin, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
       r.rolname <> 'tenancy_owner'
       and pg_catalog.pg_has_role(r.oid, 'tenancy_owner', 'MEMBER') as owner_member
from pg_catalog.pg_roles as r
where r.rolname = any(%s)
order by r.rolname
"""
_ATTRIBUTE_REASONS = (
    ("LOGIN", "nologin", "pgtenancy's roles are groups; logins are members of them"),
    ("SUPERUSER", "nosuperuser", "a superuser bypasses row level security"),
    ("BYPASSRLS", "nobypassrls", "it would see and change every tenant's rows"),
    ("CREATEROLE", "nocreaterole", "it could grant itself other roles"),
    ("CREATEDB", "nocreatedb", "pgtenancy's roles need no database of their own"),
)


#: Predefined roles whose members read or write every table (row level security aside, a
#: platform table such as tenancy.jwt_config is guarded by privileges alone) or the server's files.
_PREDEFINED_FORBIDDEN = (
    "pg_read_all_data",
    "pg_write_all_data",
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
)
#: The memberships among pgtenancy's roles that pgtenancy itself grants (member, group).
_OWN_MEMBERSHIPS = (("tenancy_service", "tenancy_app"),)
# Every role a pgtenancy role is a member of, directly or not (its members may SET ROLE to it),
# that gives more than pgtenancy grants: another pgtenancy role, a role with SUPERUSER,
# BYPASSRLS or CREATEROLE, a predefined role above, or the owner of a table with row level
# security in this database (an owner is exempt from its policies unless forced, and may drop
# them). Membership of tenancy_owner is reported
# on its own; a superuser is a member of everything and is reported for SUPERUSER already.
_ROLE_MEMBERSHIPS = """
select r.rolname::text, g.rolname::text,
       case
           when g.rolsuper then 'SUPERUSER'
           when g.rolbypassrls then 'BYPASSRLS'
           when g.rolcreaterole then 'CREATEROLE'
       end,
       exists (
           select from pg_catalog.pg_class as c
           where c.relowner = g.oid and c.relrowsecurity
       ) as owns_secured
from pg_catalog.pg_roles as r
inner join pg_catalog.pg_roles as g
    on g.oid <> r.oid and pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER')
where r.rolname = any(%(roles)s)
  and not r.rolsuper
  and g.rolname <> 'tenancy_owner'
  and (
      g.rolsuper or g.rolbypassrls or g.rolcreaterole
      or g.rolname = any(%(predefined)s)
      or exists (
          select from pg_catalog.pg_class as c
          where c.relowner = g.oid and c.relrowsecurity
      )
      or (
          g.rolname = any(%(roles)s)
          and pg_catalog.concat(r.rolname, ' ', g.rolname) <> all(%(own)s)
      )
  )
order by 1, 2
"""


def check_roles(database_url: str) -> None:
    """Refuse (:class:`MigrateError`) pgtenancy roles that exist with attributes it forbids.

    Roles are cluster-wide: a role of the same name may have been created by hand, or by
    another database's installation and altered since. pgtenancy does not change such a role
    behind its owner's back; it says what is wrong and how to fix it, and applies nothing.
    """
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(_ROLE_ATTRIBUTES, (list(ROLES),)).fetchall()
        memberships = conn.execute(
            _ROLE_MEMBERSHIPS,
            {
                "roles": list(ROLES),
                "predefined": list(_PREDEFINED_FORBIDDEN),
                "own": [f"{m} {g}" for m, g in _OWN_MEMBERSHIPS],
            },
        ).fetchall()
    problems: list[str] = []
    for name, *flags, owner_member in rows:
        bad = [
            (attr, fix, why)
            for (attr, fix, why), on in zip(_ATTRIBUTE_REASONS, flags, strict=True)
            if on
        ]
        for attr, fix, why in bad:
            problems.append(
                f"role {name!r} has {attr} ({why}); fix: alter role {_quote_ident(name)} {fix};"
            )
        if owner_member:
            problems.append(
                f"role {name!r} is a member of tenancy_owner (it could change policies and "
                f"functions); fix: revoke tenancy_owner from {_quote_ident(name)};"
            )
    for name, group, attribute, owns_secured in memberships:
        if attribute:
            why = f"its members may SET ROLE to {group}, which has {attribute}"
        elif group in ROLES:
            why = "every login granted it would act across tenants"
        elif owns_secured:
            why = (
                f"its members may SET ROLE to {group}, which owns tables with row level "
                "security: an owner is exempt from their policies unless forced, and may drop them"
            )
        else:
            why = "it could read or write every table, or the server's files"
        problems.append(
            f"role {name!r} is a member of {group} ({why}); fix: revoke {_quote_ident(group)} "
            f"from {_quote_ident(name)}; (or from the role through which it is a member)"
        )
    if problems:
        raise MigrateError(
            "pgtenancy does not adopt roles with attributes it forbids (roles are cluster-wide: "
            "one of these may have been made by hand or for another database). Nothing was "
            "applied.\n  " + "\n  ".join(problems)
        )


_DEFINED_BY_THIS_TRANSACTION = """
select p.oid::pg_catalog.regprocedure::text, pg_catalog.age(p.xmin) <= 0
from pg_catalog.pg_proc as p
where p.pronamespace = 'tenancy'::pg_catalog.regnamespace
  and p.proowner = 'tenancy_owner'::pg_catalog.regrole
  and not exists (
      select from pg_catalog.pg_depend as d
      where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
        and d.objid = p.oid and d.deptype = 'e'
  )
order by 1
"""


def drop_removed_functions(database_url: str, all_steps: list[Step] | None = None) -> list[str]:
    """Drop the functions of schema tenancy that no file in ``sql/functions`` defines any more.

    A function whose file was deleted, or whose signature changed (a re-signed function is a new
    overload), would otherwise stay with its grants. Which functions the sources define is asked
    of PostgreSQL itself: every function file runs again in a transaction that is rolled back,
    and the functions it created or replaced are the ones whose catalog row that transaction
    wrote (``age(xmin) <= 0``). Every other function owned by tenancy_owner in schema tenancy
    (extension members aside) is dropped, without CASCADE: one still used by a policy, a
    trigger or a default is refused with PostgreSQL's reason (:class:`MigrateError`).
    """
    import psycopg
    from psycopg import sql

    functions = [s for s in (all_steps or steps()) if s.display.startswith("functions/")]
    with psycopg.connect(database_url) as conn:
        exists = conn.execute("select to_regnamespace('tenancy') is not null").fetchone()
        if not (exists and exists[0]):
            return []
        # As the steps run them (Step.text): a type named in a signature resolves the same way,
        # so the same functions are written, and signatures print schema-qualified.
        conn.execute("set local check_function_bodies = off")
        conn.execute("set local search_path = pg_catalog")
        for step in functions:
            conn.execute(f"set local role {step.role}")
            conn.execute(step.sql.encode())
        conn.execute("reset role")
        rows = conn.execute(_DEFINED_BY_THIS_TRANSACTION).fetchall()
        conn.rollback()
        removed = [str(sig) for sig, defined in rows if not defined]
        if not removed:
            return []
        conn.execute("set local search_path = pg_catalog")
        conn.execute("set local role tenancy_owner")
        for sig in removed:
            try:
                with conn.transaction():
                    # DROP ROUTINE: a file may define a procedure or an aggregate, which DROP
                    # FUNCTION refuses.
                    conn.execute(sql.SQL("drop routine {}").format(sql.SQL(sig)))
            except psycopg.errors.DependentObjectsStillExist as exc:
                raise MigrateError(
                    f"function {sig} is no longer defined in sql/functions but cannot be "
                    f"dropped: {exc.diag.message_primary} ({exc.diag.message_detail}). Drop or "
                    f"change what depends on it, or restore its definition. Nothing was dropped."
                ) from exc
    return removed


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
