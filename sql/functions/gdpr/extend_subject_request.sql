-- tenancy.extend_subject_request: extends an open request's deadline once, by two months, with a reason.

create or replace function tenancy.extend_subject_request(p_request_id uuid, p_reason text)
returns timestamptz
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := tenancy.require_subject_rights('extend_subject_request', 'request');
    v_request tenancy.subject_requests;
    v_due timestamptz;
begin
    if p_reason is null or btrim(p_reason) = '' or length(p_reason) > 500 then
        raise exception using
            errcode = '22023',
            message = format(
                'extension reason %s is not valid: 1 to 500 characters',
                coalesce(quote_literal(left(p_reason, 100)), 'NULL')
            );
    end if;
    select r.* into v_request
    from tenancy.subject_requests as r
    where r.tenant_id = v_tenant and r.id = p_request_id
    for update;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('subject request %s does not exist in this tenant', coalesce(p_request_id::text, 'NULL'));
    end if;
    if v_request.status <> 'open' or v_request.extended_at is not null or now() > v_request.due_at then
        raise exception using
            errcode = '55000',
            message = format(
                'subject request %s cannot be extended: %s', p_request_id,
                case
                    when v_request.status <> 'open' then 'it is ' || v_request.status
                    when v_request.extended_at is not null then 'it was extended already'
                    else format('it was due at %s', v_request.due_at)
                end
            );
    end if;
    update tenancy.subject_requests as r
    set due_at = r.received_at + interval '3 months', extended_at = now(), extension_reason = p_reason
    where r.tenant_id = v_tenant and r.id = p_request_id
    returning r.due_at into v_due;
    perform tenancy.log_audit(
        'subject_request.extended', 'subject_request', p_request_id::text, null, null,
        jsonb_build_object('due_at', v_due)
    );
    return v_due;
end
$$;

comment on function tenancy.extend_subject_request(uuid, text) is
'Extends an open data subject request once, before it is due, to three months after its receipt '
'(GDPR article 12(3)), with a reason; returns the new due time. P0002 for an unknown request, '
'55000 for one closed, already extended or overdue, 22023 for a bad reason. Owners, admins and '
'service contexts.';

revoke all on function tenancy.extend_subject_request(uuid, text) from public;
grant execute on function tenancy.extend_subject_request(uuid, text) to tenancy_app, tenancy_service;
