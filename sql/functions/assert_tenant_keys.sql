-- tenancy.assert_tenant_keys: check that tenant_id leads every key of a tenant table.

create or replace function tenancy.assert_tenant_keys(p_table regclass)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_attnum smallint;
    v_con record;
    v_problems text[] := '{}'::text[];
begin
    select a.attnum into v_attnum
    from pg_attribute as a
    where a.attrelid = p_table and a.attname = 'tenant_id' and not a.attisdropped;
    if v_attnum is null then
        raise exception using
            errcode = 'TN007',
            message = format('table %s has no tenant_id column', p_table);
    end if;
    if not exists (select 1 from pg_constraint as c where c.conrelid = p_table and c.contype = 'p') then
        v_problems := v_problems || format('%s has no primary key', p_table);
    end if;
    for v_con in
        select c.conname, c.contype, c.conkey, c.confrelid
        from pg_constraint as c
        where c.conrelid = p_table and c.contype in ('p', 'u', 'f')
        order by c.conname
    loop
        if v_con.contype = 'f' and not exists (
            select 1 from pg_attribute as a
            where a.attrelid = v_con.confrelid and a.attname = 'tenant_id' and not a.attisdropped
        ) then
            continue;  -- a reference to a platform table, not to another tenant table
        end if;
        if v_con.conkey[1] is distinct from v_attnum then
            v_problems := v_problems || format(
                'constraint %I (%s) does not start with tenant_id',
                v_con.conname,
                case v_con.contype when 'p' then 'primary key' when 'u' then 'unique' else 'foreign key' end
            );
        end if;
    end loop;
    if cardinality(v_problems) > 0 then
        raise exception using
            errcode = 'TN007',
            message = format('tenant table %s: %s', p_table, array_to_string(v_problems, '; ')),
            hint = 'tenant_id must lead the primary key, every unique constraint and every '
                'foreign key to another tenant table.';
    end if;
end
$$;

comment on function tenancy.assert_tenant_keys(regclass) is
'TN007 naming each constraint of a tenant table that does not start with tenant_id (primary '
'key, unique constraints, foreign keys to other tenant tables). Called by generated SQL.';

revoke all on function tenancy.assert_tenant_keys(regclass) from public;
