-- tenancy.tg_audit: statement trigger writing one tenancy.audit_logs row per changed row, from the transition tables.

-- Generated per audited table (three triggers, one per event: PostgreSQL allows transition tables
-- on single-event triggers only), AFTER … FOR EACH STATEMENT REFERENCING … AS tenancy_old /
-- tenancy_new, ENABLE ALWAYS. Arguments, rendered from the spec and the catalog (nothing is looked
-- up per row or per statement): the tenant column, its type (uuid, bigint, integer, text), the
-- primary key columns without the tenant column, the excluded columns, and the entity name
-- ("schema"."table" of the table, or of the root of its partition tree).
-- One INSERT … SELECT per statement writes every row: INSERT, UPDATE (old and new rows paired by
-- position: PostgreSQL appends both images of a row to the transition tables together), DELETE,
-- and so ON CONFLICT (an INSERT and an UPDATE statement event), MERGE, COPY FROM and cascaded
-- deletes (each a statement on the referencing table). A row the statement did not change is not
-- in the transition tables and not logged.
-- Each statement's rows are turned into jsonb once: OFFSET 0 keeps the planner from pulling the
-- subquery up, which would copy to_jsonb(row) into every expression using it (the row, the
-- tenant, the key) and compute it three or four times per row.
-- SECURITY DEFINER as tenancy_owner, which alone may insert into the trail; session_user
-- records the real caller.
create or replace function tenancy.tg_audit()
returns trigger
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_column text := tg_argv[0];
    v_type text := tg_argv[1];
    v_pk text[] := tg_argv[2]::text[];
    v_exclude text[] := tg_argv[3]::text[];
    v_entity text := tg_argv[4];
    v_npk integer := cardinality(tg_argv[2]::text[]);
    v_value text := current_setting('tenancy.context', true);
    v_tenant uuid;
    v_key text;
    v_slot text;
    v_user text;
    v_api_key uuid;
    v_role text;
    v_txid bigint := pg_current_xact_id()::text::bigint;
    -- Request metadata as tenancy.set_request_metadata set it in this transaction, else {}.
    v_metadata jsonb := tenancy.request_metadata();
