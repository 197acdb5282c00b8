"""Instructions of tenancy.feature_enabled inside a policy, against a constant in its place.

The cluster of bench/shapes.py (20 tenants, 20,000 documents) gets two copies of
app.documents whose policies differ only in their second condition:

* ``const_documents``: ``tenant_id = (select tenancy.context_tenant_id(null)) and (select true)``;
* ``flag_documents``: ``... and (select tenancy.feature_enabled('docs.search'))``.

Prepared point lookups run as an application login in a context set by
``tenancy.authenticate`` (one transaction of K lookups, T times) in single-user mode under
callgrind; each figure is ``(count with K statements - count with none) / K`` over T
transactions. The flag is measured twice: on through the tenant's override (both primary-key
probes find a row), and on through the platform default alone (the override probe finds none).
Needs valgrind and root, like bench/shapes.py.

Usage: python bench/feature_flags.py [--transactions 20] [--queries 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from shapes import USER, build, instructions, lookups

TABLE = (
    "create table app.{name} (tenant_id uuid not null, id bigint not null, title text not null, "
    "primary key (tenant_id, id))\n"
    "alter table app.{name} enable row level security\n"
    "alter table app.{name} force row level security\n"
    "create policy readers on app.{name} for select to public using (tenant_id operator "
    "(pg_catalog.=) (select tenancy.context_tenant_id(null)) and (select {condition}))\n"
    "grant select on app.{name} to tenancy_app\n"
    "insert into app.{name} select tenant_id, id, title from app.documents\n"
)

SETUP = (
    TABLE.format(name="const_documents", condition="true")
    + TABLE.format(name="flag_documents", condition="tenancy.feature_enabled('docs.search')")
    + "set role tenancy_admin\n"
    "select tenancy.set_feature_default('docs.search', 'false')\n"
    "select tenancy.set_feature_flag(t.id, 'docs.search', 'true') from tenancy.tenants as t\n"
    "reset role\n"
    "vacuum analyze\n"
)

# The flag on through the default alone: every override removed.
DEFAULT_ONLY = (
    "set role tenancy_admin\n"
    "select tenancy.set_feature_default('docs.search', 'true')\n"
    "select tenancy.set_feature_flag(t.id, 'docs.search', null) from tenancy.tenants as t\n"
    "reset role\n"
)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--transactions", type=int, default=20)
    ap.add_argument("--queries", type=int, default=20)
    args = ap.parse_args()
    if not shutil.which("valgrind") or os.geteuid() != 0:
        print("bench/feature_flags.py needs valgrind and root", file=sys.stderr)
        return 2
    t, k = args.transactions, args.queries
    with tempfile.TemporaryDirectory(prefix="pgtenancy-flags-") as tmp:
        work = Path(tmp)
        shutil.chown(work, USER)
        data = work / "data"
        tenant, token, first, _key = build(data, work)
        instructions(data, work, SETUP)

        def per_statement(table: str) -> float:
            query = f"select title from app.{table} where id = $1"
            base = lookups("shapes_app", query, tenant, token, first, t, 0, "uuid")
            full = lookups("shapes_app", query, tenant, token, first, t, k, "uuid")
            return (instructions(data, work, full) - instructions(data, work, base)) / (t * k)

        const = per_statement("const_documents")
        override = per_statement("flag_documents")
        instructions(data, work, DEFAULT_ONLY)
        default = per_statement("flag_documents")

    print(f"server instructions per point lookup (T = {t} transactions, K = {k} statements)")
    print(f"{'second policy condition':52} {'instructions':>12} {'ratio':>6}")
    rows = [
        ("(select true)", const),
        ("(select tenancy.feature_enabled(...)), tenant override", override),
        ("(select tenancy.feature_enabled(...)), platform default", default),
    ]
    for name, value in rows:
        print(f"{name:52} {value:12,.0f} {value / const:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
