"""``pgtenancy audit``: seal the audit trail, verify a tenant's chain, export its latest seal.

Thin calls of the SQL functions that do the work (``sql/functions/audit/``):

- :func:`seal`: ``tenancy.seal_audit()``, one round in its own transaction (connect as a member
  of ``tenancy_service`` or ``tenancy_admin``; run it on a schedule);
- :func:`verify`: ``tenancy.verify_audit(tenant, anchor)`` (``tenancy_auditor``,
  ``tenancy_admin`` or ``tenancy_service``);
- :func:`export_seal`: ``tenancy.export_seal(tenant)``, the value to keep outside the database
  and pass back to :func:`verify` as the anchor.

A tenant of ``None`` stands for the rows of no tenant (their own chain).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class SealRound:
    """What one ``tenancy.seal_audit()`` call sealed."""

    tenants: int
    batches: int
    sealed_rows: int
    frontier: int


@dataclass(frozen=True)
class Verification:
    """The outcome of ``tenancy.verify_audit``: ok, or the first problem in chain order."""

    ok: bool
    checked_rows: int
    checked_seals: int
    first_bad_id: int | None
    problem: str | None


def seal(url: str) -> SealRound:
    """Seal every audit row of the transactions that have ended (one committed round)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select tenants, batches, sealed_rows, frontier from tenancy.seal_audit()"
        ).fetchone()
    assert row is not None
    return SealRound(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def verify(
    url: str, tenant_id: uuid.UUID | None, anchor: dict[str, Any] | None = None
) -> Verification:
    """Verify one tenant's chain and rows, and the anchor when one is given."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select ok, checked_rows, checked_seals, first_bad_id, problem"
            " from tenancy.verify_audit(%s, %s)",
            (tenant_id, None if anchor is None else Jsonb(anchor)),
        ).fetchone()
    assert row is not None
    return Verification(bool(row[0]), int(row[1]), int(row[2]), row[3], row[4])


def export_seal(url: str, tenant_id: uuid.UUID | None) -> dict[str, Any]:
    """The tenant's latest seal, as ``tenancy.export_seal`` returns it."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select tenancy.export_seal(%s)", (tenant_id,)).fetchone()
    assert row is not None
    return dict(row[0])
