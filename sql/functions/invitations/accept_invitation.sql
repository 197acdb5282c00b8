-- tenancy.accept_invitation: the user of a verified token becomes a member of the invitation's tenant with its role, once.

-- The invitation names the tenant: no context is needed, and none is set (the caller
-- authenticates afterwards as the new member, in the same transaction if it likes).
-- Order: the invitation token's shape, then one probe of tenancy.invitation_tokens by its
-- SHA-256; the invitation must be pending (TN014: unknown, accepted, revoked or expired) and its
-- tenant active (TN002); the JWT is verified for that tenant (tenancy.token_subject: TN004; 55000
-- when verification is not configured; a tenant_id claim is not looked at) and its user must not
-- be locked out (TN013). An email claim, when the token has one, must be the invited address,
-- compared case-insensitively (42501): a forwarded or intercepted invitation link does not admit
-- another account. email_verified is not consulted: the invitation token is the proof of the
-- mailbox, the claim only a second check. Then the tenant row (FOR UPDATE, as every change of a
-- tenant's memberships takes it first: tenancy.require_member_manager) and the invitation (FOR
-- UPDATE) are locked, in that order, and both are checked again: of two concurrent accepts of
-- one invitation the second waits, then finds it accepted (TN014; 40001 under REPEATABLE READ or
-- SERIALIZABLE). A user who is a member already is refused (23505) and the invitation stays
-- pending: an invitation never changes a role.
-- Every refusal is counted by tenancy.authentication_failed: an attempt number no rollback takes
-- back and an authentication.failed event whose details name the function and the invitation.
-- Only an email claim that does not match counts towards the (verified) user's lockout. Errors
-- of the server or the session (55000, 40001, 40P01) and TN013 (the lockout was recorded once)
-- are neither counted nor recorded, as for authenticate. Neither token is ever in a message or
-- an event: an invitation is named by its id, an unknown invitation token by 12 characters.
-- A read-only transaction is refused (25006) before anything is looked at: it could not count.
create or replace function tenancy.accept_invitation(p_jwt text, p_invitation text)
returns table (tenant_id uuid, user_id text, role text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid;
    v_invitation_id uuid;
    v_invitation tenancy.invitations;
    v_status text;
    v_user_id text;
    v_claims jsonb;
    v_existing tenancy.member_role;
    v_inserted text;
    v_sqlstate text;
    v_message text;
begin
    if current_setting('transaction_read_only') = 'on' then
        raise exception using
            errcode = '25006',
            message = 'accepting an invitation needs a read-write transaction (failed attempts are counted with nextval)';
    end if;
    begin
        if p_invitation is null or p_invitation !~ '^pgti_[A-Za-z0-9_-]{43}$' then
            raise exception using
                errcode = 'TN014',
                message = format(
                    'invitation %s is not valid: an invitation token is pgti_ and 43 base64url characters',
                    coalesce(quote_literal(tenancy.token_excerpt(p_invitation, 12)), 'NULL')
                );
        end if;
        select t.tenant_id, t.invitation_id into v_tenant_id, v_invitation_id
        from tenancy.invitation_tokens as t
        where t.token_hash = tenancy.secret_hash(p_invitation);
        if not found then
            raise exception using
                errcode = 'TN014',
                message = format(
                    'invitation %L is not valid: no such invitation', tenancy.token_excerpt(p_invitation, 12)
                );
        end if;
        -- Checked before any lock is taken, so that a refusal waits for nobody.
        select i.* into v_invitation
        from tenancy.invitations as i
        where i.tenant_id = v_tenant_id and i.id = v_invitation_id;
        perform tenancy.require_pending_invitation(v_invitation);
        perform tenancy.require_active_tenant(v_tenant_id);
        v_user_id := tenancy.token_subject(p_jwt, v_tenant_id);
        perform tenancy.require_not_locked_out(array['user:' || v_user_id]);
        -- token_subject verified the token: its payload is canonical base64url JSON.
        v_claims := convert_from(tenancy.base64url_decode(split_part(p_jwt, '.', 2)), 'UTF8')::jsonb;
        if v_claims ? 'email' and (
            jsonb_typeof(v_claims -> 'email') is distinct from 'string'
            or lower(v_claims ->> 'email') <> lower(v_invitation.email)
        ) then
            raise exception using
                errcode = '42501',
                message = format(
                    'token claim email %s is not the address invitation %s was sent to',
                    tenancy.token_excerpt((v_claims -> 'email')::text, 300), v_invitation_id
                ),
                hint = 'Sign in with the account of the invited address, or ask for an invitation to this one.';
        end if;
        -- Lock, then check again: what was read above may have changed before the locks.
        select t.status into v_status from tenancy.tenants as t where t.id = v_tenant_id for update;
        if v_status is distinct from 'active' then
            perform tenancy.require_active_tenant(v_tenant_id);  -- raises P0002 or TN002
        end if;
        select i.* into v_invitation
        from tenancy.invitations as i
        where i.tenant_id = v_tenant_id and i.id = v_invitation_id
        for update;
        perform tenancy.require_pending_invitation(v_invitation);
        -- Locked: under REPEATABLE READ a membership changed after the snapshot raises 40001.
        select m.role into v_existing
        from tenancy.memberships as m
        where m.tenant_id = v_tenant_id and m.user_id = v_user_id
        for share;
        if not found then
            insert into tenancy.memberships as m (tenant_id, user_id, role)
            values (v_tenant_id, v_user_id, v_invitation.role)
            on conflict on constraint memberships_pkey do nothing
            returning m.user_id into v_inserted;
        end if;
        if v_inserted is null then
            raise exception using
                errcode = '23505',
                message = format(
                    'user %L is already a member of tenant %s%s: invitation %s stays pending',
                    v_user_id, v_tenant_id, coalesce(' (role ' || v_existing || ')', ''), v_invitation_id
                ),
                hint = 'An invitation never changes a role: owners and admins do, with tenancy.set_member_role().';
        end if;
        update tenancy.invitations as i
        set accepted_at = clock_timestamp(), accepted_by = v_user_id
        where i.tenant_id = v_tenant_id and i.id = v_invitation_id;
        perform tenancy.record_security_event(
            'invitation.accepted',
            format('user %L accepted invitation %s to tenant %s as %s', v_user_id, v_invitation_id, v_tenant_id, v_invitation.role),
            v_tenant_id,
            v_user_id,
            null,
            null,
            jsonb_build_object('invitation_id', v_invitation_id, 'email', v_invitation.email, 'role', v_invitation.role)
        );
    exception when others then
        get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
        if v_sqlstate not in ('55000', '40001', '40P01', 'TN013') then
            perform tenancy.authentication_failed(
                v_sqlstate,
                v_message,
                case when v_sqlstate = '42501' then array['user:' || v_user_id] else '{}'::text [] end,
                v_tenant_id,
                v_user_id,
                null,
                null,
                jsonb_build_object('function', 'accept_invitation', 'invitation_id', v_invitation_id)
            );
        end if;
        raise;
    end;
    return query select v_tenant_id, v_user_id, v_invitation.role::text;
end
$$;

comment on function tenancy.accept_invitation(text, text) is
'For tenancy_app: the user of p_jwt (verified for the invitation''s tenant; membership not '
'needed) becomes a member of the tenant with the invited role, once, while the invitation is '
'pending and the tenant active. Returns tenant, user and role; sets no context. TN014 for an '
'unknown, accepted, revoked or expired invitation, TN002, TN004, TN013, 42501 when the token''s '
'email claim is not the invited address, 23505 when the user is a member already. Every refusal '
'is counted (tenancy.authentication_failed); neither token is ever stored or shown.';

revoke all on function tenancy.accept_invitation(text, text) from public;
grant execute on function tenancy.accept_invitation(text, text) to tenancy_app;
