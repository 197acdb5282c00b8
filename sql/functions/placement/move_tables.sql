-- tenancy.move_tables: the tables a tenant move carries, with how each selects the tenant's rows.

-- Every tenant table (tenancy.offboarding_tables: roots, with the tenant column's predicate on $1)
-- and the platform tables that hold rows of one tenant and travel with it: its hostnames
-- (tenancy.domain_claims: also kept on the source, which may be the router's directory), the
-- hashes of its API keys and invitation tokens, and its connector secrets (no tenant column: copied
-- at the fence rather than replicated). Not carried: the audit trail, its seals and the security
-- events (they stay on the source, which keeps them as offboarding does: the move report links
-- the two trails), and the tenant's own token issuers (a move refuses a tenant that has any).
-- replicated: whether logical replication (a row filter on the tenant column) carries the table;
-- filter: the row filter for the tenant's value, ready to paste after WHERE.
create or replace function tenancy.move_tables(p_tenant_id uuid)
returns table (
    table_name text,
    tenant_column name,
    predicate text,
    value text,
    replicated boolean,
    filter text,
    level integer
)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select
        o.table_name,
        o.tenant_column,
        o.predicate,
        tenancy.offboarding_value(t.id, t.key, o.value_kind),
        true,
        format(
            '%I = %L::%s', o.tenant_column, tenancy.offboarding_value(t.id, t.key, o.value_kind),
            case o.value_kind
                when 'id' then 'pg_catalog.uuid' when 'int8' then 'pg_catalog.int8'
                when 'int4' then 'pg_catalog.int4' else 'pg_catalog.text'
            end
        ),
        o.level
    from tenancy.offboarding_tables() as o
    cross join tenancy.tenants as t
    where t.id = p_tenant_id and tenancy.offboarding_value(t.id, t.key, o.value_kind) is not null
    union all
    select
        p.table_name, p.tenant_column, p.predicate, p_tenant_id::text, p.replicated,
        case when p.replicated then format('tenant_id = %L::pg_catalog.uuid', p_tenant_id) end,
        0
    from (values
        ('tenancy.domain_claims', 'tenant_id'::name, 't.tenant_id = $1::pg_catalog.uuid', true),
        ('tenancy.api_key_secrets', 'tenant_id'::name, 't.tenant_id = $1::pg_catalog.uuid', true),
        ('tenancy.invitation_tokens', 'tenant_id'::name, 't.tenant_id = $1::pg_catalog.uuid', true),
        ('tenancy.move_markers', 'tenant_id'::name, 't.tenant_id = $1::pg_catalog.uuid', true),
        (
            'tenancy.connector_secrets', null::name,
            't.endpoint_id in (select e.id from tenancy.connector_endpoints as e'
            ' where e.tenant_id = $1::pg_catalog.uuid)',
            false
        )
    ) as p (table_name, tenant_column, predicate, replicated)
    where exists (select from tenancy.tenants as t where t.id = p_tenant_id)
$$;

comment on function tenancy.move_tables(uuid) is
'pgtenancy internal: the tables a move of tenant p_tenant_id carries: every tenant table and the '
'platform tables with its rows (hostnames, API key and invitation token hashes, connector '
'secrets, move markers), each with its predicate on $1 (the tenant column''s value, column '
'value), whether logical replication carries it and its row filter.';

revoke all on function tenancy.move_tables(uuid) from public;
