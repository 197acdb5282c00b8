"""The seeded world of the GDPR tests (test_gdpr.py, test_redteam_gdpr.py) and the PII scan.

Customers (tests/fixtures/schema.sql: app.customers, their app.orders and app.visits) are the
data subjects. Each person has values found nowhere else in the database (a random token in
each), so a scan for a value finds that person's copies only: email, full name, two phones (the
first replaced by an UPDATE, so the audit trail holds both in old and new data), a shipping
address and an IPv6 address. A customer is written the way an application writes it: by a
``tenancy_service`` login in a tenant context; the app also tracks an analytics event whose
distinct id is the customer id and whose properties carry the email (the outbox).

:func:`scan` reads every row of every table the connection may read, as text, and returns the
tables holding each value: run as a tenant's owner or admin (row level security applies), as
``tenancy_auditor`` or as the superuser (everything, pgtenancy's own tables included).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from conftest import Roles, Tenant, add_member, token_for
from psycopg import sql

from pgtenancy import authenticated_transaction, tenant_transaction, testing

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class Person:
    """One data subject's personal values, each unique in the database."""

    email: str
    full_name: str
    phone_old: str
    phone: str
    address: str
    ip: str

    def values(self) -> list[str]:
        return [self.email, self.full_name, self.phone_old, self.phone, self.address, self.ip]


def person(label: str = "p") -> Person:
    tok = secrets.token_hex(5)
    digits = "".join(str(int(c, 16) % 10) for c in secrets.token_hex(4))
    groups = [f"{int(secrets.token_hex(2), 16) | 0x1000:x}" for _ in range(3)]
    ip = str(ipaddress.IPv6Address(f"2001:db8:{groups[0]}:{groups[1]}::{groups[2]}"))
    return Person(
        email=f"{label}.{tok}@mail.test",
        full_name=f"{label.title()} Q{tok} Quill",
        phone_old=f"+1-555-0{digits}-old{tok}",
        phone=f"+1-555-{digits}-{tok}",
        address=f"{int(digits[:3]) + 1} Secret Lane {tok}, Springfield",
        ip=ip,
    )


def similar(p: Person) -> Person:
    """A subject that looks like ``p`` (same shapes, near-identical values) yet is another one.

    None of ``p``'s values is a substring of the similar one's, so a scan tells them apart.
    """
    local, domain = p.email.split("@")
    return Person(
        email=f"{local}x@{domain}",
        full_name=p.full_name.replace(" Quill", " Quilt"),
        phone_old=p.phone_old.replace("-old", "-0ld"),
        phone=p.phone[:-1] + ("0" if p.phone[-1] != "0" else "1"),
        address=p.address.replace("Secret Lane", "Secret Lan"),
        ip=str(ipaddress.IPv6Address(int(ipaddress.IPv6Address(p.ip)) ^ 0x10000)),
    )


def write_customer(
    conn: Conn, p: Person, *, customer_id: int | None = None, orders: bool = True
) -> int:
    """A customer with two orders (unless not ``orders``) and two visits, its phone changed
    once; in the open tenant transaction of ``conn``. Returns the customer id."""
    if customer_id is None:
        row = conn.execute(
            "insert into app.customers (email, full_name, phone) values (%s, %s, %s) returning id",
            (p.email, p.full_name, p.phone_old),
        ).fetchone()
    else:
        row = conn.execute(
            "insert into app.customers (id, email, full_name, phone) overriding system value"
            " values (%s, %s, %s, %s) returning id",
            (customer_id, p.email, p.full_name, p.phone_old),
        ).fetchone()
    assert row is not None
    cid = int(row[0])
    conn.execute("update app.customers set phone = %s where id = %s", (p.phone, cid))
    for total in (10, 20) if orders else ():
        conn.execute(
            "insert into app.orders (customer_id, shipping_address, total) values (%s, %s, %s)",
            (cid, p.address, total),
        )
    for path in ("/", "/cart"):
        conn.execute(
            "insert into app.visits (customer_id, ip_address, path) values (%s, %s, %s)",
            (cid, p.ip, path),
        )
    conn.execute(
        "select tenancy.track_event('customer signed up', %s, %s)",
        (str(cid), psycopg.types.json.Jsonb({"email": p.email, "ip": p.ip})),
    )
    return cid


