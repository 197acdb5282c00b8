-- tenancy.export_subject: every row of the current tenant that belongs to a data subject, with its audit history, as versioned JSON.

-- Runs as the caller (owner, admin or service context): each table's generated export function
-- reads under row level security. The audit history is every audit row of the subject's rows
-- (by table and primary key), and, for tables whose subject column holds the subject id, of
-- rows of the subject deleted earlier (found by that column in the trail); security events are those whose user is the subject id. The
-- export is recorded in the audit trail (action subject.exported, entity the subject's hash)
-- and completes the subject's open access and portability requests.
create or replace function tenancy.export_subject(p_subject text)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := tenancy.require_subject_rights('export_subject', p_subject);
    v_parts jsonb := tenancy.subject_rows(p_subject, false);
    v_tables jsonb;
    v_counts jsonb;
    v_audit jsonb;
    v_recorded jsonb;
begin
    select
        coalesce(jsonb_object_agg(p.value ->> 'table', p.value -> 'rows'), '{}'),
        coalesce(jsonb_object_agg(p.value ->> 'table', jsonb_array_length(p.value -> 'rows')), '{}')
    into v_tables, v_counts
    from jsonb_each(v_parts) as p;

    select coalesce(jsonb_agg(
        jsonb_build_object(
            'id', l.id, 'logged_at', l.logged_at, 'action', l.action, 'table', k.tname,
            'key', l.entity_id::jsonb, 'old', l.old_data, 'new', l.new_data,
            'changed_columns', to_jsonb(l.changed_columns), 'actor_user_id', l.actor_user_id,
            'actor_role', l.actor_role, 'redacted', l.redacted_at is not null
        ) order by l.id
    ), '[]')
    into v_audit
    from (
        select p.value ->> 'entity' as entity, p.value ->> 'table' as tname, k.value as key
        from jsonb_each(v_parts) as p
        cross join lateral jsonb_array_elements_text(p.value -> 'keys') as k (value)
        union
        -- rows deleted before now, of tables whose subject column holds the subject id
        select x.entity, x.tname, h.entity_id
        from (
            select p.value ->> 'entity' as entity, p.value ->> 'table' as tname, d.subject_column
            from jsonb_each(v_parts) as p
            inner join tenancy.personal_data as d on d.table_name = (p.key::oid)::regclass
            where d.subject_direct
        ) as x
        inner join tenancy.audit_logs as h
            on h.tenant_id = v_tenant and h.entity_type = x.entity and h.entity_id is not null
            -- (index audit_logs_deletes_idx: the predicate word for word)
            and h.action = 'DELETE' and h.schema_name is not null
            and h.old_data ->> x.subject_column = p_subject
    ) as k
    inner join tenancy.audit_logs as l
        on l.tenant_id = v_tenant and l.entity_type = k.entity and l.entity_id = k.key;

    v_recorded := tenancy.record_subject_export(p_subject, v_counts, jsonb_array_length(v_audit));
    return jsonb_build_object(
        'format', 'pgtenancy.subject_export',
        'version', 1,
        'tenant_id', v_tenant,
        'subject', p_subject,
        'exported_at', now(),
        'tables', v_tables,
        'audit', v_audit,
        'security_events', v_recorded -> 'security_events'
    );
end
$$;

comment on function tenancy.export_subject(text) is
'Data portability and access (GDPR articles 15 and 20): every row of the current tenant that '
'belongs to the data subject p_subject in each table of tenancy.personal_data (following the '
'declared references), the audit history of those rows and the subject''s security events, as '
'JSON {"format": "pgtenancy.subject_export", "version": 1, tenant_id, subject, exported_at, '
'tables: {"schema.table": [rows]}, audit: [...], security_events: [...]}. Recorded in the audit '
'trail (subject.exported); completes open access and portability requests of the subject. For '
'owners, admins and service contexts (42501 otherwise, TN001 without a context, 22023 for a bad '
'subject id).';

revoke all on function tenancy.export_subject(text) from public;
grant execute on function tenancy.export_subject(text) to tenancy_app, tenancy_service;
