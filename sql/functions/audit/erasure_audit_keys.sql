-- tenancy.erasure_audit_keys: of some rows' audit keys, those whose row the current transaction updated or deleted, by one tenant's audit trail.
-- migrate: as-role tenancy_audit_owner

-- tenancy.record_erasure (SECURITY DEFINER, tenancy_owner, which cannot read the trail) redacts
-- the audit rows of these keys only: its caller may hand it keys of its own making, while an
-- erasure changes every row it erases in the transaction that records it (an UPDATE or DELETE
-- audit row carrying the transaction's txid). For tenancy_owner only.
create or replace function tenancy.erasure_audit_keys(p_tenant_id uuid, p_entity text, p_keys text[])
returns text[]
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
select coalesce(array_agg(distinct k.key order by k.key), '{}')
from unnest(p_keys) as k (key)
where exists (
    select from tenancy.audit_logs as l
    where
        l.tenant_id = p_tenant_id
        and l.entity_type = p_entity
        and l.entity_id = k.key
        and l.txid = pg_current_xact_id()::text::bigint
        and l.action = any(array['UPDATE', 'DELETE'])
)
$$;

comment on function tenancy.erasure_audit_keys(uuid, text, text[]) is
'The keys of p_keys (audit entity_id values of entity type p_entity) whose row the current '
'transaction updated or deleted, by tenant p_tenant_id''s audit trail: the rows an erasure just '
'changed. tenancy.record_erasure redacts the audit rows of these keys only. For tenancy_owner.';

revoke all on function tenancy.erasure_audit_keys(uuid, text, text[]) from public;
grant execute on function tenancy.erasure_audit_keys(uuid, text, text[]) to tenancy_owner;
