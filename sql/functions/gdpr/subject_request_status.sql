-- tenancy.subject_request_status: the current tenant's data subject requests with their statutory clock.

create or replace view tenancy.subject_request_status
with (security_invoker = true)
as
select
    r.id,
    r.kind,
    r.subject_hash,
    r.status,
    r.received_at,
    r.due_at,
    r.extended_at is not null as extended,
    r.extension_reason,
    r.closed_at,
    r.outcome,
    pg_catalog.ceil(
        pg_catalog.date_part('epoch', r.due_at operator (pg_catalog.-) pg_catalog.now()) operator (pg_catalog./) 86400
    )::integer as days_left,
    r.status operator (pg_catalog.=) 'open' and pg_catalog.now() operator (pg_catalog.>) r.due_at as overdue
from tenancy.subject_requests as r;

comment on view tenancy.subject_request_status is
'The current tenant''s data subject requests (row level security of tenancy.subject_requests: '
'owners and admins): status, due time, whether extended, days left (negative when late) and '
'overdue (open past its due time).';

revoke all on tenancy.subject_request_status from public;
grant select on tenancy.subject_request_status to tenancy_app, tenancy_service;