begin
    -- The context, checked here as tenancy.context_tenant_id checks it (a pgTAP test ties the
    -- two): calling it, and context_user_slot and current_member_role which call it again, from
    -- this function's pinned search_path would make PostgreSQL plan their statements again on
    -- every call (a cached plan is valid for the search_path it was made under, and the policies
    -- call them under the caller's).
    if v_value like 'v3|%' and coalesce(current_setting('tenancy.context_keyed', true), '') = 'on' then
        v_tenant := split_part(v_value, '|', 2)::uuid;
        v_role := split_part(v_value, '|', 3);
        if currval('tenancy.context_key'::regclass) is distinct from tenancy.context_key_of(v_tenant, v_role) then
            -- Support access (its own key), or no valid context.
            v_tenant := tenancy.context_tenant_id(null::text[]);
        end if;
    end if;
    if v_tenant is not null then
        if int8send(currval('tenancy.context_fingerprint'::regclass)) = tenancy.context_fingerprint_of(v_value) then
            v_slot := tenancy.context_value_part(v_value, 'user');
            if starts_with(v_slot, chr(30)) then
                v_api_key := substr(v_slot, 2)::uuid;
            elsif v_slot <> '' then
                v_user := v_slot;
            end if;
            -- The tenant's key, for a table keyed by it (its rows are the context tenant's when
            -- their key is this one; any other key is looked up in tenancy.tenants).
            if v_type <> 'uuid' then
                v_key := nullif(tenancy.context_value_part(v_value, 'key'), '');
            end if;
        end if;
        if v_role like 'support/%' then
            v_role := 'support';
        end if;
    else
        v_role := null;
    end if;
    if tg_op = 'INSERT' then
        insert into tenancy.audit_logs (
            tenant_id, txid, action, entity_type, entity_id, schema_name, table_name, new_data,
            actor_user_id, actor_role, api_key_id, metadata
        )
        select
            case
                when v_type = 'uuid' then (r.j ->> v_column)::uuid
                when (r.j ->> v_column) = v_key then v_tenant
                else (select t.id from tenancy.tenants as t where t.key = (r.j ->> v_column))
            end,
            v_txid, 'INSERT', v_entity,
            (case v_npk
                when 0 then null
                when 1 then jsonb_build_object(v_pk[1], r.j -> v_pk[1])
                when 2 then jsonb_build_object(v_pk[1], r.j -> v_pk[1], v_pk[2], r.j -> v_pk[2])
                else (select jsonb_object_agg(k.k, r.j -> k.k) from unnest(v_pk) as k (k))
            end)::text,
            tg_table_schema, tg_table_name,
            case when v_exclude = '{}' then r.j else r.j - v_exclude end,
            v_user, v_role, v_api_key, v_metadata
        from (select to_jsonb(n) as j from tenancy_new as n offset 0) as r;
    elsif tg_op = 'UPDATE' then
        insert into tenancy.audit_logs (
            tenant_id, txid, action, entity_type, entity_id, schema_name, table_name, old_data,
            new_data, changed_columns, actor_user_id, actor_role, api_key_id, metadata
        )
        select
            case
                when v_type = 'uuid' then (r.j ->> v_column)::uuid
                when (r.j ->> v_column) = v_key then v_tenant
                else (select t.id from tenancy.tenants as t where t.key = (r.j ->> v_column))
            end,
            v_txid, 'UPDATE', v_entity,
            (case v_npk
                when 0 then null
                when 1 then jsonb_build_object(v_pk[1], r.j -> v_pk[1])
                when 2 then jsonb_build_object(v_pk[1], r.j -> v_pk[1], v_pk[2], r.j -> v_pk[2])
                else (select jsonb_object_agg(k.k, r.j -> k.k) from unnest(v_pk) as k (k))
            end)::text,
            tg_table_schema, tg_table_name, r.o, r.j,
            array(
                select e.key from jsonb_each(r.j) as e
                where e.value is distinct from (r.o -> e.key)
                order by e.key
            ),
            v_user, v_role, v_api_key, v_metadata
        from (
            select
                case when v_exclude = '{}' then o.j else o.j - v_exclude end as o,
                case when v_exclude = '{}' then n.j else n.j - v_exclude end as j
            from (select row_number() over () as i, to_jsonb(t) as j from tenancy_old as t) as o
            inner join (select row_number() over () as i, to_jsonb(t) as j from tenancy_new as t) as n
                on n.i = o.i
        ) as r;
    else
        insert into tenancy.audit_logs (
            tenant_id, txid, action, entity_type, entity_id, schema_name, table_name, old_data,
            actor_user_id, actor_role, api_key_id, metadata
        )
        select
            case
                when v_type = 'uuid' then (r.j ->> v_column)::uuid
                when (r.j ->> v_column) = v_key then v_tenant
                else (select t.id from tenancy.tenants as t where t.key = (r.j ->> v_column))
            end,
            v_txid, 'DELETE', v_entity,
            (case v_npk
                when 0 then null
                when 1 then jsonb_build_object(v_pk[1], r.j -> v_pk[1])
                when 2 then jsonb_build_object(v_pk[1], r.j -> v_pk[1], v_pk[2], r.j -> v_pk[2])
                else (select jsonb_object_agg(k.k, r.j -> k.k) from unnest(v_pk) as k (k))
            end)::text,
            tg_table_schema, tg_table_name,
            case when v_exclude = '{}' then r.j else r.j - v_exclude end,
            v_user, v_role, v_api_key, v_metadata
        from (select to_jsonb(o) as j from tenancy_old as o offset 0) as r;
    end if;
    return null;
end
$$;

comment on function tenancy.tg_audit() is
'Trigger (AFTER INSERT, UPDATE or DELETE, FOR EACH STATEMENT, with transition tables tenancy_new '
'and tenancy_old; arguments: tenant column, its type, primary key columns, excluded columns, '
'entity name), generated for every audited tenant table: writes one tenancy.audit_logs row per '
'changed row, with the context''s user, role and API key, session_user and the request '
'metadata.';

revoke all on function tenancy.tg_audit() from public;
