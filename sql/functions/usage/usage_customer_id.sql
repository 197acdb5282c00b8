-- tenancy.usage_customer_id: the id of a tenant's customer by external id, created on first use.

create or replace function tenancy.usage_customer_id(p_tenant_id uuid, p_external_id text)
returns uuid
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_id uuid;
begin
    select c.id into v_id
    from tenancy.customers as c
    where c.tenant_id = p_tenant_id and c.external_id = p_external_id;
    if found then
        return v_id;
    end if;
    if p_external_id is null or length(p_external_id) not between 1 and 255 then
        raise exception using
            errcode = '22023',
            message = format('invalid customer id %L: 1 to 255 characters', tenancy.token_excerpt(p_external_id, 100));
    end if;
    insert into tenancy.customers as c (tenant_id, external_id)
    values (p_tenant_id, p_external_id)
    on conflict (tenant_id, external_id) do nothing
    returning c.id into v_id;
    if v_id is null then
        -- a concurrent first use committed meanwhile (READ COMMITTED: the next statement sees it)
        select c.id into strict v_id
        from tenancy.customers as c
        where c.tenant_id = p_tenant_id and c.external_id = p_external_id;
    end if;
    return v_id;
end
$$;

comment on function tenancy.usage_customer_id(uuid, text) is
'pgtenancy internal: the id of customer p_external_id of tenant p_tenant_id, inserted when new '
'(22023 for an id that is not 1 to 255 characters).';

revoke all on function tenancy.usage_customer_id(uuid, text) from public;
