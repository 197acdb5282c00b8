-- tenancy.record_history: every audit row of one table row, following it through changes of its primary key, in order.

-- p_pk: the primary key as a JSON object ('{"id": 42}'), normalised by tenancy.audit_row_key
-- (the tenant column may be given: then only that tenant's rows, which a tenancy_auditor needs
-- to tell apart tenants whose rows share a key). The rows, by id:
-- - every row recorded under that key (entity_id): inserts, updates, deletes, a later row
--   inserted again with the same key;
-- - when an UPDATE gave a row this key (its old key is in old_data), the rows of that row under
--   its previous key, from the insert (or the UPDATE that gave it that key, followed back in
--   turn) up to the change. Audit rows of one statement are in no particular order: when keys
--   are swapped in one statement, a row written with the same txid and statement_at as the
--   change belongs to the row only if its new_data (or a later one of the key before the
--   change) equals the change's old_data;
-- - the UPDATEs that took a row away from this key (recorded under the new key: entity_id is
--   always the key after the change), each the last row of its row under this key; later rows
--   are in the new key's history.
-- Runs as the caller: the trail's row level security decides which rows are seen (an owner's
-- lookups lead with its tenant; a tenancy_auditor's, without one, read the whole index). JIT is
-- off: the recursive query's estimates are far off, and JIT compiled it for seconds.
-- tenancy.audit_logs_rekey_idx finds the UPDATEs that changed a key.
create or replace function tenancy.record_history(p_table regclass, p_pk jsonb)
returns setof tenancy.audit_logs
language plpgsql
stable
set search_path = pg_catalog, pg_temp
set jit = off
as $$
declare
    v_key record;
    v_entity text;
    v_id text;
    v_cols text[];
    v_column text;
    v_tenant text;
    v_tenant_id uuid;
