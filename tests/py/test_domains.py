"""Tenant resolution from hosts, custom domains and their verification, slug renames.

Every attack is paired with the legitimate request succeeding. The custom-domain claim race
runs two real sessions in each isolation level; ``pgtenancy domains verify`` is run against a
small authoritative DNS server started here (dnspython's wire format over UDP on 127.0.0.1),
not a mock of the resolver.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import psycopg
import pytest
from conftest import Roles, Tenant, add_member, run_cli, token_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_concurrency import SERIALIZABLE, every_isolation_level, race, run_alone

BASES = ["saas.test", "tenants.example"]
GRACE = "1 day"


@pytest.fixture(scope="module")
def domains(roles: Roles) -> None:
    """The platform's base domains, configured by an operator (tenancy_admin)."""
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute(
            "select tenancy.configure_domains(%s, p_slug_grace => %s::interval)", (BASES, GRACE)
        )


def resolve(url: str, host: str | None) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select tenancy.resolve_tenant(%s)", (host,)).fetchone()
    assert row is not None
    return row[0]


def sqlstate_of(url: str, query: str, *params: Any) -> str | None:
    """The SQLSTATE the statement fails with, or None when it succeeds (autocommit)."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(query, params)
        except psycopg.Error as exc:
            return exc.sqlstate
    return None


def as_owner(roles: Roles, tenant: Tenant, query: str, *params: Any) -> Any:
    """Run ``query`` as the tenant's owner (authenticated with a token); its first row."""
    with psycopg.connect(roles.app) as conn, conn.transaction():
        conn.execute("select tenancy.authenticate(%s)", (token_for(tenant.id, tenant.owner),))
        cur = conn.execute(query, params)
        return cur.fetchone() if cur.description else None


def error_as(roles: Roles, token: str, query: str, *params: Any) -> psycopg.Error | None:
    with psycopg.connect(roles.app) as conn:
        try:
            with conn.transaction():
                conn.execute("select tenancy.authenticate(%s)", (token,))
                conn.execute(query, params)
        except psycopg.Error as exc:
            return exc
    return None


def verify(roles: Roles, host: str, values: list[str]) -> str:
    with psycopg.connect(roles.service, autocommit=True) as conn:
        row = conn.execute("select tenancy.verify_custom_domain(%s, %s)", (host, values)).fetchone()
    assert row is not None
    return str(row[0])


def fresh_domain() -> str:
    return f"shop-{uuid.uuid4().hex[:10]}.customer.example"


# -- hosts of every shape --------------------------------------------------------------------

LEGITIMATE_SPELLINGS = [
    "{slug}.saas.test",
    "{SLUG}.SAAS.TEST",
    "{slug}.saas.test:8443",
    "{slug}.saas.test.",
    "{slug}.saas.test.:443",
    "  {slug}.saas.test\t",
    "{slug}.saas.test:",
    "{slug}.tenants.example",
]


@pytest.mark.parametrize("spelling", LEGITIMATE_SPELLINGS)
def test_every_spelling_of_a_tenant_subdomain_resolves(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant], spelling: str
) -> None:
    tenant = make_tenant()
    host = spelling.format(slug=tenant.slug, SLUG=tenant.slug.upper())
    assert resolve(roles.app, host) == tenant.id
    assert resolve(roles.service, host) == tenant.id


# Hosts that name no tenant, each next to the tenant's own subdomain, which resolves.
UNRESOLVED = [
    "x.{slug}.saas.test",  # multi-level under a base
    "{slug}-x.saas.test",  # no such tenant
    "{slug}.saas.test.evil.example",  # the base as a prefix of another domain
    "{slug}saas.test",
    "saas.test",  # the base itself
    "www.saas.test",  # reserved
    "api.saas.test",
    "{slug}.other.test",  # not a base domain
    "{slug}",  # the bare slug
    "127.0.0.1",
    "127.0.0.1:80",
    "127.1",
    "0x7f.1",
    "[::1]",
    "[::1]:8080",
    "::1",
    "[2001:db8::1]",
    "2001:db8::1",
    "10.0.0.1.",
]


@pytest.mark.parametrize("attack", UNRESOLVED)
def test_hosts_naming_no_tenant_resolve_to_null(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant], attack: str
) -> None:
    tenant = make_tenant()
    assert resolve(roles.app, attack.format(slug=tenant.slug)) is None
    assert resolve(roles.app, f"{tenant.slug}.saas.test") == tenant.id


