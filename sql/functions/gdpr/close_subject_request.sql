-- tenancy.close_subject_request: closes an open data subject request as completed or refused.

create or replace function tenancy.close_subject_request(p_request_id uuid, p_status text, p_outcome text)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := tenancy.require_subject_rights('close_subject_request', 'request');
    v_status text;
begin
    if p_status is null or p_status <> all(array['completed', 'refused']) then
        raise exception using
            errcode = '22023',
            message = format('request status %s is not valid: completed or refused', coalesce(quote_literal(left(p_status, 50)), 'NULL'));
    end if;
    if p_outcome is null or btrim(p_outcome) = '' or length(p_outcome) > 500 then
        raise exception using
            errcode = '22023',
            message = format('request outcome %s is not valid: 1 to 500 characters', coalesce(quote_literal(left(p_outcome, 100)), 'NULL'));
    end if;
    select r.status into v_status
    from tenancy.subject_requests as r
    where r.tenant_id = v_tenant and r.id = p_request_id
    for update;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('subject request %s does not exist in this tenant', coalesce(p_request_id::text, 'NULL'));
    end if;
    if v_status <> 'open' then
        raise exception using
            errcode = '55000',
            message = format('subject request %s is %s already', p_request_id, v_status);
    end if;
    update tenancy.subject_requests as r
    set status = p_status, closed_at = now(), outcome = p_outcome
    where r.tenant_id = v_tenant and r.id = p_request_id;
    perform tenancy.log_audit(
        'subject_request.closed', 'subject_request', p_request_id::text, null, null,
        jsonb_build_object('status', p_status)
    );
end
$$;

comment on function tenancy.close_subject_request(uuid, text, text) is
'Closes an open data subject request as completed or refused, with its outcome. P0002 for an '
'unknown request, 55000 for one already closed, 22023 for a bad status or outcome. Owners, '
'admins and service contexts.';

revoke all on function tenancy.close_subject_request(uuid, text, text) from public;
grant execute on function tenancy.close_subject_request(uuid, text, text) to tenancy_app, tenancy_service;