begin
    v_key := tenancy.audit_row_key(p_table, p_pk);
    v_entity := v_key.entity_type;
    v_id := v_key.entity_id;
    v_cols := v_key.key_columns;
    v_column := v_key.tenant_column;
    v_tenant := v_key.tenant_value;
    -- A uuid tenant column holds the tenant id: the index leads with it (an auditor's lookup).
    if v_key.tenant_type operator (pg_catalog.=) 'uuid' then
        v_tenant_id := v_tenant::uuid;
    end if;
    if v_id is null then
        -- Keyed by the tenant column alone: one row per tenant, no key to change.
        return query
        select a.* from tenancy.audit_logs as a
        where
            a.entity_type operator (pg_catalog.=) v_entity
            and a.entity_id is null
            and (v_tenant_id is null or a.tenant_id operator (pg_catalog.=) v_tenant_id)
            and (
                v_tenant is null
                or (coalesce(a.new_data, a.old_data) operator (pg_catalog.->>) v_column) operator (pg_catalog.=) v_tenant
            )
        order by a.id;
        return;
    end if;
    return query
    with recursive hist (r) as (
        select a
        from tenancy.audit_logs as a
        where
            a.entity_type operator (pg_catalog.=) v_entity
            and a.entity_id operator (pg_catalog.=) v_id
            and (v_tenant_id is null or a.tenant_id operator (pg_catalog.=) v_tenant_id)
            and (
                v_tenant is null
                or (coalesce(a.new_data, a.old_data) operator (pg_catalog.->>) v_column) operator (pg_catalog.=) v_tenant
            )
        union all
        -- An UPDATE that gave the row its key: the row's rows under its previous key, from the
        -- start of that key's life (its INSERT, or the UPDATE that gave it that key) on.
        select bb.b
        from hist as h
        cross join lateral (
            select (
                select pg_catalog.jsonb_object_agg(c.c, (h.r).old_data operator (pg_catalog.->) c.c)
                from pg_catalog.unnest(v_cols) as c (c)
            )::text as k
        ) as o
        cross join lateral (
            select coalesce(pg_catalog.max(s.id), 0) as lo
            from tenancy.audit_logs as s
            where
                s.tenant_id operator (pg_catalog.=) (h.r).tenant_id
                and s.entity_type operator (pg_catalog.=) v_entity
                and s.entity_id operator (pg_catalog.=) o.k
                and s.id operator (pg_catalog.<) (h.r).id
                and (
                    s.action operator (pg_catalog.=) 'INSERT'
                    or s.action operator (pg_catalog.=) 'UPDATE'
                    and s.changed_columns operator (pg_catalog.&&) v_cols
                    and (
                        select pg_catalog.jsonb_object_agg(c.c, s.old_data operator (pg_catalog.->) c.c)
                        from pg_catalog.unnest(v_cols) as c (c)
                    )::text operator (pg_catalog.<>) o.k
                )
                and (
                    s.txid operator (pg_catalog.<>) (h.r).txid
                    or s.statement_at operator (pg_catalog.<>) (h.r).statement_at
                    or exists (
                        select
                        from tenancy.audit_logs as e
                        where
                            e.tenant_id operator (pg_catalog.=) (h.r).tenant_id
                            and e.entity_type operator (pg_catalog.=) v_entity
                            and e.entity_id operator (pg_catalog.=) o.k
                            and e.id operator (pg_catalog.>=) s.id
                            and e.id operator (pg_catalog.<) (h.r).id
                            and e.new_data operator (pg_catalog.=) (h.r).old_data
                    )
                )
        ) as st
        cross join lateral (
            select b
            from tenancy.audit_logs as b
            where
                b.tenant_id operator (pg_catalog.=) (h.r).tenant_id
                and b.entity_type operator (pg_catalog.=) v_entity
                and b.entity_id operator (pg_catalog.=) o.k
                and b.id operator (pg_catalog.>=) st.lo
                and b.id operator (pg_catalog.<) (h.r).id
                and (
                    b.txid operator (pg_catalog.<>) (h.r).txid
                    or b.statement_at operator (pg_catalog.<>) (h.r).statement_at
                    or exists (
                        select
                        from tenancy.audit_logs as e
                        where
                            e.tenant_id operator (pg_catalog.=) (h.r).tenant_id
                            and e.entity_type operator (pg_catalog.=) v_entity
                            and e.entity_id operator (pg_catalog.=) o.k
                            and e.id operator (pg_catalog.>=) b.id
                            and e.id operator (pg_catalog.<) (h.r).id
                            and e.new_data operator (pg_catalog.=) (h.r).old_data
                    )
                )
        ) as bb
        where
            (h.r).action operator (pg_catalog.=) 'UPDATE'
            and (h.r).changed_columns operator (pg_catalog.&&) v_cols
            and o.k operator (pg_catalog.<>) (h.r).entity_id
    ),
    moved_away (r) as (
        -- UPDATEs that took a row away from this key.
        select a
        from tenancy.audit_logs as a
        where
            a.entity_type operator (pg_catalog.=) v_entity
            and case
                when a.action operator (pg_catalog.=) 'UPDATE' and a.schema_name is not null
                    then not a.old_data operator (pg_catalog.@>) a.entity_id::pg_catalog.jsonb
            end
            and a.entity_id operator (pg_catalog.<>) v_id
            and (
                select pg_catalog.jsonb_object_agg(c.c, a.old_data operator (pg_catalog.->) c.c)
                from pg_catalog.unnest(v_cols) as c (c)
            )::text operator (pg_catalog.=) v_id
            and (v_tenant_id is null or a.tenant_id operator (pg_catalog.=) v_tenant_id)
            and (
                v_tenant is null
                or (a.old_data operator (pg_catalog.->>) v_column) operator (pg_catalog.=) v_tenant
            )
    )
    select (u.r).*
    from (
        select distinct on ((x.r).id) x.r
        from (
            select h.r from hist as h
            union all
            select m.r from moved_away as m
        ) as x
        order by (x.r).id
    ) as u
    order by (u.r).id;
end
$$;

comment on function tenancy.record_history(regclass, jsonb) is
'The audit rows (tenancy.audit_logs) of one row of an audited table, by id: p_pk is its primary '
'key as a JSON object (''{"id": 42}''; the tenant column may be added to keep one tenant''s '
'rows). Includes the rows of a row under an earlier key when an UPDATE gave it this one, and '
'the UPDATE that took a row away from this key. Runs as the caller: owners and admins see '
'their tenant''s rows, tenancy_auditor every tenant''s. 22023 for a bad key (see '
'tenancy.audit_row_key), 55000 for a table that is not audited.';

revoke all on function tenancy.record_history(regclass, jsonb) from public;
grant execute on function tenancy.record_history(regclass, jsonb)
to tenancy_app, tenancy_service, tenancy_auditor;
