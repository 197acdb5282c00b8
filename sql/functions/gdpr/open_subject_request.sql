-- tenancy.open_subject_request: logs a data subject request of the current tenant and starts its statutory clock.

create or replace function tenancy.open_subject_request(
    p_kind text, p_subject text, p_received_at timestamptz default null, p_note text default null
)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := tenancy.require_subject_rights('open_subject_request', p_subject);
    v_received timestamptz := coalesce(p_received_at, now());
    v_id uuid := tenancy.uuid_v7();
begin
    if p_kind is null or p_kind <> all(array['access', 'portability', 'erasure', 'rectification', 'restriction', 'objection']) then
        raise exception using
            errcode = '22023',
            message = format(
                'request kind %s is not valid: access, portability, erasure, rectification, restriction or objection',
                coalesce(quote_literal(left(p_kind, 50)), 'NULL')
            );
    end if;
    if v_received > now() + interval '5 minutes' then
        raise exception using
            errcode = '22023',
            message = format('request received_at %s is in the future', v_received);
    end if;
    if length(p_note) > 2000 then
        raise exception using
            errcode = '22023',
            message = format('request note of %s characters is too long: at most 2000', length(p_note));
    end if;
    insert into tenancy.subject_requests (
        tenant_id, id, kind, subject_hash, received_at, due_at, note, created_by
    )
    values (
        v_tenant, v_id, p_kind, tenancy.subject_hash(v_tenant, p_subject), v_received,
        v_received + interval '1 month', p_note, tenancy.current_user_id()
    );
    perform tenancy.log_audit(
        'subject_request.opened', 'subject_request', v_id::text, null, null,
        jsonb_build_object('kind', p_kind, 'received_at', v_received)
    );
    return v_id;
end
$$;

comment on function tenancy.open_subject_request(text, text, timestamptz, text) is
'Logs a data subject request (kind access, portability, erasure, rectification, restriction or '
'objection) received at p_received_at (default now, never in the future): due one month later. '
'Keeps the subject''s hash, not its id. Returns the request id. Owners, admins and service '
'contexts; 22023 for a bad kind, time or note.';

revoke all on function tenancy.open_subject_request(text, text, timestamptz, text) from public;
grant execute on function tenancy.open_subject_request(text, text, timestamptz, text) to tenancy_app, tenancy_service;
