-- tenancy.begin_support_access: audited, read-only, time-limited access of an operator to one tenant's rows.

-- The body is tenancy.open_support_access (see there for each step and why it holds).
create or replace function tenancy.begin_support_access(p_tenant_id uuid, p_reason text, p_minutes integer)
returns table (tenant_id uuid, role text, expires_at timestamptz, access_number bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_minutes is null or p_minutes not between 1 and 240 then
        raise exception using
            errcode = '22023',
            message = format(
                'support access of %s minutes is out of range: 1 to 240 minutes', coalesce(p_minutes::text, 'NULL')
            );
    end if;
    return query
    select o.tenant_id, o.role, o.expires_at, o.access_number
    from tenancy.open_support_access(p_tenant_id, p_reason, make_interval(mins => p_minutes)) as o;
end
$$;

comment on function tenancy.begin_support_access(uuid, text, integer) is
'For tenancy_admin: break-glass access to one tenant (active or suspended; 55000 for a deleted '
'one) for the rest of the '
'transaction and at most p_minutes (1 to 240): records a support_access.begun event (the reason, '
'1 to 500 characters, the expiry and a number that no rollback takes back) and an ACCESS entry '
'in the tenant''s audit trail (entity support_access, the number) that the tenant''s owners and '
'admins read, then sets a support context (every policy admits it; role support, no '
'user) and makes the transaction read-only, so every write is refused (25006). Reads end at the '
'expiry, with the transaction, or when it stops being read-only. Returns the tenant, the role, '
'the expiry and the access number.';

revoke all on function tenancy.begin_support_access(uuid, text, integer) from public;
grant execute on function tenancy.begin_support_access(uuid, text, integer) to tenancy_admin;
