-- tenancy.current_member_role: the member role of this transaction's valid context, or NULL.

create or replace function tenancy.current_member_role()
returns text
language sql
stable
parallel restricted
as $$
    select nullif(pg_catalog.split_part(tenancy.context_checked(null), '|', 4), '')
$$;

comment on function tenancy.current_member_role() is
'owner, admin, member or viewer; service for a set_context() without a user; NULL when there '
'is no valid context.';

revoke all on function tenancy.current_member_role() from public;
grant execute on function tenancy.current_member_role()
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
