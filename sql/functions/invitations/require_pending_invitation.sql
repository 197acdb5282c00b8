-- tenancy.require_pending_invitation: TN014 unless the invitation is pending (not accepted, not revoked, not expired).

create or replace function tenancy.require_pending_invitation(p_invitation tenancy.invitations)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_invitation.accepted_at is not null then
        raise exception using
            errcode = 'TN014',
            message = format(
                'invitation %s is not valid: it was accepted at %s', p_invitation.id, p_invitation.accepted_at
            ),
            hint = 'An invitation is accepted once; ask for a new one.';
    end if;
    if p_invitation.revoked_at is not null then
        raise exception using
            errcode = 'TN014',
            message = format(
                'invitation %s is not valid: it was revoked at %s', p_invitation.id, p_invitation.revoked_at
            ),
            hint = 'Ask for a new invitation.';
    end if;
    if p_invitation.expires_at <= clock_timestamp() then
        raise exception using
            errcode = 'TN014',
            message = format(
                'invitation %s is not valid: it expired at %s', p_invitation.id, p_invitation.expires_at
            ),
            hint = 'Ask for a new invitation.';
    end if;
end
$$;

comment on function tenancy.require_pending_invitation(tenancy.invitations) is
'pgtenancy internal: TN014 naming the invitation and why when it was accepted, revoked or has '
'expired (by the clock, not the transaction''s start).';

revoke all on function tenancy.require_pending_invitation(tenancy.invitations) from public;
