-- Key layout: every index of a tenant table starts with tenant_id (docs/key-layout.md).

-- An index on user_id alone let EXPLAIN ANALYZE of a query on tenancy.memberships count the
-- memberships a user holds in other tenants ("Rows Removed by Filter"). Lookups by member go
-- through the primary key (tenant_id, user_id).
drop index if exists tenancy.memberships_user_id_idx;
