-- tenancy_test.quoted_name: "schema"."name" of a relation, every part quoted, for test descriptions.

create or replace function tenancy_test.quoted_name(p_relation regclass)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select '"' || replace(n.nspname, '"', '""') || '"."' || replace(c.relname, '"', '""') || '"'
    from pg_catalog.pg_class as c
    inner join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
    where c.oid = p_relation
$$;

comment on function tenancy_test.quoted_name(regclass) is
'"schema"."name" of a relation with both parts always quoted (as generated files write them).';
