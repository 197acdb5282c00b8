-- tenancy_test.tenant_table_isolation: pgTAP assertions on what each role sees and writes in a tenant table.

-- Fixtures (undone with the caller's transaction): tenants A and B created by tenancy_admin, a user
-- of tenant A for every member role, p_fixtures run in a service context of A and of B (rows of
-- parent tables, say), and for a writable table one sample row in each tenant, so "sees no row of
-- another tenant" has a row to miss. Then: without a context tenancy_app sees nothing and cannot
-- write; as every member role of A, the context holds, other tenants' rows stay hidden (non-readers
-- see no row at all), writers insert a row of A (tenancy_test.inserts_row) but not one of B, and
-- non-writers insert nothing (42501); a service context of A likewise; tenancy_app cannot truncate.
-- Assertions: 6 + 1 per descendant + per role (3, or 4 for a writer) + 2 (3 if writable).
create or replace function tenancy_test.tenant_table_isolation(
    p_table regclass,
    p_roles text[],
    p_read text[],
    p_write text[],
    p_descendants regclass[] default '{}',
    p_sample jsonb default '{}',
    p_fixtures text[] default '{}'
)
returns setof text
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
    v_quoted text := tenancy_test.quoted_name(p_table);
    v_writes boolean := cardinality(coalesce(p_write, '{}')) > 0;
    v_no_write_code text;
    -- User ids as identity providers write them ('|' included).
    v_owner_a text := 'auth0|' || gen_random_uuid();
    v_tenant_a uuid;
    v_tenant_b uuid;
    v_tenant uuid;
    v_users jsonb := '{}'::jsonb;
    v_role text;
    v_who text;
    v_fixture text;
    v_count bigint;
    v_relation regclass;
    v_error text;
