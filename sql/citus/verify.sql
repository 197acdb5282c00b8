-- pgtenancy on Citus: verify tenant isolation after sql/citus/distribute.sql (run as a superuser on the coordinator).
--
--     psql -v ON_ERROR_STOP=1 -d DATABASE -f sql/citus/verify.sql
--
-- In one transaction, rolled back at the end (nothing stays): two tenants, A and B, and rows of
-- both in every tenant table (through pgtenancy's own functions in a service context of each
-- tenant, then, for a table still without a row of a tenant, a row built from the table's
-- columns as the superuser); then, as the application, the cross-tenant attacks of the generated
-- isolation tests on every tenant table: no row without a context; a context of A sees its own
-- rows and none of B's; it cannot insert a row of B, nor update or delete B's rows; a hand-written
-- context naming B, a forged signature and a correctly signed but expired one see nothing. Then
-- that the application cannot read the key nor sign a context, and, on Citus, that the tables are
-- distributed as planned and the application roles forward SET LOCAL.
-- One line per check ("ok N - ...", "not ok N - ...", "skip N - ..."), then a summary; a failed
-- check makes the script fail (exit 3 with ON_ERROR_STOP).
-- The roles the checks act as (psql variables; their defaults are pgtenancy's group roles). On
-- Citus the shard queries run on the workers as the current role, so give roles that can log in
-- there: -v app_role=... -v service_role=... -v admin_role=... (members of tenancy_app,
-- tenancy_service and tenancy_admin).
-- It runs on plain PostgreSQL too, with the Citus flavour's policies applied
-- (tests/py/test_citus_flavour.py): the Citus checks are then skipped.
\set ON_ERROR_STOP on
\set VERBOSITY terse
\if :{?app_role}
\else
\set app_role tenancy_app
\endif
\if :{?service_role}
\else
\set service_role tenancy_service
\endif
\if :{?admin_role}
\else
\set admin_role tenancy_admin
\endif
set client_min_messages = notice;

begin;
-- The application roles have it at login (distribute.sql); SET ROLE does not read role settings.
set local citus.propagate_set_commands = 'local'; -- noqa: PRS
select
    set_config('pgtenancy_verify.app_role', :'app_role', true) as app_role,
    set_config('pgtenancy_verify.service_role', :'service_role', true) as service_role,
    set_config('pgtenancy_verify.admin_role', :'admin_role', true) as admin_role
\gset

do $verify$
declare
    v_app text := current_setting('pgtenancy_verify.app_role');
    v_service text := current_setting('pgtenancy_verify.service_role');
    v_admin text := current_setting('pgtenancy_verify.admin_role');
    v_citus boolean := exists (select from pg_extension where extname = 'citus');
    v_key_a text := (1100000000 + floor(random() * 400000000))::bigint::text;
    v_key_b text := (1600000000 + floor(random() * 400000000))::bigint::text;
    v_a uuid;
    v_b uuid;
    v_tenant uuid;
    v_n integer := 0;
    v_ok integer := 0;
    v_failed integer := 0;
    v_skipped integer := 0;
    v_table record;
    v_col record;
    v_fk record;
    v_fixture text;
    v_cols text[];
    v_vals text[];
    v_value text;
    v_count bigint;
    v_count_a bigint;
    v_state text;
    v_detail text;
    v_secret bytea;
    v_context text;
    v_head text;
    v_problem text;
    v_statement text;
    v_insert_b text;
    v_rows jsonb := '{}';
    v_fixtures constant text[] := array[
        $f$select tenancy.set_branding('{"display_name": "Verify tenant"}')$f$,
        $f$select tenancy.create_api_key('verify key', 'member')$f$,
        $f$select tenancy.invite('verify@example.com', 'member')$f$,
        $f$select tenancy.add_member('verify-viewer', 'viewer')$f$,
        $f$select tenancy.create_meter('verify_calls')$f$,
        $f$select tenancy.create_meter('verify_seats', p_aggregation => 'unique_count', p_property => 'user')$f$,
        $f$select tenancy.create_customer('verify-customer')$f$,
        $f$select tenancy.create_tier('verify tier', 10, '{"verify_calls": 1}', '{verify_feature}')$f$,
        $f$select tenancy.subscribe('verify-customer', 'verify tier')$f$,
        $f$select tenancy.track_usage('verify_calls', 'verify-customer', p_idempotency_key => 'verify-key')$f$,
        $f$select tenancy.track_usage('verify_calls', 'verify-customer')$f$,
        $f$select tenancy.track_usage('verify_seats', 'verify-customer', p_properties => '{"user": "u1"}')$f$,
        $f$select tenancy.reserve_usage('verify-customer', 'verify_calls', 1)$f$,
        $f$select tenancy.configure_webhook('verify hook', 'https://hooks.example.com/in')$f$,
        $f$select tenancy.track_event('verify_event', 'verify-user')$f$,
        $f$select tenancy.log_connector_event('verify', 'called', '{}')$f$,
        $f$select tenancy.erase_subject('verify-subject', 'verify erasure')$f$,
        $f$select tenancy.open_subject_request('access', 'verify-subject')$f$
    ];
begin
    -- The signed context form must be on: without it the Citus flavour's policies show nothing.
    v_n := v_n + 1;
    if exists (select from tenancy.context_mac_keys) then
        v_ok := v_ok + 1;
        raise notice 'ok % - the signed context form is on (tenancy.context_mac_keys has its key)', v_n;
    else
        v_failed := v_failed + 1;
        raise notice 'not ok % - the signed context form is off: run select tenancy.configure_context_mac(true)', v_n;
        raise exception 'verify: the signed context form is off; nothing else can be checked';
    end if;
    select k.secret into v_secret from tenancy.context_mac_keys as k;

    -- Two tenants; rows through pgtenancy's functions, in a service context of each.
    execute format('set local role %I', v_admin);
    v_a := tenancy.create_tenant(
        p_slug => 'verify-a-' || left(md5(random()::text), 10), p_name => 'Verify tenant A',
        p_owner_user_id => 'verify-owner-a', p_key => v_key_a
    );
    v_b := tenancy.create_tenant(
        p_slug => 'verify-b-' || left(md5(random()::text), 10), p_name => 'Verify tenant B',
        p_owner_user_id => 'verify-owner-b', p_key => v_key_b
    );
    foreach v_fixture in array array[
        $f$select tenancy.set_feature_default('verify_feature', 'false')$f$,
        format($f$select tenancy.set_feature_flag(%L, 'verify_feature', 'true')$f$, v_a),
        format($f$select tenancy.set_feature_flag(%L, 'verify_feature', 'true')$f$, v_b)
    ] loop
        begin
            execute v_fixture;
        exception when others then
            raise notice 'verify: %: % (%)', v_fixture, sqlerrm, sqlstate;
        end;
    end loop;
    set local role none;
    foreach v_tenant in array array[v_a, v_b] loop
        foreach v_fixture in array v_fixtures || format(
            $f$select tenancy.add_custom_domain('verify-%s.example.com')$f$, left(md5(random()::text), 12)
        ) loop
            begin
                execute format('set local role %I', v_service);
                perform tenancy.set_context(v_tenant);
                execute v_fixture;
                set local role none;
            exception when others then
                set local role none;
                raise notice 'verify: % in tenant %: % (%)', v_fixture, v_tenant, sqlerrm, sqlstate;
            end;
        end loop;
    end loop;
    set local role none;

    -- Then a row built from the columns for every tenant table still without one (parents first),
    -- as the superuser (no policy applies to it).
    for v_table in
        select o.relid::regclass as rel, o.table_name, o.tenant_column, o.value_kind, o.level
        from tenancy.offboarding_tables() as o
        order by o.level desc, o.table_name
    loop
        foreach v_tenant in array array[v_a, v_b] loop
            v_value := case when v_table.value_kind = 'id' then v_tenant::text
                when v_tenant = v_a then v_key_a else v_key_b end;
            execute format('select count(*) from %s where %I::text = $1', v_table.rel, v_table.tenant_column)
            into v_count using v_value;
            if v_count > 0 then
                continue;
            end if;
            v_cols := array[quote_ident(v_table.tenant_column)];
            v_vals := array[format('%L', v_value)];
            v_problem := null;
            -- Foreign keys to other tables: the referenced columns of one row of the same tenant
            -- (tenancy.tenants: the tenant itself).
            for v_fk in
                select k.confrelid::regclass as parent, k.conkey, k.confkey,
                    (select tt.tenant_column from tenancy.lint_tenant_tables as tt where tt.relid = k.confrelid) as parent_tenant_column
                from pg_constraint as k
                where k.conrelid = v_table.rel and k.contype = 'f' and k.confrelid <> k.conrelid
            loop
                declare
                    v_select text;
                    v_row text[];
                begin
                    v_select := format(
                        'select array[%s] from %s as p%s limit 1',
                        (select string_agg(format('p.%I::text', a.attname), ', ' order by u.ord)
                         from unnest(v_fk.confkey) with ordinality as u (attnum, ord)
                         join pg_attribute as a on a.attrelid = v_fk.parent and a.attnum = u.attnum),
                        v_fk.parent,
                        case
                            when v_fk.parent = 'tenancy.tenants'::regclass then format(' where p.id = %L', v_tenant)
                            when v_fk.parent_tenant_column is not null
                                then format(' where p.%I::text = %L', v_fk.parent_tenant_column, v_value)
                            else ''
                        end
                    );
                    execute v_select into v_row;
                    if v_row is null then
                        v_problem := format('no row of %s to refer to', v_fk.parent);
                    else
                        for i in 1 .. array_length(v_fk.conkey, 1) loop
                            select quote_ident(a.attname) into v_detail
                            from pg_attribute as a where a.attrelid = v_table.rel and a.attnum = v_fk.conkey[i];
                            if not v_detail = any(v_cols) then
                                v_cols := v_cols || v_detail;
                                v_vals := v_vals || format('%L', v_row[i]);
                            end if;
                        end loop;
                    end if;
                end;
            end loop;
            -- Every other column that needs a value: one of its type.
            for v_col in
                select a.attname, format_type(a.atttypid, a.atttypmod) as type_name,
                    coalesce(nullif(t.typbasetype, 0), a.atttypid) as base, bt.typtype as base_kind,
                    bt.typcategory as category
                from pg_attribute as a
                join pg_type as t on t.oid = a.atttypid
                join pg_type as bt on bt.oid = coalesce(nullif(t.typbasetype, 0), a.atttypid)
                where a.attrelid = v_table.rel and a.attnum > 0 and not a.attisdropped
                    and a.attnotnull and not a.atthasdef and a.attidentity = '' and a.attgenerated = ''
                order by a.attnum
            loop
                if quote_ident(v_col.attname) = any(v_cols) then
                    continue;
                end if;
                v_cols := v_cols || quote_ident(v_col.attname);
                v_vals := v_vals || ((case
                    when v_col.base_kind = 'e' then format('%L', (
                        select e.enumlabel from pg_enum as e where e.enumtypid = v_col.base order by e.enumsortorder limit 1))
                    when v_col.base = 'uuid'::regtype then quote_literal(gen_random_uuid()::text)
                    when v_col.category = 'S' then quote_literal('verify-' || left(md5(random()::text), 8))
                    when v_col.category = 'N' then (1 + floor(random() * 1000000))::bigint::text
                    when v_col.category = 'B' then 'false'
                    when v_col.base in ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) then quote_literal(now()::text)
                    when v_col.base in ('jsonb'::regtype, 'json'::regtype) then quote_literal('{}')
                    when v_col.category = 'A' then quote_literal('{}')
                    when v_col.base = 'bytea'::regtype then quote_literal('\x00')
                    when v_col.base = 'inet'::regtype then quote_literal('127.0.0.1')
                    when v_col.base = 'interval'::regtype then quote_literal('1 day')
                    else 'null'
                end) || '::' || v_col.type_name);
            end loop;
            if v_problem is null then
                begin
                    execute format(
                        'insert into %s (%s) values (%s)', v_table.rel,
                        array_to_string(v_cols, ', '), array_to_string(v_vals, ', ')
                    );
                exception when others then
                    v_problem := format('a row built from its columns was refused: %s (%s)', sqlerrm, sqlstate);
                end;
            end if;
            if v_problem is not null then
                v_rows := v_rows || jsonb_build_object(v_table.table_name, v_problem);
            end if;
        end loop;
    end loop;

    -- The attacks, table by table.
    for v_table in
        select o.relid::regclass as rel, o.table_name, o.tenant_column, o.value_kind
        from tenancy.offboarding_tables() as o
        order by o.table_name
    loop
        v_value := case when v_table.value_kind = 'id' then v_a::text else v_key_a end;
        -- A row of each tenant, counted as the superuser.
        execute format('select count(*) filter (where %1$I::text = $1), count(*) filter (where %1$I::text = $2) from %2$s',
            v_table.tenant_column, v_table.rel)
        into v_count_a, v_count
        using v_value, case when v_table.value_kind = 'id' then v_b::text else v_key_b end;
        v_n := v_n + 1;
        if v_count_a > 0 and v_count > 0 then
            v_ok := v_ok + 1;
            raise notice 'ok % - %: tenants A and B each have rows (% and %)', v_n, v_table.table_name, v_count_a, v_count;
        else
            v_skipped := v_skipped + 1;
            raise notice 'skip % - %: no row of % to attack (%)', v_n, v_table.table_name,
                case when v_count_a = 0 then 'tenant A' else 'tenant B' end,
                coalesce(v_rows ->> v_table.table_name, 'give the tenants rows there and run again');
            continue;
        end if;
        -- Without a context: nothing.
        execute format('set local role %I', v_app);
        perform tenancy.clear_context();
        execute format('select count(*) from %s', v_table.rel) into v_count;
        set local role none;
        v_n := v_n + 1;
        if v_count = 0 then
            v_ok := v_ok + 1;
            raise notice 'ok % - %: without a tenant context the application sees no row', v_n, v_table.table_name;
        else
            v_failed := v_failed + 1;
            raise notice 'not ok % - %: without a tenant context the application sees % rows', v_n, v_table.table_name, v_count;
        end if;

        -- A service context of A: its own rows, none of B's.
        execute format('set local role %I', v_service);
        perform tenancy.set_context(v_a);
        execute format('set local role %I', v_app);
        execute format('select count(*) filter (where %1$I::text = $1), count(*) filter (where %1$I::text <> $1) from %2$s',
            v_table.tenant_column, v_table.rel)
        into v_count, v_detail using v_value;
        v_n := v_n + 1;
        if v_count = v_count_a and v_detail::bigint = 0 then
            v_ok := v_ok + 1;
            raise notice 'ok % - %: a context of tenant A sees its % rows and none of another tenant', v_n, v_table.table_name, v_count;
        else
            v_failed := v_failed + 1;
            raise notice 'not ok % - %: a context of tenant A sees % of its % rows and % of another tenant',
                v_n, v_table.table_name, v_count, v_count_a, v_detail;
        end if;

        -- It cannot write tenant B's rows.
        foreach v_statement in array array[
            format('update %s set %I = %I where %I::text = %L', v_table.rel, v_table.tenant_column,
                v_table.tenant_column, v_table.tenant_column,
                case when v_table.value_kind = 'id' then v_b::text else v_key_b end),
            format('delete from %s where %I::text = %L', v_table.rel, v_table.tenant_column,
                case when v_table.value_kind = 'id' then v_b::text else v_key_b end)
        ] loop
            v_n := v_n + 1;
            begin
                execute v_statement;
                get diagnostics v_count = row_count;
                v_state := case when v_count = 0 then 'no row' else v_count || ' rows' end;
            exception when others then
                v_state := sqlstate;
            end;
            if v_state in ('no row', '42501', 'TN001') then
                v_ok := v_ok + 1;
                raise notice 'ok % - %: a context of tenant A cannot % tenant B''s rows (%)', v_n, v_table.table_name,
                    split_part(v_statement, ' ', 1), v_state;
            else
                v_failed := v_failed + 1;
                raise notice 'not ok % - %: a context of tenant A could % tenant B''s rows (%)', v_n, v_table.table_name,
                    split_part(v_statement, ' ', 1), v_state;
            end if;
        end loop;
        v_n := v_n + 1;
        begin
            set local role none;
            -- The row to insert: a copy of one of B's rows, taken as the superuser.
            select string_agg(quote_ident(a.attname), ', ' order by a.attnum) into v_detail
            from pg_attribute as a
            where a.attrelid = v_table.rel and a.attnum > 0 and not a.attisdropped
                and a.attidentity = '' and a.attgenerated = '';
            execute format(
                'select format(%L, pg_catalog.to_jsonb(t.*)) from %s as t where t.%I::text = %L limit 1',
                format('insert into %s (%s) select %s from pg_catalog.jsonb_populate_record(null::%s, %%L::pg_catalog.jsonb)',
                    v_table.rel, v_detail, v_detail, v_table.rel),
                v_table.rel, v_table.tenant_column,
                case when v_table.value_kind = 'id' then v_b::text else v_key_b end
            ) into v_insert_b;
            execute format('set local role %I', v_app);
            execute v_insert_b;
            v_state := 'inserted';
        exception when others then
            v_state := sqlstate;
        end;
        -- 42501: the policy's WITH CHECK, or no INSERT privilege (checked before any unique key).
        if v_state = '42501' then
            v_ok := v_ok + 1;
            raise notice 'ok % - %: a context of tenant A cannot insert a row of tenant B (%)', v_n, v_table.table_name, v_state;
        else
            v_failed := v_failed + 1;
            raise notice 'not ok % - %: a context of tenant A inserting a row of tenant B got %', v_n, v_table.table_name, v_state;
        end if;

        -- Hand-written and forged contexts: a value naming B with A's signature, a forged
        -- signature, a correct signature that has expired.
        set local role none;
        v_context := current_setting('tenancy.context');
        v_head := 'm1|' || (floor(extract(epoch from now())) - 5)::bigint || '|' || md5('verify') || '|';
        foreach v_statement in array array[
            format('set local tenancy.context = %L', tenancy.context_value(
                v_b, 'service', case when v_table.value_kind = 'id' then null else v_key_b end, null)),
            format('set local tenancy.context_mac = %L', left(current_setting('tenancy.context_mac'), -64) || repeat('0', 64)),
            format('set local tenancy.context_mac = %L', v_head || encode(
                tenancy.hmac_sha256(convert_to(v_head || v_context, 'UTF8'), v_secret), 'hex'))
        ] loop
            execute format('set local role %I', v_service);
            perform tenancy.set_context(v_a);
            execute format('set local role %I', v_app);
            execute v_statement;
            execute format('select count(*) from %s', v_table.rel) into v_count;
            v_n := v_n + 1;
            if v_count = 0 then
                v_ok := v_ok + 1;
                raise notice 'ok % - %: %', v_n, v_table.table_name, case
                    when v_statement like 'set local tenancy.context =%' then 'a hand-written context naming tenant B, with A''s signature, sees no row'
                    when v_statement like '%' || repeat('0', 64) || '''' then 'a forged signature sees no row'
                    else 'a correctly signed context that has expired sees no row' end;
            else
                v_failed := v_failed + 1;
                raise notice 'not ok % - %: % sees % rows', v_n, v_table.table_name, left(v_statement, 60), v_count;
            end if;
            set local role none;
        end loop;
        perform tenancy.clear_context();
    end loop;

    -- The key and the signing function are out of the application's reach.
    execute format('set local role %I', v_app);
    foreach v_statement in array array[
        'select count(*) from tenancy.context_mac_keys',
        'select tenancy.sign_context_mac(gen_random_uuid(), null, ''service'', null)',
        'select tenancy.configure_context_mac(true, 3600, true)'
    ] loop
        v_n := v_n + 1;
        begin
            execute v_statement;
            v_state := 'allowed';
        exception when others then
            v_state := sqlstate;
        end;
        if v_state = '42501' then
            v_ok := v_ok + 1;
            raise notice 'ok % - the application cannot run: % (42501)', v_n, v_statement;
        else
            v_failed := v_failed + 1;
            raise notice 'not ok % - the application ran: % (%)', v_n, v_statement, v_state;
        end if;
    end loop;
    set local role none;

    -- Citus: the plan was carried out, and the application roles forward SET LOCAL.
    if v_citus then
        for v_table in
            select p.relation, p.action from tenancy.citus_distribution_plan() as p
            where p.action in ('reference', 'distribute')
        loop
            v_n := v_n + 1;
            execute 'select count(*) from pg_dist_partition as d where d.logicalrelid = $1 and d.partmethod = $2'
            into v_count using v_table.relation, case when v_table.action = 'reference' then 'n' else 'h' end;
            if v_count = 1 then
                v_ok := v_ok + 1;
                raise notice 'ok % - % is a % table', v_n, v_table.relation,
                    case when v_table.action = 'reference' then 'reference' else 'distributed' end;
            else
                v_failed := v_failed + 1;
                raise notice 'not ok % - % is not a % table: run sql/citus/distribute.sql', v_n, v_table.relation,
                    case when v_table.action = 'reference' then 'reference' else 'distributed' end;
            end if;
        end loop;
        for v_statement in
            select p.statement from tenancy.citus_distribution_plan() as p where p.action = 'role'
        loop
            v_n := v_n + 1;
            v_detail := substring(v_statement from '^alter role (.*) set citus');
            if exists (
                select from pg_db_role_setting as s
                where s.setrole = (select r.oid from pg_roles as r where quote_ident(r.rolname) = v_detail)
                    and 'citus.propagate_set_commands=local' = any(s.setconfig)
            ) then
                v_ok := v_ok + 1;
                raise notice 'ok % - role % has citus.propagate_set_commands = local', v_n, v_detail;
            else
                v_failed := v_failed + 1;
                raise notice 'not ok % - role % lacks citus.propagate_set_commands = local', v_n, v_detail;
            end if;
        end loop;
    else
        v_n := v_n + 1;
        v_skipped := v_skipped + 1;
        raise notice 'skip % - citus is not installed: the distribution and the roles'' settings are not checked', v_n;
    end if;

    raise notice 'verify: % checks: % ok, % failed, % skipped', v_n, v_ok, v_failed, v_skipped;
    if v_failed > 0 then
        raise exception 'verify: % of % checks failed', v_failed, v_n;
    end if;
end
$verify$;

rollback;
