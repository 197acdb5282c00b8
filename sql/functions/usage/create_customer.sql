-- tenancy.create_customer: a tenant's customer, by the tenant's external id (created or updated).

create or replace function tenancy.create_customer(
    p_external_id text, p_name text default null, p_metadata jsonb default '{}'
)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'manage customers');
    v_id uuid;
begin
    if p_metadata is null or jsonb_typeof(p_metadata) <> 'object' then
        raise exception using
            errcode = '22023',
            message = format('customer metadata must be a JSON object, got %s', coalesce(jsonb_typeof(p_metadata), 'NULL'));
    end if;
    if p_name is not null and length(p_name) > 200 then
        raise exception using
            errcode = '22023',
            message = format('customer name %L is longer than 200 characters', tenancy.token_excerpt(p_name, 100));
    end if;
    v_id := tenancy.usage_customer_id(v_tenant_id, p_external_id);
    update tenancy.customers as c
    set name = coalesce(p_name, c.name), metadata = c.metadata || p_metadata
    where c.tenant_id = v_tenant_id and c.id = v_id
        and (p_name is distinct from null and p_name is distinct from c.name or p_metadata <> '{}');
    return v_id;
end
$$;

comment on function tenancy.create_customer(text, text, jsonb) is
'For owners and admins of the current tenant (and service contexts): the id of customer '
'p_external_id (the tenant''s own id for it, 1 to 255 characters), created when new; a name and '
'metadata (merged) update it. TN001 without a context, 42501 for other roles, 22023 for a bad '
'value.';

revoke all on function tenancy.create_customer(text, text, jsonb) from public;
grant execute on function tenancy.create_customer(text, text, jsonb) to tenancy_app, tenancy_service;
