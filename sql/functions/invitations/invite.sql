-- tenancy.invite: an owner or admin invites an e-mail address to the current tenant with a role; returns the token once.

-- The token is pgti_ and 256 random bits in base64url (tenancy.random_token); only its SHA-256 is
-- stored (tenancy.invitation_tokens), so it is returned here once and never again: the
-- application sends it to the address (a link holding it) and forgets it. Each call makes a new
-- invitation, also for an address with one pending: to resend, revoke the old one and invite again.
create or replace function tenancy.invite(
    p_email text,
    p_role text,
    p_ttl interval default interval '7 days',
    out id uuid,
    out token text,
    out expires_at timestamptz
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_caller record := tenancy.require_member_manager('invitations');
    v_email tenancy.email_address;
    v_role tenancy.member_role;
begin
    perform tenancy.validate_member_role(p_role);
    v_role := p_role::tenancy.member_role;
    if v_role = 'owner' and v_caller.role = 'admin' then
        raise exception using
            errcode = '42501',
            message = format('an admin cannot invite %L as an owner of tenant %s', p_email, v_caller.tenant_id),
            hint = 'Owners are invited by owners.';
    end if;
    v_email := tenancy.checked_email(p_email);
    if p_ttl is null or p_ttl < interval '5 minutes' or p_ttl > interval '30 days' then
        raise exception using
            errcode = '22023',
            message = format(
                'invitation lifetime %s is out of range: 5 minutes to 30 days', coalesce(p_ttl::text, 'NULL')
            );
    end if;
    token := tenancy.random_token('pgti_');
    insert into tenancy.invitations as i (tenant_id, email, role, invited_by, expires_at)
    values (v_caller.tenant_id, v_email, v_role, v_caller.user_id, now() + p_ttl)
    returning i.id, i.expires_at into id, expires_at;
    insert into tenancy.invitation_tokens (token_hash, tenant_id, invitation_id)
    values (tenancy.secret_hash(token), v_caller.tenant_id, id);
    perform tenancy.record_security_event(
        'invitation.created',
        format('invitation %s of %L as %s to tenant %s, until %s', id, v_email, v_role, v_caller.tenant_id, expires_at),
        v_caller.tenant_id,
        v_caller.user_id,
        null,
        null,
        jsonb_build_object('invitation_id', id, 'email', v_email, 'role', v_role, 'expires_at', expires_at)
    );
end
$$;

comment on function tenancy.invite(text, text, interval) is
'Owners and admins of the current tenant (tenancy_app): invite an e-mail address with a role '
'(admins cannot invite owners: 42501) for p_ttl (5 minutes to 30 days, 7 days by default). '
'Returns the invitation id, its single-use token (pgti_ and 43 base64url characters; returned '
'once, stored only as its SHA-256) and its expiry; records an invitation.created security event. '
'22023 for an invalid address, role or lifetime; TN001 without a context.';

revoke all on function tenancy.invite(text, text, interval) from public;
grant execute on function tenancy.invite(text, text, interval) to tenancy_app;
