-- tenancy.key_layout_problems: every key and index of a tenant table and its descendants that its tenant column does not lead.

create or replace function tenancy.key_layout_problems(
    p_table regclass,
    p_column name default 'tenant_id',
    p_covered text[] default null
)
returns table (object text, detail text, remediation text)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_col text := quote_ident(p_column);
    v_attnum smallint;
    v_rel record;
    v_idx record;
    v_con record;
    v_covered oid[] := '{}'::oid[];
    v_name text;
    v_oid oid;
    v_head text;
    v_pos integer;
    v_keys text;
    v_refkeys text;
    v_ref_attnum smallint;
    v_note text;
begin
    select a.attnum into v_attnum
    from pg_attribute as a
    where a.attrelid = p_table and a.attname = p_column and a.attnum > 0 and not a.attisdropped;
    if v_attnum is null then
        return query select
            p_table::text,
            format('table %s has no column %s', p_table, v_col),
            format(
                'alter table %s add column %s (uuid for the tenant id; bigint, integer or text for '
                'the tenant key) not null, or name the table''s tenant column with tenant_column in '
                'the spec', p_table, v_col
            );
        return;
    end if;
    if not exists (select 1 from pg_constraint as c where c.conrelid = p_table and c.contype = 'p') then
        return query select
            p_table::text,
            format('table %s has no primary key', p_table),
            format('alter table %s add primary key (%s, id)', p_table, v_col);
    end if;

    -- The partitions and inheritance children the policy file was generated for (NULL: the
    -- caller secures none in particular, and they are not checked).
    foreach v_name in array coalesce(p_covered, '{}'::text[]) loop
        v_oid := to_regclass(v_name);
        if v_oid is null then
            return query select
                v_name,
                format('this policy file covers %s, which no longer exists', v_name),
                'run pgtenancy generate and apply the new file'::text;
        else
            v_covered := v_covered || v_oid;
        end if;
    end loop;

    -- The table, then every partition and inheritance child, recursively.
    for v_rel in
        with recursive tree (relid, parent, depth) as (
            select p_table::oid, null::oid, 0
            union
            select i.inhrelid, i.inhparent, t.depth + 1
            from pg_inherits as i
            join tree as t on i.inhparent = t.relid
            join pg_class as c on c.oid = i.inhrelid
            where c.relkind in ('r', 'p')
        )
        select distinct on (t.relid)
            t.relid,
            t.relid::regclass as rel,
            t.parent::regclass as parent,
            c.relispartition,
            c.relkind,
            a.attnum as tenant_attnum
        from tree as t
        join pg_class as c on c.oid = t.relid
        join pg_attribute as a
            on a.attrelid = t.relid and a.attname = p_column and not a.attisdropped
        order by t.relid, t.depth
    loop
        if p_covered is not null and v_rel.relid <> p_table::oid and not v_rel.relid = any(v_covered) then
            return query select
                v_rel.rel::text,
                format(
                    '%s %s of %s has no row level security from this policy file',
                    case when v_rel.relispartition then 'partition' else 'inheritance child' end,
                    v_rel.rel, v_rel.parent
                ),
                'run pgtenancy generate and apply the new file'::text;
        end if;

        -- Every index (unique or not, on expressions, partial) and every constraint backed by
        -- one. An index of a partition that belongs to an index of its parent is reported there.
        for v_idx in
            select
                x.indexrelid,
                x.indexrelid::regclass as idx,
                x.indisunique,
                x.indnkeyatts,
                x.indkey,
                x.indkey[0] as first_key,
                am.amname,
                pg_get_indexdef(x.indexrelid) as def,
                pg_get_indexdef(x.indexrelid, 1, true) as first_def,
                c.conname,
                c.contype,
                c.conexclop,
                c.conkey,
                pg_get_constraintdef(c.oid) as condef
            from pg_index as x
            join pg_class as ic on ic.oid = x.indexrelid
            join pg_am as am on am.oid = ic.relam
            left join pg_constraint as c
                on c.conindid = x.indexrelid and c.conrelid = x.indrelid and c.contype in ('p', 'u', 'x')
            where x.indrelid = v_rel.relid
              and not exists (select 1 from pg_inherits as i where i.inhrelid = x.indexrelid)
            order by ic.relname
        loop
            v_note := case v_idx.amname
                when 'gist' then format(' (a GiST index takes %s with the btree_gist extension)', v_col)
                when 'gin' then format(' (a GIN index takes %s with the btree_gin extension)', v_col)
                else ''
            end;
            if v_idx.contype in ('p', 'u') then
                if v_idx.first_key = v_rel.tenant_attnum then
                    continue;
                end if;
                select string_agg(quote_ident(a.attname), ', ' order by k.ord) into v_keys
                from unnest(v_idx.conkey) with ordinality as k (attnum, ord)
                join pg_attribute as a on a.attrelid = v_rel.relid and a.attnum = k.attnum
                where k.attnum <> v_rel.tenant_attnum;
                return query select
                    v_rel.rel::text,
                    format(
                        '%s %I of %s (%s) does not start with %s',
                        case v_idx.contype when 'p' then 'primary key' else 'unique constraint' end,
                        v_idx.conname, v_rel.rel, v_idx.condef, v_col
                    ),
                    format(
                        'alter table %s drop constraint %I, add constraint %I %s (%s%s)',
                        v_rel.rel, v_idx.conname, v_idx.conname,
                        case v_idx.contype when 'p' then 'primary key' else 'unique' end,
                        v_col, coalesce(', ' || v_keys, '')
                    );
            elsif v_idx.contype = 'x' then
                if v_idx.first_key = v_rel.tenant_attnum
                    and (select o.oprname from pg_operator as o where o.oid = v_idx.conexclop[1]) = '=' then
                    continue;
                end if;
                v_pos := strpos(v_idx.condef, '(');
                return query select
                    v_rel.rel::text,
                    format(
                        'exclusion constraint %I of %s (%s) does not start with %s WITH =%s',
                        v_idx.conname, v_rel.rel, v_idx.condef, v_col, v_note
                    ),
                    format(
                        'alter table %s drop constraint %I, add constraint %I %s',
                        v_rel.rel, v_idx.conname, v_idx.conname,
                        substr(v_idx.condef, 1, v_pos) || v_col || ' WITH =, ' || substr(v_idx.condef, v_pos + 1)
                    );
            elsif v_idx.amname = 'brin' then
                select string_agg(pg_get_indexdef(v_idx.indexrelid, k, true), ', ' order by k)
                into v_keys
                from generate_series(1, v_idx.indnkeyatts) as k
                where v_idx.indkey[k - 1] <> v_rel.tenant_attnum;
                return query select
                    v_rel.rel::text,
                    format(
                        'BRIN index %s of %s summarises pages holding several tenants'' rows, whatever '
                        'its first column', v_idx.idx, v_rel.rel
                    ),
                    format(
                        'drop index %s; create index on %s using btree (%s%s)',
                        v_idx.idx, v_rel.rel, v_col, coalesce(', ' || v_keys, '')
                    );
            elsif v_idx.first_key <> v_rel.tenant_attnum then
                if v_idx.amname in ('hash', 'spgist') then
                    -- Single-column access methods: the fix is a btree (or GiST) index.
                    v_head := format(
                        'create index on %s using btree (%s, %s)', v_rel.rel, v_col, v_idx.first_def
                    );
                else
                    v_head := format(' USING %s (', v_idx.amname);
                    v_pos := strpos(v_idx.def, v_head) + length(v_head);
                    v_head := substr(v_idx.def, 1, v_pos - 1) || v_col || ', ' || substr(v_idx.def, v_pos);
                    -- pg_get_indexdef spells keywords in capitals; the rest of the fix is lower case.
                    v_head := regexp_replace(
                        v_head, '^CREATE (UNIQUE )?INDEX ',
                        case when v_idx.indisunique then 'create unique index ' else 'create index ' end
                    );
                end if;
                return query select
                    v_rel.rel::text,
                    format(
                        '%s %s of %s (%s) does not start with %s%s',
                        case when v_idx.indisunique then 'unique index' else 'index' end,
                        v_idx.idx, v_rel.rel,
                        case when v_idx.first_key = 0 then 'first key is the expression ' else 'on ' end
                        || v_idx.first_def,
                        v_col, v_note
                    ),
                    format('drop index %s; %s', v_idx.idx, v_head);
            end if;
        end loop;

        -- Foreign keys to other tenant tables: tables holding a column of the same name (a
        -- reference to a platform table, such as tenancy.tenants, holds none). A partition's copies
        -- of its parent's foreign keys are reported on the parent.
        for v_con in
            select c.conname, c.conkey, c.confkey, c.confrelid::regclass as ref
            from pg_constraint as c
            where c.conrelid = v_rel.relid and c.contype = 'f' and c.conparentid = 0
            order by c.conname
        loop
            select a.attnum into v_ref_attnum
            from pg_attribute as a
            where a.attrelid = v_con.ref and a.attname = p_column and a.attnum > 0 and not a.attisdropped;
            if v_ref_attnum is null then
                continue;
            end if;
            if v_con.conkey[1] = v_rel.tenant_attnum and v_con.confkey[1] = v_ref_attnum then
                continue;
            end if;
            select
                string_agg(quote_ident(a.attname), ', ' order by k.ord),
                string_agg(quote_ident(r.attname), ', ' order by k.ord)
            into v_keys, v_refkeys
            from unnest(v_con.conkey, v_con.confkey) with ordinality as k (attnum, refnum, ord)
            join pg_attribute as a on a.attrelid = v_rel.relid and a.attnum = k.attnum
            join pg_attribute as r on r.attrelid = v_con.ref and r.attnum = k.refnum
            where k.attnum <> v_rel.tenant_attnum;
            return query select
                v_rel.rel::text,
                format(
                    'foreign key %I of %s to tenant table %s does not pair %s with %s first',
                    v_con.conname, v_rel.rel, v_con.ref, v_col, v_col
                ),
                format(
                    'alter table %s drop constraint %I, add constraint %I foreign key '
                    '(%s, %s) references %s (%s, %s)',
                    v_rel.rel, v_con.conname, v_con.conname, v_col, v_keys, v_con.ref, v_col, v_refkeys
                );
        end loop;
    end loop;
end
$$;

comment on function tenancy.key_layout_problems(regclass, name, text[]) is
'Every key layout problem of a tenant table whose tenant column is p_column, one row each with '
'the relation it is on, what is wrong and the statement that fixes it: no such column, no primary '
'key, a primary key, index, unique or exclusion constraint, or foreign key to another tenant table '
'(one holding a column of that name) not led by the column, on the table or its partitions and '
'inheritance children; with p_covered (the descendants a policy file secures), every descendant '
'not in it and every name in it that no longer exists. The one source of TN007 '
'(tenancy.assert_tenant_keys) and of doctor lint 0005.';

revoke all on function tenancy.key_layout_problems(regclass, name, text[]) from public;
grant execute on function tenancy.key_layout_problems(regclass, name, text[])
to tenancy_admin, tenancy_auditor;