MALFORMED = [
    ("", "it is empty"),
    ("   ", "it is empty"),
    ("a..saas.test", "empty label"),
    (".saas.test", "empty label"),
    ("{slug}.saas.test..", "empty label"),
    ("x" * 64 + ".saas.test", "over 63 characters"),
    (".".join(["a" * 63] * 4) + ".x", "over 253"),
    ("{slug}_x.saas.test", "outside a DNS name"),
    ("{slug}.saas.test/evil", "outside a DNS name"),
    ("user@{slug}.saas.test", "outside a DNS name"),
    ("{slug} .saas.test", "outside a DNS name"),
    ("{slug}.saas.test\r\nX-Injected: 1", "port"),
    ("{slug}.saas.test\r\nX-Injected", "outside a DNS name"),
    ("%41{slug}.saas.test", "outside a DNS name"),
    ("bücher.saas.test", "punycoded"),
    ("{slug}.saas.test:99999", "port"),
    ("{slug}.saas.test:http", "port"),
    ("{slug}.saas.test:80:80", "port"),
    ("-{slug}.saas.test", "hyphen"),
    ("[{slug}.saas.test]", "bracketed"),
    ("[::1", "bracketed"),
]


@pytest.mark.parametrize(("attack", "reason"), MALFORMED)
def test_malformed_hosts_are_refused_naming_the_value(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant], attack: str, reason: str
) -> None:
    tenant = make_tenant()
    host = attack.format(slug=tenant.slug)
    with psycopg.connect(roles.app, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("select tenancy.resolve_tenant(%s)", (host,))
        assert caught.value.sqlstate == "TN010"
        message = str(caught.value)
        assert reason in message
        assert message.startswith("malformed host '")
        assert host[:40].strip() in message or not host.strip()
        # The same connection then resolves the tenant's real host.
        row = conn.execute(
            "select tenancy.resolve_tenant(%s)", (f"{tenant.slug}.saas.test",)
        ).fetchone()
        assert row == (tenant.id,)


def test_punycoded_and_253_character_hosts_are_accepted(roles: Roles, domains: None) -> None:
    """The limits themselves are fine: a 253-character name, 63-character labels, punycode."""
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(longest) == 253
    assert resolve(roles.app, longest) is None
    assert resolve(roles.app, "xn--bcher-kva.saas.test") is None
    assert resolve(roles.app, None) is None


def test_suspended_and_deleted_tenants_do_not_resolve(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant]
) -> None:
    tenant, other = make_tenant(), make_tenant()
    host = f"{tenant.slug}.saas.test"
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.suspend_tenant(%s)", (tenant.id,))
    assert resolve(roles.app, host) is None
    assert resolve(roles.app, f"{other.slug}.saas.test") == other.id
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.reactivate_tenant(%s)", (tenant.id,))
    assert resolve(roles.app, host) == tenant.id
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        conn.execute("update tenancy.tenants set status = 'deleted' where id = %s", (tenant.id,))
    assert resolve(roles.app, host) is None


def test_reserved_slug_is_refused_by_create_tenant(roles: Roles, domains: None) -> None:
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("select tenancy.create_tenant('www', 'WWW', null)")
        assert caught.value.sqlstate == "22023"
        assert "'www'" in str(caught.value)
        slug = f"www-{uuid.uuid4().hex[:8]}"
        row = conn.execute("select tenancy.create_tenant(%s, 'Fine', null)", (slug,)).fetchone()
    assert row is not None
    assert resolve(roles.app, f"{slug}.saas.test") == row[0]
    assert resolve(roles.app, "www.saas.test") is None


def test_application_cannot_read_the_hostname_map(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant]
) -> None:
    """The global map is not the application's: only its own tenant's domains are visible."""
    a, b = make_tenant(), make_tenant()
    assert sqlstate_of(roles.app, "select * from tenancy.domain_claims") == "42501"
    rows = as_owner(
        roles, a, "select array_agg(hostname order by hostname) from tenancy.tenant_domains"
    )
    assert rows == ([f"{a.slug}.saas.test", f"{a.slug}.tenants.example"],)
    assert f"{b.slug}.saas.test" not in rows[0]


# -- custom domains ---------------------------------------------------------------------------


