-- One definition each: member roles (tenancy.member_role), the context value's layout
-- (tenancy.context_value), tenant slug and name rules (domains), and what reads or writes them.
-- Runs as the superuser for the catalog checks, and as the real roles for the context.

begin;
select plan(33);

select
    gen_random_uuid() as owner_a,
    gen_random_uuid() as member_a,
    gen_random_uuid() as some_tenant,
    'auth0|' || gen_random_uuid() as some_user,
    'acct|' || (random() * 1e6)::int as some_key
\gset

\ir setup/helpers.psql

-- The hint of the error a statement raises.
create function pg_temp.hint_of(p_sql text)
returns text
language plpgsql
as $$
declare
    v_hint text;
begin
    execute p_sql;
    return null;
exception when others then
    get stacked diagnostics v_hint = pg_exception_hint;
    return v_hint;
end
$$;

-- Member roles ---------------------------------------------------------------------------------

select is(
    enum_range(null::tenancy.member_role)::text[],
    array['owner', 'admin', 'member', 'viewer'],
    'tenancy.member_role lists the roles from most to least privileged'
);
select col_type_is(
    'tenancy', 'memberships', 'role', 'tenancy.member_role', 'memberships.role is tenancy.member_role'
);

-- Keys of one tenant differ only in the role code: key(owner) # key(role) = 1 # code(role).
select results_eq(
    format(
        $$select r.label, int8xor(
            int8xor(tenancy.context_key_of(%L, 'owner'), tenancy.context_key_of(%L, r.label)), 1
        )::integer
        from unnest(enum_range(null::tenancy.member_role)::text []) with ordinality as r (label, code)
        order by r.code$$,
        :'some_tenant', :'some_tenant'
    ),
    $$values ('owner'::text, 1), ('admin', 2), ('member', 3), ('viewer', 4)$$,
    'each role''s key code is its position in tenancy.member_role (owner 1 ... viewer 4)'
);
select is(
    int8xor(
        int8xor(
            tenancy.context_key_of(:'some_tenant', 'owner'),
            tenancy.context_key_of(:'some_tenant', 'service')
        ),
        1
    )::integer,
    5,
    'a service context''s code follows the member roles (5)'
);
select is(tenancy.context_key_of(:'some_tenant', 'superuser'), null, 'an unknown role has no key');
select is(tenancy.context_key_of(:'some_tenant', 'Owner'), null, 'roles are case-sensitive');
select unalike(
    pg_temp.plan_of(format('select tenancy.context_key_of(%L, %L)', :'some_tenant', 'owner'), ', verbose'),
    '%context_key_of%',
    'context_key_of is inlined'
);

-- No function but context_key_of (whose body is written from the type) spells the roles.
select is(
    (
        select array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text)
        from pg_proc as p
        where
            p.pronamespace = 'tenancy'::regnamespace
            and p.prosrc like '%''viewer''%'
            and p.proname <> 'context_key_of'
    ),
    null,
    'no other tenancy function spells the member roles'
);

-- Every label is accepted; anything else is 22023 naming it, with the roles in the hint.
select
    lives_ok(
        format('select tenancy.validate_member_role(%L)', r.label),
        format('validate_member_role accepts %s', r.label)
    )
from unnest(enum_range(null::tenancy.member_role)::text[]) with ordinality as r (label, code)
order by r.code;
select throws_ok(
    $$select tenancy.validate_member_role('boss')$$,
    '22023',
    'invalid member role ''boss''',
    'an unknown role is 22023 naming it'
);
select throws_ok(
    'select tenancy.validate_member_role(null)',
    '22023',
    'invalid member role NULL',
    'a NULL role is 22023'
);
select is(
    pg_temp.hint_of($$select tenancy.validate_member_role('service')$$),
    'Roles are owner, admin, member and viewer.',
    'the hint lists the roles of tenancy.member_role (service is not one)'
);

-- The context value's layout --------------------------------------------------------------------

select results_eq(
    format(
        $$select tenancy.context_value_part(v, 'tenant'), tenancy.context_value_part(v, 'role'),
            tenancy.context_value_part(v, 'key'), tenancy.context_value_part(v, 'user')
        from (select tenancy.context_value(%L, 'member', %L, %L) as v) as c$$,
        :'some_tenant', :'some_key', :'some_user'
    ),
    format(
        $$values (%L::text, 'member'::text, %L::text, %L::text)$$, :'some_tenant', :'some_key', :'some_user'
    ),
    'context_value_part reads back what context_value wrote (key and user holding ''|'')'
);
select results_eq(
    format(
        $$select tenancy.context_value_part(v, 'key'), tenancy.context_value_part(v, 'user')
        from (select tenancy.context_value(%L, 'member', null, %L) as v) as c$$,
        :'some_tenant', :'some_user'
    ),
    format($$values (''::text, %L::text)$$, :'some_user'),
    'a tenant without a key has an empty key, and the user reads back whole'
);
select is(
    tenancy.context_value_part(tenancy.context_value(:'some_tenant', 'owner', '12|3', '4|5'), 'user'),
    '4|5',
    'the key is read by its length, whatever it holds'
);
select is(
    tenancy.context_value_part(tenancy.context_value(:'some_tenant', 'service', null, null), 'user'),
    '',
    'a service context has an empty user'
);
select is(
    tenancy.context_value_part(tenancy.context_value(:'some_tenant', 'service', null, null), 'role'),
    'service',
    'a service context''s role is service'
);
select is(tenancy.context_value_part('', 'tenant'), null, 'an ended context (empty) has no tenant');
select is(tenancy.context_value_part(null, 'tenant'), null, 'no context (NULL) has no tenant');
select is(
    tenancy.context_value_part(
        replace(tenancy.context_value(:'some_tenant', 'owner', null, :'some_user'), 'v3|', 'v2|'), 'tenant'
    ),
    null,
    'a value of another layout has no tenant'
);

