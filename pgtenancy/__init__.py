"""pgtenancy: PostgreSQL-native multi-tenancy with row-level security and a verified tenant context.

The database does the work; this package applies the migrations and offers thin helpers that
open a transaction with the tenant set (see :mod:`pgtenancy.context`).
"""

from __future__ import annotations

from .context import (
    AuthenticationRefused,
    ContextError,
    TenantContext,
    aapi_key_transaction,
    aauthenticated_transaction,
    api_key_transaction,
    apool_api_key_transaction,
    apool_authenticated_transaction,
    apool_tenant_transaction,
    areset_session,
    atenant_transaction,
    authenticated_transaction,
    pool_api_key_transaction,
    pool_authenticated_transaction,
    pool_tenant_transaction,
    reset_session,
    tenant_transaction,
)

__version__ = "0.2.0.dev0"

__all__ = [
    "AuthenticationRefused",
    "ContextError",
    "TenantContext",
    "__version__",
    "aapi_key_transaction",
    "aauthenticated_transaction",
    "api_key_transaction",
    "apool_api_key_transaction",
    "apool_authenticated_transaction",
    "apool_tenant_transaction",
    "areset_session",
    "atenant_transaction",
    "authenticated_transaction",
    "pool_api_key_transaction",
    "pool_authenticated_transaction",
    "pool_tenant_transaction",
    "reset_session",
    "tenant_transaction",
]
