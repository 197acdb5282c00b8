-- tenancy.record_subject_export: records a subject export in the audit trail, completes its requests and returns its security events.

create or replace function tenancy.record_subject_export(p_subject text, p_counts jsonb, p_audit_rows integer)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := tenancy.require_subject_rights('record_subject_export', p_subject);
    v_hash text := tenancy.subject_hash(v_tenant, p_subject);
    v_events jsonb;
begin
    select coalesce(jsonb_agg(
        jsonb_build_object(
            'id', e.id, 'occurred_at', e.occurred_at, 'kind', e.kind, 'host', e.host,
            'reason', e.reason, 'details', e.details
        ) order by e.id
    ), '[]')
    into v_events
    from tenancy.security_events as e
    where e.tenant_id = v_tenant and e.user_id = p_subject;

    update tenancy.subject_requests as r
    set status = 'completed', closed_at = now(), outcome = 'exported'
    where r.tenant_id = v_tenant and r.subject_hash = v_hash and r.status = 'open'
        and r.kind = any(array['access', 'portability']);

    perform tenancy.log_audit(
        'subject.exported', 'data_subject', v_hash, null, null,
        jsonb_build_object(
            'tables', coalesce(p_counts, '{}'), 'audit_rows', p_audit_rows,
            'security_events', jsonb_array_length(v_events)
        )
    );
    return jsonb_build_object('subject_hash', v_hash, 'security_events', v_events);
end
$$;

comment on function tenancy.record_subject_export(text, jsonb, integer) is
'Records an export of a data subject (tenancy.export_subject calls it): an audit entry '
'subject.exported naming the subject by its hash with the row counts, open access and '
'portability requests of the subject completed; returns the subject''s security events. Owners, '
'admins and service contexts.';

revoke all on function tenancy.record_subject_export(text, jsonb, integer) from public;
grant execute on function tenancy.record_subject_export(text, jsonb, integer) to tenancy_app, tenancy_service;
