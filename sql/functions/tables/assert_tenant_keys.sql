-- tenancy.assert_tenant_keys: check that tenant_id leads every key and index of a tenant table and its descendants.

-- The single-argument version of earlier releases would make calls ambiguous.
drop function if exists tenancy.assert_tenant_keys(regclass);

create or replace function tenancy.assert_tenant_keys(
    p_table regclass,
    p_covered text[] default '{}'::pg_catalog.text[]
)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_attnum smallint;
    v_rel record;
    v_idx record;
    v_con record;
    v_covered oid[] := '{}'::oid[];
    v_name text;
    v_oid oid;
    v_problems text[] := '{}'::text[];
    v_head text;
    v_pos integer;
    v_keys text;
    v_refkeys text;
    v_ref_attnum smallint;
    v_note text;
begin
    select a.attnum into v_attnum
    from pg_attribute as a
    where a.attrelid = p_table and a.attname = 'tenant_id' and a.attnum > 0 and not a.attisdropped;
    if v_attnum is null then
        raise exception using
            errcode = 'TN007',
            message = format('table %s has no tenant_id column', p_table);
    end if;
    if not exists (select 1 from pg_constraint as c where c.conrelid = p_table and c.contype = 'p') then
        v_problems := v_problems || format(
            'table %s has no primary key; fix: alter table %s add primary key (tenant_id, id)',
            p_table, p_table
        );
    end if;

    -- The partitions and inheritance children the policy file was generated for.
    foreach v_name in array coalesce(p_covered, '{}'::text[]) loop
        v_oid := to_regclass(v_name);
        if v_oid is null then
            v_problems := v_problems || format(
                'this policy file covers %s, which no longer exists; fix: run pgtenancy generate '
                'and apply the new file', v_name
            );
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
            on a.attrelid = t.relid and a.attname = 'tenant_id' and not a.attisdropped
        order by t.relid, t.depth
    loop
        if v_rel.relid <> p_table::oid and not v_rel.relid = any(v_covered) then
            v_problems := v_problems || format(
                '%s %s of %s has no row level security from this policy file; fix: run '
                'pgtenancy generate and apply the new file',
                case when v_rel.relispartition then 'partition' else 'inheritance child' end,
                v_rel.rel, v_rel.parent
            );
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
                when 'gist' then ' (a GiST index takes tenant_id with the btree_gist extension)'
                when 'gin' then ' (a GIN index takes tenant_id with the btree_gin extension)'
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
                v_problems := v_problems || format(
                    '%s %I of %s (%s) does not start with tenant_id; fix: alter table %s drop '
                    'constraint %I, add constraint %I %s (tenant_id%s)',
                    case v_idx.contype when 'p' then 'primary key' else 'unique constraint' end,
                    v_idx.conname, v_rel.rel, v_idx.condef, v_rel.rel, v_idx.conname,
                    v_idx.conname,
                    case v_idx.contype when 'p' then 'primary key' else 'unique' end,
                    coalesce(', ' || v_keys, '')
                );
            elsif v_idx.contype = 'x' then
                if v_idx.first_key = v_rel.tenant_attnum
                    and (select o.oprname from pg_operator as o where o.oid = v_idx.conexclop[1]) = '=' then
                    continue;
                end if;
                v_pos := strpos(v_idx.condef, '(');
                v_problems := v_problems || format(
                    'exclusion constraint %I of %s (%s) does not start with tenant_id WITH =%s; '
                    'fix: alter table %s drop constraint %I, add constraint %I %s',
                    v_idx.conname, v_rel.rel, v_idx.condef, v_note, v_rel.rel, v_idx.conname,
                    v_idx.conname,
                    substr(v_idx.condef, 1, v_pos) || 'tenant_id WITH =, ' || substr(v_idx.condef, v_pos + 1)
                );
            elsif v_idx.amname = 'brin' then
                select string_agg(pg_get_indexdef(v_idx.indexrelid, k, true), ', ' order by k)
                into v_keys
                from generate_series(1, v_idx.indnkeyatts) as k
                where v_idx.indkey[k - 1] <> v_rel.tenant_attnum;
                v_problems := v_problems || format(
                    'BRIN index %s of %s summarises pages holding several tenants'' rows, whatever '
                    'its first column; fix: drop index %s; create index on %s using btree (tenant_id%s)',
                    v_idx.idx, v_rel.rel, v_idx.idx, v_rel.rel, coalesce(', ' || v_keys, '')
                );
            elsif v_idx.first_key <> v_rel.tenant_attnum then
                if v_idx.amname in ('hash', 'spgist') then
                    -- Single-column access methods: the fix is a btree (or GiST) index.
                    v_head := format(
                        'create index on %s using btree (tenant_id, %s)', v_rel.rel, v_idx.first_def
                    );
                else
                    v_head := format(' USING %s (', v_idx.amname);
                    v_pos := strpos(v_idx.def, v_head) + length(v_head);
                    v_head := substr(v_idx.def, 1, v_pos - 1) || 'tenant_id, ' || substr(v_idx.def, v_pos);
                    -- pg_get_indexdef spells keywords in capitals; the rest of the fix is lower case.
                    v_head := regexp_replace(
                        v_head, '^CREATE (UNIQUE )?INDEX ',
                        case when v_idx.indisunique then 'create unique index ' else 'create index ' end
                    );
                end if;
                v_problems := v_problems || format(
                    '%s %s of %s (%s) does not start with tenant_id%s; fix: drop index %s; %s',
                    case when v_idx.indisunique then 'unique index' else 'index' end,
                    v_idx.idx, v_rel.rel,
                    case when v_idx.first_key = 0 then 'first key is the expression ' else 'on ' end
                    || v_idx.first_def,
                    v_note, v_idx.idx, v_head
                );
            end if;
        end loop;

        -- Foreign keys to other tenant tables. A partition's copies of its parent's foreign keys
        -- are reported on the parent.
        for v_con in
            select c.conname, c.conkey, c.confkey, c.confrelid::regclass as ref
            from pg_constraint as c
            where c.conrelid = v_rel.relid and c.contype = 'f' and c.conparentid = 0
            order by c.conname
        loop
            select a.attnum into v_ref_attnum
            from pg_attribute as a
            where a.attrelid = v_con.ref and a.attname = 'tenant_id' and a.attnum > 0 and not a.attisdropped;
            if v_ref_attnum is null then
                continue;  -- a reference to a platform table, not to another tenant table
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
            v_problems := v_problems || format(
                'foreign key %I of %s to tenant table %s does not pair tenant_id with tenant_id '
                'first; fix: alter table %s drop constraint %I, add constraint %I foreign key '
                '(tenant_id, %s) references %s (tenant_id, %s)',
                v_con.conname, v_rel.rel, v_con.ref, v_rel.rel, v_con.conname, v_con.conname,
                v_keys, v_con.ref, v_refkeys
            );
        end loop;
    end loop;

    if cardinality(v_problems) > 0 then
        raise exception using
            errcode = 'TN007',
            message = format(
                'tenant table %s: %s key layout problem%s:%s', p_table, cardinality(v_problems),
                case when cardinality(v_problems) > 1 then 's' else '' end,
                E'\n- ' || array_to_string(v_problems, E'\n- ')
            ),
            hint = 'tenant_id must lead the primary key, every index and unique or exclusion '
                'constraint, and every foreign key to another tenant table, on the table and on '
                'each partition and inheritance child, and every partition and child needs the '
                'policy file''s row level security. See docs/key-layout.md.';
    end if;
end
$$;

comment on function tenancy.assert_tenant_keys(regclass, text[]) is
'TN007 naming, each with a fix, every primary key, index, unique or exclusion constraint and '
'foreign key to another tenant table that does not start with tenant_id, on the table and on '
'its partitions and inheritance children, and every partition or child not in p_covered (the '
'descendants the calling policy file secures). Called by generated SQL.';

revoke all on function tenancy.assert_tenant_keys(regclass, text[]) from public;
