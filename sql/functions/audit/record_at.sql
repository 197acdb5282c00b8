-- tenancy.record_at: one table row as it was at a past time, from the audit trail alone.

-- The row held by the key p_pk (normalised by tenancy.audit_row_key) after the last change
-- recorded for that key at or before p_at: the new_data of the last audit row (by id) whose
-- statement_at is at or before p_at, or NULL when that row is a DELETE, when no row was
-- recorded yet, or when an UPDATE took the row away from this key (changed its primary key)
-- after that and at or before p_at. In one statement that both gives a row the key and takes
-- another away (a swap of keys), the order of the audit rows is not the order of the changes:
-- such an UPDATE ends the key only if it took away the row the key held (old_data equal to
-- the last new_data), or if it was written by another statement (another txid or statement_at).
-- Time: statement_at is when the writing statement started; the change became visible to
-- others only when its transaction committed, which the trail does not record. Columns in the
-- table's audit_exclude are absent from the result. The tenant column may be given in p_pk to
-- choose the tenant (a tenancy_auditor reading rows of several tenants must: 22023 otherwise).
-- Runs as the caller: rows the trail's row level security hides count as never written.
create or replace function tenancy.record_at(p_table regclass, p_pk jsonb, p_at timestamptz)
returns jsonb
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
    v_last record;
    v_tenants bigint;
begin
    if p_at is null then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format('the time of a row of %s must not be NULL', p_table);
    end if;
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
    -- The last audit row of the key at or before p_at, per tenant seen.
    select
        pg_catalog.count(*) over () as tenants,
        l.id, l.tenant_id, l.txid, l.statement_at, l.action, l.new_data
    into v_last
    from (
        select distinct on (a.tenant_id)
            a.id, a.tenant_id, a.txid, a.statement_at, a.action, a.new_data
        from tenancy.audit_logs as a
        where
            a.entity_type operator (pg_catalog.=) v_entity
            and (
                a.entity_id operator (pg_catalog.=) v_id
                or v_id is null and a.entity_id is null
            )
            and a.logged_at operator (pg_catalog.<=) p_at
            and a.statement_at operator (pg_catalog.<=) p_at
            and (v_tenant_id is null or a.tenant_id operator (pg_catalog.=) v_tenant_id)
            and (
                v_tenant is null
                or (coalesce(a.new_data, a.old_data) operator (pg_catalog.->>) v_column) operator (pg_catalog.=) v_tenant
            )
        order by a.tenant_id, a.id desc
    ) as l;
    if not found then
        return null;
    end if;
    v_tenants := v_last.tenants;
    if v_tenants operator (pg_catalog.>) 1 then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'the primary key %s of %s names rows of %s tenants: add the tenant column %s to it',
                p_pk, p_table, v_tenants, pg_catalog.quote_ident(v_column)
            );
    end if;
    if v_last.action operator (pg_catalog.=) 'DELETE' then
        return null;
    end if;
    -- An UPDATE that took the row away from this key afterwards (none for a table keyed by its
    -- tenant column alone).
    if v_id is not null and exists (
        select
        from tenancy.audit_logs as m
        where
            m.tenant_id operator (pg_catalog.=) v_last.tenant_id
            and m.entity_type operator (pg_catalog.=) v_entity
            and m.id operator (pg_catalog.>) v_last.id
            and case
                when m.action operator (pg_catalog.=) 'UPDATE' and m.schema_name is not null
                    then not m.old_data operator (pg_catalog.@>) m.entity_id::pg_catalog.jsonb
            end
            and m.logged_at operator (pg_catalog.<=) p_at
            and m.statement_at operator (pg_catalog.<=) p_at
            and m.entity_id operator (pg_catalog.<>) v_id
            and (
                select pg_catalog.jsonb_object_agg(c.c, m.old_data operator (pg_catalog.->) c.c)
                from pg_catalog.unnest(v_cols) as c (c)
            )::text operator (pg_catalog.=) v_id
            and (
                m.txid operator (pg_catalog.<>) v_last.txid
                or m.statement_at operator (pg_catalog.<>) v_last.statement_at
                or m.old_data operator (pg_catalog.=) v_last.new_data
            )
    ) then
        return null;
    end if;
    return v_last.new_data;
end
$$;

comment on function tenancy.record_at(regclass, jsonb, timestamptz) is
'One row of an audited table as it was at p_at, from the audit trail alone: the new_data (a '
'JSON object, without the table''s audit_exclude columns) of the last change of the key p_pk '
'(''{"id": 42}'') whose statement started at or before p_at; NULL when it was deleted, not yet '
'inserted, or its key changed away. statement_at is the start of the writing statement, not '
'its commit. Runs as the caller (the trail''s row level security). 22023 for a bad key or a '
'NULL time, or a key naming rows of several tenants without the tenant column; 55000 for a '
'table that is not audited. jsonb_populate_record(null::app.projects, …) gives a typed row.';

revoke all on function tenancy.record_at(regclass, jsonb, timestamptz) from public;
grant execute on function tenancy.record_at(regclass, jsonb, timestamptz)
to tenancy_app, tenancy_service, tenancy_auditor;
