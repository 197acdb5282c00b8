-- tenancy.outbox_actor: who an outbox event is recorded as, from a context's user slot: the user, its API key, or NULL for a service.

create or replace function tenancy.outbox_actor(p_user_slot text)
returns text
language sql
immutable
parallel safe
as $$
    select case
        when p_user_slot operator(pg_catalog.=) '' then null
        when pg_catalog.starts_with(p_user_slot, pg_catalog.chr(30))
            then 'api_key:' operator(pg_catalog.||) pg_catalog.substr(p_user_slot, 2)
        else p_user_slot
    end
$$;

comment on function tenancy.outbox_actor(text) is
'pgtenancy internal: the actor of an outbox event from the user slot of the context '
'(tenancy.context_user_slot): the user id, api_key:<id> for an API key''s context, NULL for a '
'service context without a user.';

revoke all on function tenancy.outbox_actor(text) from public;