def test_custom_domain_lifecycle(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant]
) -> None:
    tenant = make_tenant()
    domain = fresh_domain()
    name, value = as_owner(
        roles, tenant, "select * from tenancy.add_custom_domain(%s)", domain.upper() + "."
    )
    assert name == f"_pgtenancy-challenge.{domain}"
    assert value.startswith("pgtenancy-verification=")
    # pending: does not resolve
    assert resolve(roles.app, domain) is None
    # a wrong value: failed, still not resolving
    assert verify(roles, domain, ["pgtenancy-verification=wrong", "v=spf1 -all"]) == "failed"
    assert resolve(roles.app, domain) is None
    # no value at all
    assert verify(roles, domain, []) == "failed"
    # an unverified domain cannot be primary
    err = error_as(
        roles, token_for(tenant.id, tenant.owner), "select tenancy.set_primary_domain(%s)", domain
    )
    assert err is not None and err.sqlstate == "55000"
    # the expected value among others: verified, resolves
    assert verify(roles, domain, ["other", f"  {value} "]) == "verified"
    assert resolve(roles.app, domain) == tenant.id
    assert resolve(roles.app, f"{domain.upper()}:443") == tenant.id
    assert resolve(roles.app, f"x.{domain}") is None
    as_owner(roles, tenant, "select tenancy.set_primary_domain(%s)", domain)
    primary = as_owner(
        roles, tenant, "select hostname, status from tenancy.tenant_domains where is_primary"
    )
    assert primary == (domain, "verified")
    # removed: stops resolving, and the primary falls back to the platform subdomain
    as_owner(roles, tenant, "select tenancy.remove_custom_domain(%s)", domain)
    assert resolve(roles.app, domain) is None
    primary = as_owner(
        roles, tenant, "select hostname from tenancy.tenant_domains where is_primary"
    )
    assert primary == (f"{tenant.slug}.saas.test",)
    # ... and is free to claim again
    other = make_tenant()
    as_owner(roles, other, "select * from tenancy.add_custom_domain(%s)", domain)


def test_domain_claimed_by_another_tenant_is_refused_without_naming_it(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant]
) -> None:
    holder, intruder = make_tenant(), make_tenant()
    domain = fresh_domain()
    _, value = as_owner(roles, holder, "select * from tenancy.add_custom_domain(%s)", domain)
    for spelling in (domain, domain.upper(), f"{domain}.", f" {domain}:443 "):
        err = error_as(
            roles,
            token_for(intruder.id, intruder.owner),
            "select tenancy.add_custom_domain(%s)",
            spelling,
        )
        assert err is not None and err.sqlstate == "23505", spelling
        message = str(err) + str(err.diag.message_hint) + str(err.diag.message_detail)
        assert str(holder.id) not in message and holder.slug not in message
    # The intruder cannot verify, remove or make primary what it does not hold.
    for query in (
        "select tenancy.remove_custom_domain(%s)",
        "select tenancy.set_primary_domain(%s)",
    ):
        err = error_as(roles, token_for(intruder.id, intruder.owner), query, domain)
        assert err is not None and err.sqlstate == "P0002"
    # The holder's verification still works; the intruder's own fresh domain is accepted.
    assert verify(roles, domain, [value]) == "verified"
    assert resolve(roles.app, domain) == holder.id
    as_owner(roles, intruder, "select * from tenancy.add_custom_domain(%s)", fresh_domain())
    # Claiming one's own domain twice: 23505 too.
    err = error_as(
        roles, token_for(holder.id, holder.owner), "select tenancy.add_custom_domain(%s)", domain
    )
    assert err is not None and err.sqlstate == "23505"


@pytest.mark.parametrize(
    "host",
    ["x.saas.test", "saas.test", "a.b.tenants.example", "10.1.2.3", "[::1]", "localhost"],
)
def test_platform_names_and_ip_addresses_cannot_be_claimed(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant], host: str
) -> None:
    tenant = make_tenant()
    err = error_as(
        roles, token_for(tenant.id, tenant.owner), "select tenancy.add_custom_domain(%s)", host
    )
    assert err is not None and err.sqlstate == "TN011", err
    as_owner(roles, tenant, "select * from tenancy.add_custom_domain(%s)", fresh_domain())