begin
    v_no_write_code := case when v_writes then 'TN001' else '42501' end;

    -- Fixtures.
    set local role tenancy_admin;
    v_tenant_a := tenancy.create_tenant(
        'isolation-a-' || left(md5(random()::text), 12), 'Isolation test tenant A', v_owner_a
    );
    v_tenant_b := tenancy.create_tenant(
        'isolation-b-' || left(md5(random()::text), 12), 'Isolation test tenant B', 'auth0|' || gen_random_uuid()
    );
    v_users := jsonb_build_object('owner', v_owner_a);
    set local role tenancy_service;
    perform tenancy.set_context(v_tenant_a);
    foreach v_role in array p_roles loop
        if v_role <> 'owner' then
            v_users := v_users || jsonb_build_object(v_role, 'auth0|' || gen_random_uuid());
            perform tenancy.add_member(v_users ->> v_role, v_role);
        end if;
    end loop;
    foreach v_tenant in array array[v_tenant_a, v_tenant_b] loop
        perform tenancy.set_context(v_tenant);
        foreach v_fixture in array coalesce(p_fixtures, '{}') loop
            execute v_fixture;
        end loop;
        if v_writes then
            begin
                execute tenancy_test.insert_statement(p_table, p_sample);
            exception when others then
                -- Same SQLSTATE, with what to change.
                get stacked diagnostics v_error = returned_sqlstate;
                raise exception using
                    errcode = v_error,
                    message = format(
                        'the sample row of %s cannot be stored in a service context: %s',
                        v_quoted, sqlerrm
                    ),
                    hint = case
                        when v_error = '42501' then
                            'every generated policy admits a service context: check the table''s '
                            'policies and tenancy_app''s privileges (pgtenancy generate, then apply)'
                        else
                            'give the table a valid sample row (sample = { column = "SQL '
                            'expression" }) and the parent rows it needs (fixtures = ["SQL '
                            'statement"]) in the spec'
                    end;
            end;
        end if;
    end loop;

    -- Without a tenant context.
    set local role tenancy_app;
    perform tenancy.clear_context();
    execute format('select count(*) from %s', p_table) into v_count;
    return next is(
        v_count, 0::bigint,
        format('without a tenant context tenancy_app sees no row of %s', v_quoted)
    );
    foreach v_relation in array coalesce(p_descendants, '{}') loop
        execute format('select count(*) from %s', v_relation) into v_count;
        return next is(
            v_count, 0::bigint,
            format(
                'without a tenant context tenancy_app sees no row of %s queried directly',
                tenancy_test.quoted_name(v_relation)
            )
        );
    end loop;
    return next is(
        tenancy.current_tenant_id(), null::uuid,
        'without a tenant context tenancy.current_tenant_id() is NULL'
    );
    return next throws_ok(
        format('insert into %s default values', p_table), v_no_write_code::char(5), null::text,
        format('without a tenant context tenancy_app cannot insert into %s', v_quoted)
    );
    return next throws_ok(
        format('update %s set "tenant_id" = "tenant_id"', p_table), v_no_write_code::char(5),
        null::text, format('without a tenant context tenancy_app cannot update %s', v_quoted)
    );
    return next throws_ok(
        format('delete from %s', p_table), v_no_write_code::char(5), null::text,
        format('without a tenant context tenancy_app cannot delete from %s', v_quoted)
    );

    -- As each member role of tenant A.
    foreach v_role in array p_roles loop
        v_who := format(
            'a%s %s of tenant A', case when left(v_role, 1) in ('a', 'e', 'i', 'o', 'u') then 'n' else '' end,
            v_role
        );
        set local role tenancy_service;
        perform tenancy.set_context(v_tenant_a, v_users ->> v_role);
        set local role tenancy_app;
        return next is(
            array[tenancy.current_tenant_id()::text, tenancy.current_member_role()],
            array[v_tenant_a::text, v_role],
            format('the context of %s holds after SET ROLE tenancy_app', v_who)
        );
        if v_role = any(p_read) then
            execute format('select count(*) from %s as t where t.tenant_id <> $1', p_table)
            into v_count using v_tenant_a;
            return next is(
                v_count, 0::bigint,
                format('%s sees no row of another tenant in %s', v_who, v_quoted)
            );
        else
            execute format('select count(*) from %s', p_table) into v_count;
            return next is(v_count, 0::bigint, format('%s sees no row of %s', v_who, v_quoted));
        end if;
        if v_role = any(p_write) then
            return next throws_ok(
                tenancy_test.insert_statement(p_table, p_sample, v_tenant_b), '42501'::char(5),
                null::text,
                format('%s cannot insert a row of tenant B into %s', v_who, v_quoted)
            );
            return next tenancy_test.inserts_row(
                p_table, p_sample, v_tenant_a,
                format('%s inserts a row of tenant A into %s and sees it', v_who, v_quoted)
            );
        else
            return next throws_ok(
                tenancy_test.insert_statement(p_table, p_sample, v_tenant_a), '42501'::char(5),
                null::text, format('%s cannot insert into %s', v_who, v_quoted)
            );
        end if;
    end loop;

    -- As tenancy_service in a service context of tenant A (admitted by every policy of the tenant).
    set local role tenancy_service;
    perform tenancy.set_context(v_tenant_a);
    execute format('select count(*) from %s as t where t.tenant_id <> $1', p_table)
    into v_count using v_tenant_a;
    return next is(
        v_count, 0::bigint,
        format('a service context of tenant A sees no row of another tenant in %s', v_quoted)
    );
    return next throws_ok(
        tenancy_test.insert_statement(p_table, p_sample, v_tenant_b), '42501'::char(5), null::text,
        format('a service context of tenant A cannot insert a row of tenant B into %s', v_quoted)
    );
    if v_writes then
        return next tenancy_test.inserts_row(
            p_table, p_sample, v_tenant_a,
            format('a service context of tenant A inserts a row of tenant A into %s and sees it', v_quoted)
        );
    end if;

    -- TRUNCATE ignores row level security, so tenancy_app must not hold it.
    set local role tenancy_app;
    return next throws_ok(
        format('truncate %s', p_table), '42501'::char(5), null::text,
        format('tenancy_app cannot truncate %s', v_quoted)
    );
    reset role;
end
$$;

comment on function tenancy_test.tenant_table_isolation(regclass, text[], text[], text[], regclass[], jsonb, text[]) is
'pgTAP: what tenancy_app and tenancy_service see and write in a tenant table without a context, '
'as every member role of a tenant and in a service context, on fixture tenants it creates. '
'6 + 1 per descendant + 3 per role (4 per writer) + 2 (3 if writable) assertions.';
