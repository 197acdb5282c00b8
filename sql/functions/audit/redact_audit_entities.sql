-- tenancy.redact_audit_entities: erases named values from one tenant's audit rows of given table rows (by entity type and key).
-- migrate: as-role tenancy_audit_owner

-- The audit rows of p_tenant_id whose entity_type is p_entity and whose entity_id is one of
-- p_keys go through tenancy.redact_audit with p_columns (their seals keep verifying). For
-- tenancy_owner only: tenancy.record_erasure calls it with a registered table's personal columns.
create or replace function tenancy.redact_audit_entities(
    p_tenant_id uuid, p_entity text, p_keys text[], p_columns text[]
)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ids bigint[];
begin
    if p_tenant_id is null or p_entity is null or p_keys is null then
        raise exception using
            errcode = '22023',
            message = format(
                'tenant %s, entity %s and keys %s must not be NULL',
                coalesce(p_tenant_id::text, 'NULL'), coalesce(p_entity, 'NULL'), coalesce(left(p_keys::text, 100), 'NULL')
            );
    end if;
    select array_agg(l.id order by l.id) into v_ids
    from tenancy.audit_logs as l
    where l.tenant_id = p_tenant_id and l.entity_type = p_entity and l.entity_id = any(p_keys);
    if v_ids is null then
        return 0;
    end if;
    return tenancy.redact_audit(v_ids, p_columns);
end
$$;

comment on function tenancy.redact_audit_entities(uuid, text, text[], text[]) is
'Erases the values of p_columns from the audit rows of tenant p_tenant_id about the rows with '
'entity type p_entity and primary keys p_keys (entity_id), with tenancy.redact_audit (seals keep '
'verifying). Returns the rows changed. For tenancy_owner: tenancy.record_erasure calls it.';

revoke all on function tenancy.redact_audit_entities(uuid, text, text[], text[]) from public;
grant execute on function tenancy.redact_audit_entities(uuid, text, text[], text[]) to tenancy_owner;
