-- tenancy.table_at: the current tenant's rows of an audited table as they were at a past time, from the audit trail alone.

-- One pass over the tenant's audit rows of the table up to p_at (index (tenant_id, entity_type,
-- entity_id, id)); for each key the last audit row by id whose statement started at or before
-- p_at, kept unless it is a DELETE or an UPDATE later took the row away from that key (changed
-- its primary key; the key then disappears at that change: the row is under its new key).
-- Rows deleted and inserted again with the same key, and many changes in one transaction or one
-- statement, resolve by id, the order the audit rows were written. In one statement that both
-- gives a row a key and takes another row away from it (a swap of keys), an UPDATE ends the
-- key only if it took away the row the key held (old_data equal to that row's last new_data) or
-- was written by another statement (another txid or statement_at).
-- Time: statement_at is when the writing statement started; the change became visible to
-- others when its transaction committed, which the trail does not know: a transaction still
-- open at p_at counts as done. Columns in audit_exclude are absent from data.
-- Typed rows: select r.* from tenancy.table_at('app.projects', t) as s
--             cross join lateral jsonb_populate_record(null::app.projects, s.data) as r;
-- A partition (or inheritance child) gives the rows of its whole root: the trail records them
-- under the root's name. Measured: about 1 s for a table of 100,000 rows with 310,000 audit
-- rows in the tenant (a sort of the tenant's rows of the table); JIT off, as for the other
-- reading functions, whose estimates over the trail are far off.
-- Runs as the caller: without a context (or for a member or viewer, whom the trail's row level
-- security shows nothing) it returns no rows; tenancy_auditor, which has no context, neither.
create or replace function tenancy.table_at(p_table regclass, p_at timestamptz)
returns table (pk jsonb, data jsonb)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
set jit = off
as $$
declare
    v_info record;
    v_entity text;
    v_cols text[];
    v_tenant uuid := tenancy.current_tenant_id();
begin
    if p_at is null then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format('the time of the rows of %s must not be NULL', p_table);
    end if;
    v_info := tenancy.audit_table_info(p_table);
    v_entity := v_info.entity_type;
    v_cols := v_info.key_columns;
    if v_tenant is null then
        return;
    end if;
    return query
    with moved (k, id, txid, statement_at, old_data) as materialized (
        -- UPDATEs that changed a row's primary key: its old key ends there.
        select o.k, m.id, m.txid, m.statement_at, m.old_data
        from tenancy.audit_logs as m
        cross join lateral (
            select (
                select pg_catalog.jsonb_object_agg(c.c, m.old_data operator (pg_catalog.->) c.c)
                from pg_catalog.unnest(v_cols) as c (c)
            )::text as k
        ) as o
        where
            m.tenant_id operator (pg_catalog.=) v_tenant
            and m.entity_type operator (pg_catalog.=) v_entity
            and case
                when m.action operator (pg_catalog.=) 'UPDATE' and m.schema_name is not null
                    then not m.old_data operator (pg_catalog.@>) m.entity_id::pg_catalog.jsonb
            end
            and m.logged_at operator (pg_catalog.<=) p_at
            and m.statement_at operator (pg_catalog.<=) p_at
            and o.k operator (pg_catalog.<>) m.entity_id
    )
    select coalesce(s.entity_id::jsonb, '{}'::jsonb), s.new_data
    from (
        select distinct on (a.entity_id)
            a.id, a.txid, a.statement_at, a.action, a.entity_id, a.new_data
        from tenancy.audit_logs as a
        where
            a.tenant_id operator (pg_catalog.=) v_tenant
            and a.entity_type operator (pg_catalog.=) v_entity
            and a.logged_at operator (pg_catalog.<=) p_at
            and a.statement_at operator (pg_catalog.<=) p_at
        order by a.entity_id, a.id desc
    ) as s
    where
        s.action operator (pg_catalog.<>) 'DELETE'
        and not exists (
            select
            from moved as mo
            where
                mo.k operator (pg_catalog.=) s.entity_id
                and mo.id operator (pg_catalog.>) s.id
                and (
                    mo.txid operator (pg_catalog.<>) s.txid
                    or mo.statement_at operator (pg_catalog.<>) s.statement_at
                    or mo.old_data operator (pg_catalog.=) s.new_data
                )
        )
    order by s.entity_id;
end
$$;

comment on function tenancy.table_at(regclass, timestamptz) is
'The current tenant''s rows of an audited table as they were at p_at, from the audit trail '
'alone: pk (the primary key without the tenant column, a JSON object) and data (the row''s '
'new_data, without its audit_exclude columns), by pk; a change counts from the start of its '
'statement (statement_at), not its commit. Typed rows: select r.* from tenancy.table_at(''app.projects'', t) '
'as s cross join lateral jsonb_populate_record(null::app.projects, s.data) as r. Runs as the '
'caller: no rows without a context or for members and viewers. 22023 for a NULL time, 55000 '
'for a table that is not audited.';

revoke all on function tenancy.table_at(regclass, timestamptz) from public;
grant execute on function tenancy.table_at(regclass, timestamptz)
to tenancy_app, tenancy_service, tenancy_auditor;
