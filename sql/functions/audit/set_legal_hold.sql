-- tenancy.set_legal_hold: put a tenant's audit trail under legal hold, or release it.
-- migrate: as-role tenancy_audit_owner

-- A hold keeps tenancy.drop_audit_before from dropping any partition holding one of the tenant's
-- rows. Holding a held tenant again replaces the reason; releasing a tenant not held does
-- nothing. Every change is a security event (audit.legal_hold_set, audit.legal_hold_released)
-- with the tenant in its details, not in its tenant_id: the tenant's owners and admins read
-- their tenant's events, and a hold is not theirs to see. tenancy_auditor reads the events and
-- tenancy.audit_legal_holds.
-- The insert or delete waits while a tenancy.drop_audit_before is running (it locks the holds),
-- so a hold committed once the call returns is one every later drop sees.
create or replace function tenancy.set_legal_hold(p_tenant_id uuid, p_hold boolean, p_reason text default null)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_reason text := btrim(p_reason);
    v_previous text;
begin
    if p_hold is null then
        raise exception using
            errcode = '22023',
            message = 'legal hold NULL is not valid: true holds the tenant''s audit trail, false releases it';
    end if;
    if (p_hold or p_reason is not null)
        and (v_reason is null or v_reason = '' or length(v_reason) > 500 or v_reason ~ '[[:cntrl:]]') then
        raise exception using
            errcode = '22023',
            message = format(
                'invalid legal hold reason %s', coalesce(to_json(left(p_reason, 100))::text, 'NULL')
            ),
            hint = 'Say why (a case or matter reference, say) in 1 to 500 characters without control characters.';
    end if;
    if not exists (select from tenancy.tenants as t where t.id = p_tenant_id)
        and not exists (select from tenancy.audit_legal_holds as h where h.tenant_id = p_tenant_id) then
        raise exception using
            errcode = 'P0002',
            message = format('tenant %s does not exist', coalesce(p_tenant_id::text, 'NULL'));
    end if;
    if p_hold then
        select h.reason into v_previous
        from tenancy.audit_legal_holds as h
        where h.tenant_id = p_tenant_id
        for update;
        insert into tenancy.audit_legal_holds as h (tenant_id, reason)
        values (p_tenant_id, v_reason)
        on conflict (tenant_id) do update set reason = excluded.reason;
        perform tenancy.record_security_event(
            'audit.legal_hold_set', v_reason, null, null, null, null,
            jsonb_build_object(
                'tenant_id', p_tenant_id,
                'database_user', session_user::text,
                'previous_reason', v_previous
            )
        );
    else
        delete from tenancy.audit_legal_holds as h
        where h.tenant_id = p_tenant_id
        returning h.reason into v_previous;
        if found then
            perform tenancy.record_security_event(
                'audit.legal_hold_released', coalesce(v_reason, 'legal hold released'), null, null, null, null,
                jsonb_build_object(
                    'tenant_id', p_tenant_id,
                    'database_user', session_user::text,
                    'previous_reason', v_previous
                )
            );
        end if;
    end if;
end
$$;

comment on function tenancy.set_legal_hold(uuid, boolean, text) is
'For tenancy_admin: p_hold true puts the tenant''s audit trail under legal hold with a reason (1 to '
'500 characters, no control characters; a second hold replaces it), so tenancy.drop_audit_before '
'keeps every partition holding its rows (TN017); false releases it (nothing to do when not held). '
'Recorded as security events audit.legal_hold_set / audit.legal_hold_released (the tenant in '
'details). 22023 for a bad reason or NULL p_hold, P0002 for an unknown tenant.';

revoke all on function tenancy.set_legal_hold(uuid, boolean, text) from public;
grant execute on function tenancy.set_legal_hold(uuid, boolean, text) to tenancy_admin;
