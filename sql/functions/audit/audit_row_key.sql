-- tenancy.audit_row_key: a table row's primary key as the audit trail records it (entity_type, canonical entity_id).

-- p_pk names the primary key columns as a JSON object ('{"id": 42}'); the tenant column may be
-- given too and is returned apart (entity_id never holds it). Every value of a built-in type is
-- cast to its column's type and written back with to_jsonb, as tenancy.tg_audit does, so
-- '{"id": "42"}' and '{"id": 42}' name the same row of a bigint key, and the text is jsonb's
-- canonical one. Runs as the caller.
create or replace function tenancy.audit_row_key(
    p_table regclass,
    p_pk jsonb,
    out entity_type text,
    out entity_id text,
    out key_columns text[],
    out tenant_column text,
    out tenant_type text,
    out tenant_value text
)
returns record
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_info record;
    v_unknown text;
    v_missing text;
    v_row jsonb;
    v_null text;
    v_col text;
    v_type text;
    v_value jsonb;
begin
    v_info := tenancy.audit_table_info(p_table);
    entity_type := v_info.entity_type;
    key_columns := v_info.key_columns;
    tenant_column := v_info.tenant_column;
    tenant_type := v_info.tenant_type;
    if p_pk is null or pg_catalog.jsonb_typeof(p_pk) operator (pg_catalog.<>) 'object' then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'the primary key of a row of %s must be a JSON object such as {"id": 42}, got %s',
                p_table, coalesce(pg_catalog.left(p_pk::text, 100), 'NULL')
            );
    end if;
    select pg_catalog.string_agg(pg_catalog.quote_ident(k.k), ', ' order by k.k) into v_unknown
    from pg_catalog.jsonb_object_keys(p_pk) as k (k)
    where
        k.k operator (pg_catalog.<>) v_info.tenant_column
        and not k.k operator (pg_catalog.=) any(v_info.key_columns);
    if v_unknown is not null then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                '%s is not a primary key column of %s: its audit key is (%s), the tenant column %s may be given too',
                v_unknown, p_table,
                pg_catalog.array_to_string(v_info.key_columns, ', '), pg_catalog.quote_ident(v_info.tenant_column)
            );
    end if;
    select pg_catalog.string_agg(pg_catalog.quote_ident(c.c), ', ' order by c.o) into v_missing
    from pg_catalog.unnest(v_info.key_columns) with ordinality as c (c, o)
    where not p_pk operator (pg_catalog.?) c.c;
    if v_missing is not null then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format(
                'the primary key %s of a row of %s lacks %s: its audit key is (%s)',
                p_pk, p_table, v_missing, pg_catalog.array_to_string(v_info.key_columns, ', ')
            );
    end if;
    -- Each value through its column's type (the base type of a domain), with its modifier, when
    -- that type is a built-in one, as to_jsonb of the row wrote it: 42 and "42" for a bigint,
    -- 42.00 for 42 in a numeric(12, 2), a uuid in any case. Values of other types (enums, types of other schemas) are compared as given, so the
    -- caller needs no privilege on the table's schema.
    v_row := '{}';
    for v_col, v_type in
        select
            c.c,
            case
                when t.typbasetype operator (pg_catalog.=) 0 then pg_catalog.format_type(t.oid, at.atttypmod)
                else pg_catalog.format_type(t.typbasetype, t.typtypmod)
            end
        from pg_catalog.unnest(v_info.key_columns || v_info.tenant_column) as c (c)
        inner join pg_catalog.pg_attribute as at
            on at.attrelid operator (pg_catalog.=) p_table and at.attname operator (pg_catalog.=) c.c
        inner join pg_catalog.pg_type as t on t.oid operator (pg_catalog.=) at.atttypid
        inner join pg_catalog.pg_type as ty
            on ty.oid operator (pg_catalog.=) coalesce(nullif(t.typbasetype, 0), t.oid)
        where
            p_pk operator (pg_catalog.?) c.c
            and ty.typnamespace operator (pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
    loop
        begin
            execute pg_catalog.format('select pg_catalog.to_jsonb(($1)::%s)', v_type)
            into v_value
            using p_pk operator (pg_catalog.->>) v_col;
        exception when others then
            raise exception using
                errcode = '22023',
                message = pg_catalog.format(
                    'the primary key %s does not fit a row of %s: column %s is %s (%s)',
                    p_pk, p_table, pg_catalog.quote_ident(v_col), v_type, sqlerrm
                );
        end;
        v_row := v_row operator (pg_catalog.||) pg_catalog.jsonb_build_object(v_col, v_value);
    end loop;
    v_row := p_pk operator (pg_catalog.||) v_row;
    select pg_catalog.string_agg(pg_catalog.quote_ident(c.c), ', ') into v_null
    from pg_catalog.unnest(v_info.key_columns) as c (c)
    where (v_row operator (pg_catalog.->) c.c) operator (pg_catalog.=) 'null'::jsonb;
    if v_null is not null then
        raise exception using
            errcode = '22023',
            message = pg_catalog.format('the primary key %s of a row of %s has NULL in %s', p_pk, p_table, v_null);
    end if;
    if pg_catalog.cardinality(v_info.key_columns) operator (pg_catalog.>) 0 then
        select pg_catalog.jsonb_object_agg(c.c, v_row operator (pg_catalog.->) c.c)::text into entity_id
        from pg_catalog.unnest(v_info.key_columns) as c (c);
    end if;
    if p_pk operator (pg_catalog.?) v_info.tenant_column then
        tenant_value := v_row operator (pg_catalog.->>) v_info.tenant_column;
    end if;
end
$$;

comment on function tenancy.audit_row_key(regclass, jsonb) is
'A row''s primary key (a JSON object of its key columns, the tenant column optional) as '
'tenancy.audit_logs records it: the entity_type, the canonical entity_id text (NULL for a table '
'keyed by its tenant column alone), the key columns, the tenant column, its type and the value '
'given for it (NULL if none). 22023 for a key that is not a JSON object, names a column outside the '
'primary key, lacks one, holds NULL or a value the column''s type refuses; 55000 for a table '
'that is not audited.';

revoke all on function tenancy.audit_row_key(regclass, jsonb) from public;
grant execute on function tenancy.audit_row_key(regclass, jsonb)
to tenancy_app, tenancy_service, tenancy_auditor;
