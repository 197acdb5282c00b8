-- tenancy.export_seal: a tenant's latest audit seal, for anchoring outside the database.
-- migrate: as-role tenancy_audit_owner

-- A superuser can rewrite the whole trail and recompute every seal; what they cannot rewrite is
-- a copy kept elsewhere. Platforms store this value (object storage with retention, a ticket,
-- a transparency log, another database) after each sealing round and later pass it to
-- tenancy.verify_audit(tenant, anchor), which checks that the seal it names still has that head
-- and row count.
create or replace function tenancy.export_seal(p_tenant_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_seal jsonb;
begin
    select jsonb_build_object(
        'tenant_id', s.tenant_id,
        'seq', s.seq,
        'head', encode(s.head, 'hex'),
        'total_rows', s.total_rows,
        'month', to_char(s.month, 'YYYY-MM'),
        'sealed_at', s.sealed_at,
        'frontier', (select st.frontier from tenancy.audit_seal_state as st)
    )
    into v_seal
    from tenancy.audit_seals as s
    where s.tenant_id = p_tenant_id or (p_tenant_id is null and s.tenant_id is null)
    order by s.tenant_id, s.seq desc
    limit 1;
    if v_seal is null then
        raise exception using
            errcode = 'P0002',
            message = format(
                'no audit seal for %s yet', coalesce('tenant ' || p_tenant_id::text, 'the rows of no tenant')
            ),
            hint = 'tenancy.seal_audit() (pgtenancy audit seal) seals the rows of ended transactions.';
    end if;
    return v_seal;
end
$$;

comment on function tenancy.export_seal(uuid) is
'The latest seal of a tenant''s audit chain (NULL: the rows of no tenant) as JSON: tenant_id, '
'seq, head (hex), total_rows, month, sealed_at and the sealing frontier. Store it outside the '
'database and pass it to tenancy.verify_audit later: a rewritten trail no longer matches it. '
'P0002 when nothing of the tenant is sealed yet.';

revoke all on function tenancy.export_seal(uuid) from public;
grant execute on function tenancy.export_seal(uuid) to tenancy_auditor, tenancy_admin, tenancy_service;
