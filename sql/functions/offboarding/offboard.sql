-- tenancy.offboard: offboard a tenant to the end, committing after every step, then seal the audit trail.

-- CALL it outside a transaction block (a procedure that commits cannot run inside one: 2D000).
-- It runs as the caller (a procedure with transaction control can be neither SECURITY DEFINER
-- nor carry a SET clause), so every name in it is schema-qualified, and the caller needs what
-- it calls: tenancy.offboard_tenant (tenancy_admin) and tenancy.seal_audit. Each step is its own
-- transaction: a crash or a cancel loses at most the step under way, and CALL again resumes.
-- Progress goes out as NOTICEs; while transactions that may hold an old context of the tenant
-- run, it polls every second. Once done, it seals the audit trail once, so the certificate's
-- entry is chained (tenancy.verify_deletion_certificate) unless an older transaction still
-- holds the sealing frontier back; tenancy.deletion_certificate returns the certificate.
create or replace procedure tenancy.offboard(p_tenant_id uuid, p_reason text, p_batch_rows integer default 10000)
language plpgsql
as $$
declare
    v_step pg_catalog.jsonb;
begin
    loop
        v_step := tenancy.offboard_tenant(p_tenant_id, p_reason, p_batch_rows);
        commit;
        exit when (v_step operator(pg_catalog.->>) 'done')::pg_catalog.bool;
        if v_step operator(pg_catalog.?) 'waiting_for' then
            raise notice 'offboarding tenant %: waiting for transactions begun before its suspension (pids %)',
                p_tenant_id, v_step operator(pg_catalog.->) 'waiting_for';
            perform pg_catalog.pg_sleep(1);
        else
            raise notice 'offboarding tenant %: step %: % row(s) deleted, % of %',
                p_tenant_id, v_step operator(pg_catalog.->>) 'step', v_step operator(pg_catalog.->>) 'deleted',
                v_step operator(pg_catalog.->>) 'rows_deleted', v_step operator(pg_catalog.->>) 'rows_before';
        end if;
    end loop;
    perform tenancy.seal_audit();
    commit;
    raise notice 'tenant % offboarded: deletion certificate sha256 %, audit row %',
        p_tenant_id, v_step operator(pg_catalog.->>) 'sha256', v_step operator(pg_catalog.->>) 'audit_id';
end
$$;

comment on procedure tenancy.offboard(uuid, text, integer) is  -- noqa: LT01
'For tenancy_admin: CALL tenancy.offboard(tenant, reason, batch rows) (outside a transaction block) '
'offboards the tenant to the end: tenancy.offboard_tenant step after step, each committed, with '
'NOTICEs of progress, then tenancy.seal_audit. Resumes an offboarding a crash or a cancel '
'interrupted; for an offboarded tenant it only seals. The certificate: tenancy.deletion_certificate.';

revoke all on procedure tenancy.offboard(uuid, text, integer) from public;
grant execute on procedure tenancy.offboard(uuid, text, integer) to tenancy_admin;
