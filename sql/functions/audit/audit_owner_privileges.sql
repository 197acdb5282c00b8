-- What tenancy_audit_owner, the audit trail's owner, may use of tenancy_owner's objects.

-- tenancy.set_legal_hold (owned by tenancy_audit_owner) checks that a tenant exists: the id
-- column of tenancy.tenants and nothing else. Its security events go through
-- tenancy.record_security_event, granted in sql/functions/security/record_security_event.sql
-- (which is applied after this folder).
grant select (id) on tenancy.tenants to tenancy_audit_owner;