def test_only_owners_and_admins_manage_domains(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant]
) -> None:
    tenant = make_tenant()
    member, admin = add_member(roles, tenant, "member"), add_member(roles, tenant, "admin")
    err = error_as(
        roles, token_for(tenant.id, member), "select tenancy.add_custom_domain(%s)", fresh_domain()
    )
    assert err is not None and err.sqlstate == "42501"
    assert (
        error_as(
            roles,
            token_for(tenant.id, admin),
            "select tenancy.add_custom_domain(%s)",
            fresh_domain(),
        )
        is None
    )
    # Without a context: TN001. Verification is for trusted backends only: 42501 for the app.
    assert sqlstate_of(roles.app, "select tenancy.add_custom_domain(%s)", fresh_domain()) == "TN001"
    assert (
        sqlstate_of(roles.app, "select tenancy.verify_custom_domain('a.example', '{}')") == "42501"
    )
    assert sqlstate_of(roles.app, "select tenancy.configure_domains('{}')") == "42501"
    assert sqlstate_of(roles.service, "select tenancy.configure_domains('{}')") == "42501"


@every_isolation_level
def test_two_tenants_racing_for_one_domain_exactly_one_wins(
    roles: Roles,
    domains: None,
    make_tenant: Callable[[], Tenant],
    isolation: psycopg.IsolationLevel,
) -> None:
    a, b = make_tenant(), make_tenant()
    domain = fresh_domain()

    def claim(tenant: Tenant) -> Callable[[psycopg.Connection[Any]], None]:
        def action(conn: psycopg.Connection[Any]) -> None:
            conn.execute("select tenancy.authenticate(%s)", (token_for(tenant.id, tenant.owner),))
            conn.execute("select tenancy.add_custom_domain(%s)", (domain,))

        return action

    actions = {"a": claim(a), "b": claim(b)}
    outcomes = race(roles.superuser, roles.app, actions, isolation)
    winners = [o for o in outcomes.values() if o.ok]
    losers = [o for o in outcomes.values() if not o.ok]
    assert len(winners) == 1, outcomes
    assert losers[0].sqlstate in {"23505", "40001"}, outcomes
    if isolation != SERIALIZABLE and losers[0].sqlstate == "40001":
        assert isolation != psycopg.IsolationLevel.READ_COMMITTED
    # The loser retrying, as an application does after 40001: refused, holder not named.
    loser = a if losers[0].actor == "a" else b
    winner = b if loser is a else a
    with pytest.raises(psycopg.Error) as caught:
        run_alone(roles.app, actions[losers[0].actor], isolation)
    assert caught.value.sqlstate == "23505"
    assert str(winner.id) not in str(caught.value)
    with psycopg.connect(roles.superuser) as conn:
        holders = conn.execute(
            "select tenant_id from tenancy.domain_claims where hostname = %s", (domain,)
        ).fetchall()
        rows = conn.execute(
            "select tenant_id from tenancy.tenant_domains where hostname = %s", (domain,)
        ).fetchall()
    assert holders == [(winner.id,)] and rows == [(winner.id,)]


# -- slug renames -------------------------------------------------------------------------------


def test_renamed_slug_keeps_resolving_for_the_grace_period(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant]
) -> None:
    tenant = make_tenant()
    old, new = tenant.slug, f"r-{uuid.uuid4().hex[:10]}"
    with psycopg.connect(roles.service, autocommit=True) as conn:
        conn.execute("select tenancy.rename_tenant_slug(%s, %s)", (tenant.id, new))
    for base in BASES:
        assert resolve(roles.app, f"{new}.{base}") == tenant.id
        assert resolve(roles.app, f"{old}.{base}") == tenant.id  # grace period
    primary = as_owner(
        roles, tenant, "select hostname from tenancy.tenant_domains where is_primary"
    )
    assert primary == (f"{new}.saas.test",)
    # During the grace period the old slug stays the tenant's: another cannot take it.
    assert (
        sqlstate_of(roles.admin, "select tenancy.create_tenant(%s, 'Squatter', null)", old)
        == "23505"
    )
    # The grace period ends (its end moved into the past, as time would).
    with psycopg.connect(roles.superuser, autocommit=True) as conn:
        conn.execute(
            "update tenancy.domain_claims set expires_at = now() - interval '1 second' "
            "where tenant_id = %s and expires_at is not null",
            (tenant.id,),
        )
    for base in BASES:
        assert resolve(roles.app, f"{old}.{base}") is None
        assert resolve(roles.app, f"{new}.{base}") == tenant.id
    # ... and the old slug is free.
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        row = conn.execute("select tenancy.create_tenant(%s, 'Newcomer', null)", (old,)).fetchone()
    assert row is not None
    assert resolve(roles.app, f"{old}.saas.test") == row[0]


