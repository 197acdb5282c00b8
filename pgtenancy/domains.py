"""``pgtenancy domains verify``: look up the TXT records of pending custom domains.

The database never does DNS: this is the one place that does. For every custom domain that is
not verified yet (``tenancy.custom_domains_to_verify()``), the TXT record
``_pgtenancy-challenge.<domain>`` is looked up with dnspython and every string found is handed
to ``tenancy.verify_custom_domain(domain, strings)``, which compares them with the value the
tenant was given and records the outcome. Connect as a member of ``tenancy_service``.

A domain whose name does not exist or has no TXT record is recorded as failed (checked again on
the next run); a lookup that fails for another reason (timeout, SERVFAIL, refused) records
nothing for that domain and is reported, so a resolver outage never fails a domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.rdatatype
import dns.resolver
import psycopg


@dataclass(frozen=True)
class Outcome:
    """One domain's check: its status afterwards, or the lookup error that left it as it was."""

    hostname: str
    txt_name: str
    status: str | None
    values: tuple[str, ...] = ()
    error: str | None = None


def make_resolver(
    nameservers: Sequence[str] | None = None, port: int = 53, timeout: float = 5.0
) -> dns.resolver.Resolver:
    """The system's resolver, or one asking ``nameservers`` (addresses) on ``port``."""
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = list(nameservers)
    else:
        resolver = dns.resolver.Resolver()
    resolver.port = port
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def txt_values(resolver: dns.resolver.Resolver, name: str) -> tuple[str, ...]:
    """Every TXT string at ``name`` (a record's character-strings joined, as RFC 7208 reads
    them); empty when the name does not exist or has no TXT record. Other failures raise
    :class:`dns.exception.DNSException`."""
    try:
        answer = resolver.resolve(name, dns.rdatatype.TXT, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return ()
    values: list[str] = []
    for rdata in answer:
        strings = getattr(rdata, "strings", ())
        values.append(b"".join(strings).decode("utf-8", errors="replace"))
    return tuple(values)


def verify(database_url: str, resolver: dns.resolver.Resolver) -> list[Outcome]:
    """Check every pending or failed custom domain once; each outcome is committed at once."""
    outcomes: list[Outcome] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        pending = conn.execute(
            "select hostname, txt_name from tenancy.custom_domains_to_verify()"
        ).fetchall()
        for hostname, txt_name in pending:
            try:
                values = txt_values(resolver, txt_name)
            except dns.exception.DNSException as exc:
                outcomes.append(Outcome(hostname, txt_name, None, error=f"{type(exc).__name__}"))
                continue
            row = conn.execute(
                "select tenancy.verify_custom_domain(%s, %s)", (hostname, list(values))
            ).fetchone()
            outcomes.append(Outcome(hostname, txt_name, row[0] if row else None, values))
    return outcomes
