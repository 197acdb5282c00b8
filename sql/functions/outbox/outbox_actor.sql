-- tenancy.outbox_actor: who an outbox event is recorded as: the context's user, its API key, or NULL for a service.

create or replace function tenancy.outbox_actor()
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select coalesce(tenancy.current_user_id(), 'api_key:' || tenancy.current_api_key_id()::text)
$$;

comment on function tenancy.outbox_actor() is
'pgtenancy internal: the actor of an outbox event: the current user id, api_key:<id> for a '
'context set with an API key, NULL for a service context without a user.';

revoke all on function tenancy.outbox_actor() from public;
