-- The audit trigger's own reading of the context agrees with the context functions, in every kind of context.
-- tenancy.tg_audit reads and checks tenancy.context itself (calling context_tenant_id,
-- context_user_slot and current_member_role from its pinned search_path would plan them again on
-- every call). Each case writes one project and compares the audit row's actor with what
-- current_user_id(), current_member_role() and current_api_key_id() say in the same transaction:
-- a user's context, a service context, an API key's context, a context whose value was edited
-- after it was set (another user: the fingerprint no longer matches; another tenant: no context),
-- and no context at all.

begin;
select plan(12);

\ir setup/helpers.psql

select tenancy.create_tenant('audit-ctx-a', 'Audit context A', 'ctx|owner') as tenant_a \gset
select tenancy.create_tenant('audit-ctx-b', 'Audit context B', 'ctx|owner-b') as tenant_b \gset

-- The actor of the last audit row, and what the context functions say now (read as the superuser,
-- in the same transaction and context).
create function pg_temp.last_actor()
returns text
language sql
as $$
    select pg_catalog.concat_ws(
        ' / ', coalesce(a.actor_user_id, '-'), coalesce(a.actor_role, '-'), coalesce(a.api_key_id::text, '-')
    )
    from tenancy.audit_logs as a
    order by a.id desc
    limit 1
$$;
create function pg_temp.context_actor()
returns text
language sql
as $$
    select pg_catalog.concat_ws(
        ' / ', coalesce(tenancy.current_user_id(), '-'), coalesce(tenancy.current_member_role(), '-'),
        coalesce(tenancy.current_api_key_id()::text, '-')
    )
$$;

-- 1-2: a user's context (the owner)
select pg_temp.act_as(:'tenant_a', 'ctx|owner');
insert into app.projects (name) values ('ctx user');
reset role;
select is(pg_temp.last_actor(), pg_temp.context_actor(), 'a user''s context: the audit row names what the context functions say');
select is(pg_temp.last_actor(), 'ctx|owner / owner / -', 'a user''s context: the user and the role');

-- 3-4: a service context
select pg_temp.act_as(:'tenant_a');
insert into app.projects (name) values ('ctx service');
reset role;
select is(pg_temp.last_actor(), pg_temp.context_actor(), 'a service context: the audit row names what the context functions say');
select is(pg_temp.last_actor(), '- / service / -', 'a service context: no user, role service');

-- 5-6: an API key's context
select pg_temp.act_as(:'tenant_a', 'ctx|owner');
select
    k.id as key_id,
    k.key as api_key
from tenancy.create_api_key('ctx key', 'admin') as k \gset
set local role tenancy_app;
\o /dev/null
select tenant_id from tenancy.authenticate_api_key(:'api_key');
\o
insert into app.projects (name) values ('ctx api key');
reset role;
select is(pg_temp.last_actor(), pg_temp.context_actor(), 'an API key''s context: the audit row names what the context functions say');
select is(pg_temp.last_actor(), '- / admin / ' || :'key_id', 'an API key''s context: no user, the key''s role and id');

-- 7-8: the value edited after the context was set: another user. The key (tenant and role)
-- still matches, the fingerprint does not: no user, as current_user_id() says.
select pg_temp.act_as(:'tenant_a', 'ctx|owner');
\o /dev/null
select set_config(
    'tenancy.context',
    replace(current_setting('tenancy.context'), 'ctx|owner', 'ctx|someone-else'),
    true
);
\o
insert into app.projects (name) values ('ctx edited user');
reset role;
select is(pg_temp.last_actor(), pg_temp.context_actor(), 'an edited user: the audit row names what the context functions say');
select is(pg_temp.last_actor(), '- / owner / -', 'an edited user: no user is recorded');

-- 9-10: the value edited to another tenant: no context at all. Only a role exempt from row level
-- security (the superuser here) can still write; nothing of the edited value is recorded.
select pg_temp.act_as(:'tenant_a', 'ctx|owner');
reset role;
\o /dev/null
select set_config(
    'tenancy.context',
    replace(current_setting('tenancy.context'), :'tenant_a', :'tenant_b'),
    true
);
\o
insert into app.projects (tenant_id, name) values (:'tenant_b', 'ctx edited tenant');
select is(pg_temp.last_actor(), pg_temp.context_actor(), 'an edited tenant: the audit row names what the context functions say');
select is(pg_temp.last_actor(), '- / - / -', 'an edited tenant: no actor is recorded');

-- 11-12: no context
select tenancy.clear_context();
insert into app.projects (tenant_id, name) values (:'tenant_b', 'ctx none');
select is(pg_temp.last_actor(), pg_temp.context_actor(), 'no context: the audit row names what the context functions say');
select is(
    (
        select a.tenant_id from tenancy.audit_logs as a
        order by a.id desc limit 1
    ), :'tenant_b'::uuid,
    'no context: the tenant is the row''s'
);

select * from finish();
rollback;
