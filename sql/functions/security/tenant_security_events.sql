-- tenancy.tenant_security_events: the current tenant's security events, for its owners and admins.

create or replace function tenancy.tenant_security_events(
    p_since timestamptz default null, p_kind text default null, p_limit integer default 1000
)
returns setof tenancy.security_events
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.context_tenant_id(array['owner', 'admin']);
begin
    if v_tenant_id is null then
        if tenancy.current_tenant_id() is null then
            raise exception using
                errcode = 'TN001',
                message = 'no tenant context: call tenancy.authenticate() or tenancy.set_context() first';
        end if;
        raise exception using
            errcode = '42501',
            message = format(
                'role %s of tenant %s cannot read security events', tenancy.current_member_role(), tenancy.current_tenant_id()
            ),
            hint = 'Only owners and admins read their tenant''s security events.';
    end if;
    if p_limit not between 1 and 100000 then
        raise exception using
            errcode = '22023',
            message = format('limit %s is out of range: 1 to 100000 events', p_limit);
    end if;
    return query
    select e.*
    from tenancy.security_events as e
    where e.tenant_id = v_tenant_id
        and (p_since is null or e.occurred_at >= p_since)
        and (p_kind is null or e.kind = p_kind)
    order by e.occurred_at desc, e.id desc
    limit coalesce(p_limit, 1000);
end
$$;

comment on function tenancy.tenant_security_events(timestamptz, text, integer) is
'For owners and admins of the current tenant (tenancy_app): its security events, newest first, '
'optionally since a time and of one kind (at most p_limit, 1000 by default). TN001 without a '
'context, 42501 for other roles.';

revoke all on function tenancy.tenant_security_events(timestamptz, text, integer) from public;
grant execute on function tenancy.tenant_security_events(timestamptz, text, integer) to tenancy_app, tenancy_service;