-- The policies' hot path (context_tenant_id, which reads the value itself) reads what
-- context_value writes, for every role, with and without a user: each context is set by
-- establish_context (called here by the superuser) and read back by the current_* functions.
create function pg_temp.read_back(p_tenant_id uuid, p_user_id text, p_key text)
returns table (
    role text, tenant_ok boolean, role_read text, key_read text, user_read text, value_ok boolean
)
language plpgsql
as $$
begin
    for role in
        select r.label from unnest(enum_range(null::tenancy.member_role)::text[]) as r (label)
        union all select 'service'
    loop
        perform tenancy.establish_context(
            p_tenant_id, case when role = 'service' then null else p_user_id end, role, p_key
        );
        tenant_ok := tenancy.context_tenant_id(array[role]) = p_tenant_id;
        role_read := tenancy.current_member_role();
        key_read := tenancy.context_tenant_key(array[role]);
        user_read := tenancy.current_user_id();
        value_ok := current_setting('tenancy.context') = tenancy.context_value(
            p_tenant_id, role, p_key, case when role = 'service' then null else p_user_id end
        );
        return next;
    end loop;
    perform tenancy.clear_context();
end
$$;
select results_eq(
    format('select * from pg_temp.read_back(%L, %L, %L)', :'some_tenant', :'some_user', :'some_key'),
    format(
        $$values ('owner'::text, true, 'owner'::text, %2$L::text, %1$L::text, true),
        ('admin', true, 'admin', %2$L, %1$L, true), ('member', true, 'member', %2$L, %1$L, true),
        ('viewer', true, 'viewer', %2$L, %1$L, true), ('service', true, 'service', %2$L, null, true)$$,
        :'some_user', :'some_key'
    ),
    'context_tenant_id, current_member_role, context_tenant_key and current_user_id read what '
    || 'context_value writes'
);

-- The value a real context carries is the one context_value writes, and reads back as the
-- context's tenant, role and user.
set local role tenancy_admin;
select tenancy.create_tenant('one-source', 'One Source', :'owner_a') as tenant_a \gset
set local role tenancy_service;
select tenant_id as ignored from tenancy.set_context(:'tenant_a') \gset
select tenancy.add_member(:'member_a', 'member') \gset
select tenant_id as ignored from tenancy.set_context(:'tenant_a', :'member_a') \gset
reset role;
select is(
    current_setting('tenancy.context'),
    tenancy.context_value(:'tenant_a', 'member', null, :'member_a'),
    'set_context writes the value context_value builds'
);
set local role tenancy_service;
select results_eq(
    'select tenancy.current_tenant_id(), tenancy.current_member_role(), tenancy.current_user_id()',
    format($$values (%L::uuid, 'member'::text, %L::text)$$, :'tenant_a', :'member_a'),
    'the current_* functions read tenant, role and user from it'
);
select tenancy.clear_context() \gset
reset role;

-- Tenant slugs and names -------------------------------------------------------------------------

select col_type_is(
    'tenancy', 'memberships', 'user_id', 'tenancy.user_id', 'memberships.user_id is tenancy.user_id'
);
select col_type_is('tenancy', 'tenants', 'slug', 'tenancy.tenant_slug', 'tenants.slug is tenancy.tenant_slug');
select col_type_is('tenancy', 'tenants', 'name', 'tenancy.tenant_name', 'tenants.name is tenancy.tenant_name');
select is(
    (
        select array_agg(c.conname order by c.conname)
        from pg_constraint as c
        where c.conrelid = 'tenancy.tenants'::regclass and c.contype = 'c'
    ),
    array['tenants_fence_check', 'tenants_status_check']::name[],
    'tenancy.tenants has no check constraint of its own on slug or name'
);
select throws_ok(
    $$select 'Acme'::tenancy.tenant_slug$$, '23514', null, 'the slug domain refuses upper case'
);
select throws_ok(
    $$select '   '::tenancy.tenant_name$$, '23514', null, 'the name domain refuses a blank name'
);
select is(
    (
        select array_agg(p.oid::regprocedure::text)
        from pg_proc as p
        where p.pronamespace = 'tenancy'::regnamespace and p.prosrc like '%{1,61}%'
    ),
    null,
    'no tenancy function spells the slug rule'
);

select * from finish();
rollback;
