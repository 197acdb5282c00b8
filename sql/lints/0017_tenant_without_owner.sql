-- pgtenancy lint 0017 (WARN): a tenant (not deleted) without an owner in tenancy.memberships.
-- Nobody of the tenant can manage its members; only a platform operator can give it one.
-- The view reads memberships as its owner, tenancy_owner, which sees every tenant's rows.

create or replace view tenancy.lint_0017_tenant_without_owner as
select
    '0017'::pg_catalog.text as code,
    'tenant_without_owner'::pg_catalog.text as name,
    'WARN'::pg_catalog.text as level,
    t.id::pg_catalog.text as object,
    pg_catalog.format(
        'tenant %s (%s, %s) has no member with role owner: nobody of the tenant can manage its '
        'members',
        t.id, t.slug, t.status
    ) as detail,
    pg_catalog.format(
        'as tenancy_service: select tenancy.set_context(%L); select '
        'tenancy.add_member(<user id>, ''owner''); (or suspend or delete the tenant)',
        t.id
    ) as remediation
from tenancy.tenants as t
where
    not t.status operator (pg_catalog.=) 'deleted'
    and not exists (
        select from tenancy.memberships as m
        where
            m.tenant_id operator (pg_catalog.=) t.id
            and m.role::pg_catalog.text operator (pg_catalog.=) 'owner'
    );

comment on view tenancy.lint_0017_tenant_without_owner is
'pgtenancy doctor, lint 0017 (WARN): tenants, not deleted, without an owner membership. See '
'docs/lints/0017_tenant_without_owner.md.';
revoke all on tenancy.lint_0017_tenant_without_owner from public;
grant select on tenancy.lint_0017_tenant_without_owner to tenancy_admin, tenancy_auditor;
