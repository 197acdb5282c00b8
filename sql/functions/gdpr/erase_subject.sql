-- tenancy.erase_subject: erases a data subject of the current tenant everywhere pgtenancy knows of, in one transaction.

-- Runs as the caller (owner, admin or service context): each table's generated erasure
-- function anonymizes or deletes the subject's rows under row level security (a row the caller
-- sees but may not change is an error, not a row left behind); tenancy.record_erasure then
-- erases the personal values of those rows from the audit trail (seals keep verifying), writes
-- the ledger, completes erasure requests and enqueues subject.erased.
create or replace function tenancy.erase_subject(p_subject text, p_reason text)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    perform tenancy.require_subject_rights('erase_subject', p_subject);
    if p_reason is null or btrim(p_reason) = '' or length(p_reason) > 500 then
        raise exception using
            errcode = '22023',
            message = format(
                'erasure reason %s is not valid: 1 to 500 characters',
                coalesce(quote_literal(left(p_reason, 100)), 'NULL')
            );
    end if;
    return tenancy.record_erasure(p_subject, p_reason, tenancy.subject_rows(p_subject, true), null);
end
$$;

comment on function tenancy.erase_subject(text, text) is
'Right to erasure (GDPR article 17): in one transaction, anonymizes or deletes (per the spec''s '
'erase) the rows of the data subject p_subject in every table of tenancy.personal_data, erases '
'their personal values from the audit trail so tenancy.verify_audit still passes, drops the '
'subject''s analytics events not yet sent, writes the erasure ledger, completes open erasure '
'requests and enqueues the connector event subject.erased. Returns {ledger_id, subject_hash, '
'tables, audit_rows}. For owners, admins and service contexts (42501 otherwise, also when the '
'role may read but not change a row; TN001 without a context; 22023 for a bad subject or reason).';

revoke all on function tenancy.erase_subject(text, text) from public;
grant execute on function tenancy.erase_subject(text, text) to tenancy_app, tenancy_service;
