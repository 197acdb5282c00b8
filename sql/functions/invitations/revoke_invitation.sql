-- tenancy.revoke_invitation: an owner or admin revokes a pending invitation of the current tenant.

-- Revoking a revoked invitation changes nothing (and records nothing); an accepted one cannot be
-- revoked (55000: remove the member instead). An expired one can: it says so in the list.
create or replace function tenancy.revoke_invitation(p_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_caller record := tenancy.require_member_manager('invitations');
    v_invitation tenancy.invitations;
begin
    select i.* into v_invitation
    from tenancy.invitations as i
    where i.tenant_id = v_caller.tenant_id and i.id = p_id
    for update;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format(
                'invitation %s is not an invitation of tenant %s', coalesce(p_id::text, 'NULL'), v_caller.tenant_id
            );
    end if;
    if v_caller.role = 'admin' and v_invitation.role = 'owner' then
        raise exception using
            errcode = '42501',
            message = format('an admin cannot revoke invitation %s: it invites an owner', p_id),
            hint = 'Owners are invited, and their invitations revoked, by owners.';
    end if;
    if v_invitation.accepted_at is not null then
        raise exception using
            errcode = '55000',
            message = format('invitation %s was accepted at %s and cannot be revoked', p_id, v_invitation.accepted_at),
            hint = format('Remove the member with tenancy.remove_member(%L).', v_invitation.accepted_by);
    end if;
    if v_invitation.revoked_at is not null then
        return;
    end if;
    update tenancy.invitations as i
    set revoked_at = clock_timestamp(), revoked_by = v_caller.user_id
    where i.tenant_id = v_caller.tenant_id and i.id = p_id;
    perform tenancy.record_security_event(
        'invitation.revoked',
        format('invitation %s of %L as %s to tenant %s revoked', p_id, v_invitation.email, v_invitation.role, v_caller.tenant_id),
        v_caller.tenant_id,
        v_caller.user_id,
        null,
        null,
        jsonb_build_object('invitation_id', p_id, 'email', v_invitation.email, 'role', v_invitation.role)
    );
end
$$;

comment on function tenancy.revoke_invitation(uuid) is
'Owners and admins of the current tenant (tenancy_app): revoke one of its invitations, which can '
'then no longer be accepted (TN014); records an invitation.revoked security event. Admins cannot '
'revoke an owner''s invitation (42501); P0002 when the id is not an invitation of the tenant; '
'55000 when it was accepted; revoking it again changes nothing.';

revoke all on function tenancy.revoke_invitation(uuid) from public;
grant execute on function tenancy.revoke_invitation(uuid) to tenancy_app;
