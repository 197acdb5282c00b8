-- tenancy.current_user_id: the user of this transaction's valid context, or NULL.

create or replace function tenancy.current_user_id()
returns uuid
language sql
stable
parallel restricted
as $$
    select nullif(pg_catalog.split_part(tenancy.context_checked(null), '|', 3), '')::pg_catalog.uuid
$$;

comment on function tenancy.current_user_id() is
'The current user id (JWT subject, or the user given to set_context); NULL for a service '
'context without a user or when there is no valid context.';

revoke all on function tenancy.current_user_id() from public;
grant execute on function tenancy.current_user_id()
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