def test_renaming_back_within_the_grace_period_takes_the_old_subdomains_back(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant]
) -> None:
    tenant = make_tenant()
    old, new = tenant.slug, f"r-{uuid.uuid4().hex[:10]}"
    with psycopg.connect(roles.service, autocommit=True) as conn:
        conn.execute("select tenancy.rename_tenant_slug(%s, %s)", (tenant.id, new))
        conn.execute("select tenancy.rename_tenant_slug(%s, %s)", (tenant.id, old))
        expiring = conn.execute(
            "select count(*) from tenancy.tenants t where t.id = %s", (tenant.id,)
        ).fetchone()
    assert expiring == (1,)
    assert resolve(roles.app, f"{old}.saas.test") == tenant.id
    assert resolve(roles.app, f"{new}.saas.test") == tenant.id  # the short-lived name, in grace
    with psycopg.connect(roles.superuser) as conn:
        row = conn.execute(
            "select expires_at from tenancy.domain_claims where hostname = %s",
            (f"{old}.saas.test",),
        ).fetchone()
    assert row == (None,)


def test_rename_refusals(roles: Roles, domains: None, make_tenant: Callable[[], Tenant]) -> None:
    tenant, other = make_tenant(), make_tenant()
    rename = "select tenancy.rename_tenant_slug(%s, %s)"
    assert sqlstate_of(roles.service, rename, tenant.id, "Bad_Slug") == "22023"
    assert sqlstate_of(roles.service, rename, tenant.id, "admin") == "22023"
    assert sqlstate_of(roles.service, rename, tenant.id, other.slug) == "23505"
    assert sqlstate_of(roles.service, rename, uuid.uuid4(), "fine-slug") == "P0002"
    assert sqlstate_of(roles.app, rename, tenant.id, "fine-slug") == "42501"
    assert resolve(roles.app, f"{tenant.slug}.saas.test") == tenant.id
    assert sqlstate_of(roles.admin, rename, tenant.id, f"ok-{uuid.uuid4().hex[:8]}") is None


def test_zero_grace_period_drops_old_subdomains_at_once(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant]
) -> None:
    tenant = make_tenant()
    old, new = tenant.slug, f"z-{uuid.uuid4().hex[:10]}"
    with psycopg.connect(roles.admin, autocommit=True) as conn:
        conn.execute("select tenancy.configure_domains(%s, p_slug_grace => '0')", (BASES,))
        try:
            conn.execute("select tenancy.rename_tenant_slug(%s, %s)", (tenant.id, new))
        finally:
            conn.execute(
                "select tenancy.configure_domains(%s, p_slug_grace => %s::interval)", (BASES, GRACE)
            )
    assert resolve(roles.app, f"{old}.saas.test") is None
    assert resolve(roles.app, f"{new}.saas.test") == tenant.id


def test_configure_domains_refusals(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant]
) -> None:
    tenant = make_tenant()
    configure = "select tenancy.configure_domains(%s, %s)"
    assert sqlstate_of(roles.admin, configure, ["saas.test", "a.saas.test"], None) == "22023"
    assert sqlstate_of(roles.admin, configure, ["bad_base.test"], None) == "TN010"
    assert sqlstate_of(roles.admin, configure, ["10.0.0.1"], None) == "22023"
    assert sqlstate_of(roles.admin, configure, BASES, ["ok", "not a label"]) == "22023"
    assert sqlstate_of(roles.admin, configure, BASES, ["www", tenant.slug]) == "22023"
    # nothing changed
    assert resolve(roles.app, f"{tenant.slug}.saas.test") == tenant.id
    assert (
        sqlstate_of(
            roles.admin,
            "select tenancy.configure_domains(%s, p_slug_grace => %s::interval)",
            BASES,
            GRACE,
        )
        is None
    )


# -- the property: any string gives NULL, a tenant, or TN010 -----------------------------------

host_text = st.one_of(
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=300),
    st.lists(
        st.text(st.sampled_from("abcXYZ019-_.:[]% \t"), min_size=0, max_size=70), max_size=6
    ).map(".".join),
    st.from_regex(r"\A\[?[0-9a-fA-F:.]{0,45}\]?(:[0-9]{0,6})?\Z"),
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(host=host_text)
def test_resolve_tenant_never_fails_otherwise(roles: Roles, domains: None, host: str) -> None:
    with psycopg.connect(roles.app, autocommit=True) as conn:
        try:
            row = conn.execute("select tenancy.resolve_tenant(%s)", (host,)).fetchone()
        except psycopg.Error as exc:
            assert exc.sqlstate == "TN010", (host, exc.sqlstate, str(exc))
            assert str(exc).startswith("malformed host ")
            return
    assert row is not None
    assert row[0] is None or isinstance(row[0], uuid.UUID)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(host=host_text)
