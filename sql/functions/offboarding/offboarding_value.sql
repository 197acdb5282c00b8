-- tenancy.offboarding_value: what a tenant table's tenant column holds for one tenant, as text, or NULL when it cannot hold it.

create or replace function tenancy.offboarding_value(p_tenant_id uuid, p_key text, p_kind text)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    select case p_kind
        when 'id' then p_tenant_id::text
        when 'int8' then tenancy.tenant_key_int8(p_key)::text
        when 'int4' then tenancy.tenant_key_int4(p_key)::text
        else p_key
    end
$$;

comment on function tenancy.offboarding_value(uuid, text, text) is
'pgtenancy internal: the value of a tenant column of kind p_kind (tenancy.offboarding_tables: '
'id, int8, int4, key) for the tenant p_tenant_id whose key is p_key, as text; NULL when the '
'column cannot hold the tenant''s key (none, or not a number of the column''s range): the tenant '
'has no rows there.';

revoke all on function tenancy.offboarding_value(uuid, text, text) from public;
