-- tenancy.move_checksums: per table, how many rows of a tenant it holds and an order-independent checksum of them.

-- Computed on both sides of a move after the fence: equal counts and checksums mean equal rows.
-- The checksum is the sum, as numeric, of each row's 64-bit hash (hash_record_extended: the
-- column types' own hash functions, several times cheaper than hashing the row's text), so row
-- order and physical layout do not matter. A table with a column type that has no extended hash
-- function (json, point, ...) is summed over the first 64 bits of the MD5 of each row's text
-- instead, with the settings that shape that text pinned; method says which. Runs as the
-- caller: a superuser (the move's connection) sees every row; nothing is granted.
create or replace function tenancy.move_checksums(p_tenant_id uuid)
returns table (table_name text, row_count bigint, checksum numeric, method text)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set datestyle = 'ISO, YMD'
set intervalstyle = 'postgres'
set extra_float_digits = '1'
set bytea_output = 'hex'
as $$
declare
    v_table record;
begin
    for v_table in select m.table_name, m.predicate, m.value from tenancy.move_tables(p_tenant_id) as m
        where m.table_name <> 'tenancy.move_markers' order by m.table_name loop
        table_name := v_table.table_name;
        begin
            execute format(
                'select pg_catalog.count(*), coalesce(pg_catalog.sum(pg_catalog.hash_record_extended(t, 0)), 0)'
                ' from %s as t where %s',
                v_table.table_name, v_table.predicate
            ) using v_table.value into row_count, checksum;
            method := 'hash';
        exception when undefined_function then
            execute format(
                'select pg_catalog.count(*), coalesce(pg_catalog.sum(('
                '''x'' operator(pg_catalog.||) pg_catalog.substr(pg_catalog.md5(t::pg_catalog.text), 1, 16)'
                ')::pg_catalog.bit(64)::pg_catalog.int8), 0) from %s as t where %s',
                v_table.table_name, v_table.predicate
            ) using v_table.value into row_count, checksum;
            method := 'md5';
        end;
        return next;
    end loop;
end
$$;

comment on function tenancy.move_checksums(uuid) is
'pgtenancy internal, for superusers (tenant moves): per table tenancy.move_tables carries, the '
'number of the tenant''s rows and the sum of their 64-bit hashes (order-independent; method hash, '
'or md5 of the row text for a table with a column type that has no extended hash). '
'Equal on source and destination after the fence: the rows arrived, no more, no fewer.';

revoke all on function tenancy.move_checksums(uuid) from public;