def test_tenant_public_profile_never_fails_otherwise(
    roles: Roles, domains: None, host: str
) -> None:
    with psycopg.connect(roles.app, autocommit=True) as conn:
        try:
            found = conn.execute(
                "select display_name, branding, primary_domain, active "
                "from tenancy.tenant_public_profile(%s)",
                (host,),
            ).fetchall()
        except psycopg.Error as exc:
            assert exc.sqlstate == "TN010", (host, exc.sqlstate, str(exc))
            return
    assert len(found) <= 1


# -- pgtenancy domains verify, against a DNS server of our own ------------------------------


class DnsServer:
    """An authoritative UDP DNS server on 127.0.0.1: TXT records from ``records``, NXDOMAIN
    for every other name."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> DnsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            self.queries.append(name)
            if name not in self.records:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT:
                rdatas = [
                    dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, f'"{v}"')
                    for v in self.records[name]
                ]
                response.answer.append(dns.rrset.from_rdata_list(question.name, 60, rdatas))
            self.sock.sendto(response.to_wire(), peer)


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


def test_domains_verify_looks_up_txt_records(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant], dns_server: DnsServer
) -> None:
    tenant = make_tenant()
    good, wrong, missing = fresh_domain(), fresh_domain(), fresh_domain()
    name, value = as_owner(roles, tenant, "select * from tenancy.add_custom_domain(%s)", good)
    wrong_name, _ = as_owner(roles, tenant, "select * from tenancy.add_custom_domain(%s)", wrong)
    as_owner(roles, tenant, "select * from tenancy.add_custom_domain(%s)", missing)
    dns_server.records[name] = ["v=spf1 -all", value]
    dns_server.records[wrong_name] = ["pgtenancy-verification=not-the-token"]

    res = run_cli(
        "domains", "verify", "--database-url", roles.service,
        "--nameserver", "127.0.0.1", "--port", str(dns_server.port), "--timeout", "2",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"verified {good} " in res.stdout
    assert f"failed {wrong} " in res.stdout
    assert f"failed {missing} " in res.stdout
    assert name in dns_server.queries
    assert resolve(roles.app, good) == tenant.id
    assert resolve(roles.app, wrong) is None
    assert resolve(roles.app, missing) is None

    # Published later: the next run verifies it.
    dns_server.records[wrong_name] = [
        as_owner(
            roles, tenant,
            "select 'pgtenancy-verification=' || txt_token from tenancy.tenant_domains "
            "where hostname = %s",
            wrong,
        )[0]
    ]  # fmt: skip
    res = run_cli(
        "domains", "verify", "--database-url", roles.service,
        "--nameserver", "127.0.0.1", "--port", str(dns_server.port), "--timeout", "2",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"verified {wrong} " in res.stdout
    assert good not in res.stdout  # verified domains are not looked up again
    assert resolve(roles.app, wrong) == tenant.id


def test_domains_verify_leaves_domains_alone_when_dns_does_not_answer(
    roles: Roles, domains: None, make_tenant: Callable[[], Tenant]
) -> None:
    tenant = make_tenant()
    domain = fresh_domain()
    as_owner(roles, tenant, "select * from tenancy.add_custom_domain(%s)", domain)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    silent.bind(("127.0.0.1", 0))
    try:
        res = run_cli(
            "domains", "verify", "--database-url", roles.service,
            "--nameserver", "127.0.0.1", "--port", str(silent.getsockname()[1]),
            "--timeout", "0.3",
        )  # fmt: skip
    finally:
        silent.close()
    assert res.returncode == 1
    assert f"{domain}: TXT lookup of _pgtenancy-challenge.{domain} failed" in res.stderr
    with psycopg.connect(roles.superuser) as conn:
        row = conn.execute(
            "select status from tenancy.tenant_domains where hostname = %s", (domain,)
        ).fetchone()
    assert row == ("pending",)


def test_domains_verify_needs_a_database(roles: Roles) -> None:
    env = {k: v for k, v in __import__("os").environ.items() if k != "DATABASE_URL"}
    res = run_cli("domains", "verify", env=env)
    assert res.returncode == 2
    assert "which database?" in res.stderr
