-- tenancy.record_erasure: erases a subject's personal values from the audit trail and records the erasure (ledger, requests, outbox).

-- p_results is tenancy.subject_rows(p_subject, true): per table oid the keys of the rows just
-- changed. For each registered table, the tenant's audit rows of those keys lose the table's
-- personal columns (tenancy.redact_audit keeps their seals verifying).
-- p_reapply NULL: a new ledger entry, erasure requests completed, subject.erased enqueued;
-- otherwise the ledger entry being applied again (tenancy.reapply_erasures), which must be an
-- erasure of this subject, is marked so.
-- SECURITY DEFINER (tenancy_owner) for the trail, the ledger and the outbox. The caller (owner,
-- admin or service context) may call it directly with results of its own making, so nothing in
-- p_results is trusted for the trail: the audit entity is the registered table's, and only keys
-- whose row this transaction updated or deleted (tenancy.erasure_audit_keys) are redacted, in
-- the current tenant's trail, in the personal columns the registry names; and, in tables whose
-- subject column holds the subject id, the rows of p_subject deleted earlier, by their DELETE in
-- the trail (tenancy.subject_audit_keys). A direct call is recorded as an erasure of that
-- subject all the same (ledger, subject.erased, audit row).
create or replace function tenancy.record_erasure(
    p_subject text, p_reason text, p_results jsonb, p_reapply uuid
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := tenancy.require_subject_rights('record_erasure', p_subject);
    v_hash text := tenancy.subject_hash(v_tenant, p_subject);
    v_part record;
    v_audit integer := 0;
    v_counts jsonb := '{}'::jsonb;
    v_total bigint := 0;
    v_id uuid;
    v_request uuid;
    v_dropped integer;
begin
    if jsonb_typeof(p_results) is distinct from 'object' then
        raise exception using
            errcode = '22023',
            message = format('erasure results must be a JSON object, got %s', coalesce(left(p_results::text, 50), 'NULL'));
    end if;
    if p_reapply is not null and not exists (
        select from tenancy.erasure_ledger as e
        where e.tenant_id = v_tenant and e.id = p_reapply and e.subject_hash = v_hash
    ) then
        raise exception using
            errcode = '22023',
            message = format('erasure ledger entry %s of this tenant is not an erasure of this subject', p_reapply);
    end if;
    for v_part in
        select
            d.pii,
            d.subject_direct,
            d.subject_column,
            p.value as result,
            format('%s.%s', n.nspname, c.relname) as table_name,
            '"' || replace(n.nspname, '"', '""') || '"."' || replace(c.relname, '"', '""') || '"' as entity
        from jsonb_each(p_results) as p
        inner join tenancy.personal_data as d on d.table_name = (p.key::oid)::regclass
        inner join pg_class as c on c.oid = d.table_name
        inner join pg_namespace as n on n.oid = c.relnamespace
    loop
        v_counts := v_counts || jsonb_build_object(v_part.table_name, (v_part.result ->> 'rows')::bigint);
        v_total := v_total + (v_part.result ->> 'rows')::bigint;
        if cardinality(v_part.pii) > 0 then
            v_audit := v_audit + tenancy.redact_audit_entities(
                v_tenant, v_part.entity,
                tenancy.erasure_audit_keys(
                    v_tenant, v_part.entity, array(select jsonb_array_elements_text(v_part.result -> 'keys'))
                )
                -- and, where the subject column holds the subject id, the subject's rows deleted earlier
                || case when v_part.subject_direct then
                    tenancy.subject_audit_keys(v_tenant, v_part.entity, v_part.subject_column, p_subject)
                else '{}'::text[] end,
                v_part.pii
            );
        end if;
    end loop;

    -- The subject's analytics events that have not left the outbox yet.
    with gone as (
        delete from tenancy.analytics_events as a
        where a.tenant_id = v_tenant and a.distinct_id = p_subject
        returning a.id
    )
    delete from tenancy.deliveries as d
    where d.tenant_id = v_tenant and d.event_id in (select g.id from gone as g);
    get diagnostics v_dropped = row_count;

    if p_reapply is not null then
        update tenancy.erasure_ledger as e
        set reapplied_at = now(), reapplied_rows = e.reapplied_rows + v_total
        where e.tenant_id = v_tenant and e.id = p_reapply;
        perform tenancy.log_audit(
            'subject.erasure_reapplied', 'data_subject', v_hash, null, null,
            jsonb_build_object('ledger_id', p_reapply, 'tables', v_counts, 'audit_rows', v_audit)
        );
        return jsonb_build_object(
            'ledger_id', p_reapply, 'subject_hash', v_hash, 'tables', v_counts, 'audit_rows', v_audit
        );
    end if;

    v_id := tenancy.uuid_v7();
    select r.id into v_request
    from tenancy.subject_requests as r
    where r.tenant_id = v_tenant and r.subject_hash = v_hash and r.status = 'open' and r.kind = 'erasure'
    order by r.received_at
    limit 1;
    insert into tenancy.erasure_ledger (
        tenant_id, id, subject_hash, reason, counts, audit_rows, request_id, erased_by
    )
    values (v_tenant, v_id, v_hash, p_reason, v_counts, v_audit, v_request, tenancy.current_user_id());
    update tenancy.subject_requests as r
    set status = 'completed', closed_at = now(), outcome = format('erased (ledger %s)', v_id)
    where r.tenant_id = v_tenant and r.subject_hash = v_hash and r.status = 'open' and r.kind = 'erasure';
    perform tenancy.enqueue_connector_event(
        v_tenant, 'subject', 'erased',
        jsonb_build_object(
            'subject', p_subject, 'subject_hash', v_hash, 'ledger_id', v_id, 'erased_at', now(),
            'tables', v_counts
        ),
        'subject:' || v_hash,
        tenancy.current_user_id()
    );
    perform tenancy.log_audit(
        'subject.erased', 'data_subject', v_hash, null, null,
        jsonb_build_object(
            'ledger_id', v_id, 'tables', v_counts, 'audit_rows', v_audit, 'reason', p_reason,
            'analytics_events_dropped', v_dropped
        )
    );
    return jsonb_build_object(
        'ledger_id', v_id, 'subject_hash', v_hash, 'tables', v_counts, 'audit_rows', v_audit
    );
end
$$;

comment on function tenancy.record_erasure(text, text, jsonb, uuid) is
'Completes an erasure (tenancy.erase_subject and tenancy.reapply_erasures call it): the current '
'tenant''s audit rows of the rows in p_results lose the personal columns of their table '
'(tenancy.redact_audit: seals still verify), the subject''s unsent analytics events are dropped, '
'and either a new ledger entry is written, open erasure requests completed and subject.erased '
'enqueued, or (p_reapply, an erasure of this subject: 22023 otherwise) that ledger entry is '
'marked applied again. Redacts only audit rows of the registered tables'' rows this transaction '
'updated or deleted. Recorded in the audit trail by the subject''s hash. Owners, admins and '
'service contexts.';

revoke all on function tenancy.record_erasure(text, text, jsonb, uuid) from public;
grant execute on function tenancy.record_erasure(text, text, jsonb, uuid) to tenancy_app, tenancy_service;