def add_customer(
    roles: Roles, tenant: Tenant, p: Person, *, customer_id: int | None = None, orders: bool = True
) -> int:
    with psycopg.connect(roles.service) as conn, tenant_transaction(conn, tenant.id):
        return write_customer(conn, p, customer_id=customer_id, orders=orders)


@dataclass
class World:
    """Tenant A: ``subject`` and ``lookalike``; tenant B: ``other`` under the same customer id."""

    a: Tenant
    b: Tenant
    a_admin: str
    subject: Person
    lookalike: Person
    other: Person
    subject_id: int
    lookalike_id: int
    other_id: int

    @property
    def kept(self) -> list[str]:
        return self.lookalike.values() + self.other.values()


def make_world(roles: Roles, make_tenant: Any) -> World:
    a, b = make_tenant(), make_tenant()
    subject = person("dana")
    lookalike = similar(subject)
    other = person("dana")
    subject_id = add_customer(roles, a, subject)
    lookalike_id = add_customer(roles, a, lookalike)
    other_id = add_customer(roles, b, other, customer_id=subject_id)
    assert other_id == subject_id
    return World(
        a=a,
        b=b,
        a_admin=add_member(roles, a, "admin"),
        subject=subject,
        lookalike=lookalike,
        other=other,
        subject_id=subject_id,
        lookalike_id=lookalike_id,
        other_id=other_id,
    )


@contextmanager
def as_member(roles: Roles, tenant: Tenant, user: str) -> Iterator[Conn]:
    """A tenancy_app connection in a transaction authenticated by ``user``'s JWT."""
    with (
        psycopg.connect(roles.app) as conn,
        authenticated_transaction(conn, token_for(tenant.id, user)),
    ):
        yield conn


def erase(roles: Roles, tenant: Tenant, user: str, subject: str, reason: str = "art. 17") -> Any:
    with as_member(roles, tenant, user) as conn:
        row = conn.execute("select tenancy.erase_subject(%s, %s)", (subject, reason)).fetchone()
    assert row is not None
    return row[0]


def seal(roles: Roles) -> None:
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select * from tenancy.seal_audit()")


def verify(url: str, tenant: Tenant) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select ok, checked_rows, problem from tenancy.verify_audit(%s)", (tenant.id,)
        ).fetchone()
    assert row is not None
    return tuple(row)


def ensure_auditor(superuser_url: str) -> str:
    """A login in tenancy_auditor (cluster-wide, made once), on ``superuser_url``'s database."""
    name = "t_gdpr_auditor"
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone()
        if not exists:
            with suppress(psycopg.errors.DuplicateObject):
                conn.execute(f"create role {name} login in role tenancy_auditor")
    return testing.as_login(superuser_url, name)


# Every ordinary, partitioned and materialized table but the catalogs (a role may read a
# partitioned table but none of its partitions: both are read).
TABLES_SQL = """
select n.nspname, c.relname
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'm')
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname !~ '^pg_toast'
  and n.nspname !~ '^pg_temp'
  and (%(all)s or has_table_privilege(c.oid, 'select'))
order by 1, 2
"""


def scan(conn: Conn, values: Iterable[str], *, everything: bool = False) -> dict[str, list[str]]:
    """Per value, the tables (``schema.table``) with a row whose text holds it.

    Reads every table the role may SELECT (``everything``: every table; the superuser).
    A table the role may select but whose read fails (it is refused) counts as holding nothing.
    Run outside a transaction of the caller's, or inside one (savepoints keep it usable).
    """
    wanted = list(values)
    found: dict[str, list[str]] = {v: [] for v in wanted}
    tables = conn.execute(TABLES_SQL, {"all": everything}).fetchall()
    assert tables, "nothing to scan"
    for schema, name in tables:
        query = sql.SQL(
            "select v from unnest(%s::text[]) as v"
            " where exists (select from {} as t where strpos(t::text, v) > 0)"
        ).format(sql.Identifier(schema, name))
        try:
            with conn.transaction():
                rows = conn.execute(query, (wanted,)).fetchall()
        except psycopg.errors.InsufficientPrivilege:
            continue
        for (v,) in rows:
            found[v].append(f"{schema}.{name}")
    return found


def holding(found: dict[str, list[str]]) -> dict[str, list[str]]:
    """Only the values found somewhere."""
    return {v: t for v, t in found.items() if t}
