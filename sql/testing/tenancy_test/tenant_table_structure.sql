-- tenancy_test.tenant_table_structure: pgTAP assertions on a tenant table's catalog entries.

-- Row level security enabled and forced; exactly the given policies, each for its command and
-- grantee; tenancy_app's exact privileges (no TRUNCATE, REFERENCES or TRIGGER) and USAGE on the
-- serial sequences for writable tables only; the tenant column's default (the current tenant's id,
-- or its key as the column's type holds it); the three guard triggers; and
-- for every partition or inheritance child, forced row level security with the same policies.
-- p_policies is a two-dimensional array of {name, command, grantee} rows.
-- Assertions: 8 + 2 per policy + 1 per sequence + 2 per descendant.
create or replace function tenancy_test.tenant_table_structure(
    p_table regclass,
    p_write text[],
    p_policies text[],
    p_sequences regclass[] default '{}',
    p_descendants regclass[] default '{}',
    p_tenant_column name default 'tenant_id'
)
returns setof text
language plpgsql
volatile
set search_path = pg_catalog, public, pg_temp
as $$
declare
    v_schema name;
    v_name name;
    v_quoted text := tenancy_test.quoted_name(p_table);
    v_policy_names name[] := '{}'::name[];
    v_privileges name[] := array['SELECT']::name[];
    v_writes boolean := cardinality(coalesce(p_write, '{}')) > 0;
    v_policy text;
    v_command text;
    v_grantee text;
    v_relation regclass;
    v_quoted_relation text;
    v_relation_schema name;
    v_relation_name name;
    v_default text := case tenancy_test.tenant_column_type(p_table, p_tenant_column)
        when 'bigint' then 'tenancy.tenant_key_int8(tenancy.current_tenant_key())'
        when 'integer' then 'tenancy.tenant_key_int4(tenancy.current_tenant_key())'
        when 'text' then 'tenancy.current_tenant_key()'
        else 'tenancy.current_tenant_id()'
    end;
begin
    select n.nspname, c.relname into v_schema, v_name
    from pg_catalog.pg_class as c
    inner join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
    where c.oid = p_table;
    for v_index in 1 .. coalesce(array_length(p_policies, 1), 0) loop
        v_policy_names := v_policy_names || p_policies[v_index][1]::name;
    end loop;
    if v_writes then
        v_privileges := v_privileges || array['INSERT', 'UPDATE', 'DELETE']::name[];
    end if;

    return next tenancy_test.row_security_enabled(
        p_table, format('row level security is enabled on %s', v_quoted)
    );
    return next tenancy_test.row_security_forced(
        p_table, format('row level security is forced on %s, for its owner too', v_quoted)
    );

    return next policies_are(
        v_schema, v_name, v_policy_names, format('%s has exactly the generated policies', v_quoted)
    );
    for v_index in 1 .. coalesce(array_length(p_policies, 1), 0) loop
        v_policy := p_policies[v_index][1];
        v_command := p_policies[v_index][2];
        v_grantee := p_policies[v_index][3];
        return next policy_cmd_is(
            v_schema, v_name, v_policy::name, v_command,
            format('policy %I on %s is for %s', v_policy, v_quoted, upper(v_command))
        );
        return next tenancy_test.policy_applies_to(
            p_table, v_policy::name, array[v_grantee]::name[],
            format(
                'policy %I on %s applies to %s',
                v_policy, v_quoted, case when v_grantee = 'public' then 'PUBLIC' else v_grantee end
            )
        );
    end loop;

    return next table_privs_are(
        v_schema, v_name, 'tenancy_app'::name, v_privileges,
        format(
            'tenancy_app may only %s on %s', lower(array_to_string(v_privileges, ', ')), v_quoted
        )
    );
    foreach v_relation in array coalesce(p_sequences, '{}') loop
        select n.nspname, c.relname into v_relation_schema, v_relation_name
        from pg_catalog.pg_class as c
        inner join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
        where c.oid = v_relation;
        return next sequence_privs_are(
            v_relation_schema, v_relation_name, 'tenancy_app'::name,
            case when v_writes then array['USAGE']::name[] else '{}'::name[] end,
            format(
                'tenancy_app %s the serial sequence %s',
                case when v_writes then 'may use' else 'may not use' end,
                tenancy_test.quoted_name(v_relation)
            )
        );
    end loop;

    return next col_default_is(
        v_schema, v_name, p_tenant_column, v_default,
        format('%s of %s defaults to %s', p_tenant_column, v_quoted, v_default)
    );
    return next trigger_is(
        v_schema, v_name, 'tenancy_require_context'::name, 'tenancy'::name,
        'tg_require_context'::name,
        format('trigger tenancy_require_context on %s calls tenancy.tg_require_context()', v_quoted)
    );
    return next trigger_is(
        v_schema, v_name, 'tenancy_tenant_id_immutable'::name, 'tenancy'::name,
        'tg_tenant_id_immutable'::name,
        format(
            'trigger tenancy_tenant_id_immutable on %s calls tenancy.tg_tenant_id_immutable()',
            v_quoted
        )
    );
    return next trigger_is(
        v_schema, v_name, 'tenancy_tenant_id_immutable_after'::name, 'tenancy'::name,
        'tg_tenant_id_immutable'::name,
        format(
            'trigger tenancy_tenant_id_immutable_after on %s calls tenancy.tg_tenant_id_immutable()',
            v_quoted
        )
    );

    foreach v_relation in array coalesce(p_descendants, '{}') loop
        v_quoted_relation := tenancy_test.quoted_name(v_relation);
        select n.nspname, c.relname into v_relation_schema, v_relation_name
        from pg_catalog.pg_class as c
        inner join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
        where c.oid = v_relation;
        return next tenancy_test.row_security_forced(
            v_relation, format('row level security is enabled and forced on %s', v_quoted_relation)
        );
        return next policies_are(
            v_relation_schema, v_relation_name, v_policy_names,
            format('%s has exactly the generated policies', v_quoted_relation)
        );
    end loop;
end
$$;

comment on function tenancy_test.tenant_table_structure(regclass, text[], text[], regclass[], regclass[], name) is
'pgTAP: the catalog entries of a generated tenant table (row level security, policies, '
'privileges, default, triggers, sequences, descendants). 8 + 2 per policy + 1 per sequence + 2 '
'per descendant assertions; p_policies rows are {name, command, grantee}.';
