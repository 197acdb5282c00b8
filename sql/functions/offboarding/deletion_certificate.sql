-- tenancy.deletion_certificate: the deletion certificate of an offboarded tenant.

create or replace function tenancy.deletion_certificate(p_tenant_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_record tenancy.tenant_offboardings;
begin
    select o.* into v_record from tenancy.tenant_offboardings as o where o.tenant_id = p_tenant_id;
    if not found then
        if exists (select from tenancy.tenants as t where t.id = p_tenant_id) then
            raise exception using
                errcode = 'P0002',
                message = format('tenant %s has no deletion certificate: it was never offboarded', p_tenant_id);
        end if;
        raise exception using
            errcode = 'P0002',
            message = format('tenant %s does not exist', coalesce(p_tenant_id::text, 'NULL'));
    end if;
    if v_record.certificate is null then
        raise exception using
            errcode = '55000',
            message = format(
                'tenant %s has no deletion certificate yet: its offboarding is under way (%s step(s) so far, '
                'the last at %s)', p_tenant_id, v_record.steps, v_record.last_step_at
            ),
            hint = 'tenancy.offboard_tenant (or CALL tenancy.offboard, pgtenancy tenant offboard) finishes it.';
    end if;
    return v_record.certificate;
end
$$;

comment on function tenancy.deletion_certificate(uuid) is
'For tenancy_admin and tenancy_auditor: the deletion certificate of offboarded tenant p_tenant_id '
'(tenancy.offboard_tenant): format, tenant id and slug, reason, requested_by and finished_by '
'(logins), started_at and finished_at (UTC), steps, per tenant table the rows before, deleted and '
'after, their totals, the platform rows deleted, what was kept; sha256, the SHA-256 of '
'tenancy.canonical_json of all that; audit_id, the tenant.offboarded row of its audit trail '
'holding it. tenancy.verify_deletion_certificate checks it. P0002 for an unknown tenant or one '
'never offboarded; 55000 while its offboarding is under way.';

revoke all on function tenancy.deletion_certificate(uuid) from public;
grant execute on function tenancy.deletion_certificate(uuid) to tenancy_admin, tenancy_auditor;
