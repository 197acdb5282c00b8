-- tenancy.current_member_role: the member role of this transaction's valid context, or NULL.

-- The role is part of the context key, so once context_tenant_id() accepts the value, the role
-- written in it is the one pgtenancy set.
-- Returns text, not tenancy.member_role: a service context's role is service, a support
-- context's (support/<expiry>/<xid>) support.
create or replace function tenancy.current_member_role()
returns text
language sql
stable
parallel restricted
as $$
    select case when c.role operator(pg_catalog.~~) 'support/%' then 'support' else c.role end
    from (
        select case
            when tenancy.context_tenant_id(null::pg_catalog.text []) is not null
                then tenancy.context_value_part(pg_catalog.current_setting('tenancy.context', true), 'role')
        end as role
    ) as c
$$;

comment on function tenancy.current_member_role() is
'owner, admin, member or viewer; service for a set_context() without a user; support for '
'tenancy.begin_support_access() while the access holds; NULL when there is no valid context.';

revoke all on function tenancy.current_member_role() from public;
grant execute on function tenancy.current_member_role()
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
