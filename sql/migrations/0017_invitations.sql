-- pgtenancy invitations: tenancy.email_address, tenancy.invitations and tenancy.invitation_tokens.
-- An invitation lives twice, written together by pgtenancy's functions only:
-- * tenancy.invitations, a tenant table (row level security, generated policies; tenant_id leads
--   every key): owners and admins of the tenant list its invitations there. It holds no secret;
-- * tenancy.invitation_tokens, a platform table no application role can read: the SHA-256 of each
--   invitation's token (tenancy.secret_hash), the one index tenancy.accept_invitation probes, with
--   the tenant and the invitation it leads to. The token itself is never stored.
-- An invitation is pending until it is accepted (once), revoked or past expires_at; the token
-- of one that is no longer pending is kept, so that a later attempt is told why it is refused.

create domain tenancy.email_address as text
constraint email_address_check check (
    pg_catalog.int4le(pg_catalog.length(value), 254)
    and pg_catalog.regexp_like(
        value,
        '^[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+)*'
        '@[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$'
    )
    and pg_catalog.int4le(pg_catalog.strpos(value, '@'), 65)
);
comment on domain tenancy.email_address is
'pgtenancy: an e-mail address of at most 254 characters: a local part of at most 64 characters '
'(letters, digits, the specials !#$%&''*+/=?^_`{|}~- and inner single dots), @, and a DNS name of '
'two labels or more in lower case (ASCII: internationalised domains punycoded).';

create table tenancy.invitations (
    tenant_id uuid not null,
    id uuid not null default pg_catalog.gen_random_uuid(),
    email tenancy.email_address not null,
    role tenancy.member_role not null,
    invited_by tenancy.user_id,
    created_at timestamptz not null default pg_catalog.now(),
    expires_at timestamptz not null,
    accepted_at timestamptz,
    accepted_by tenancy.user_id,
    revoked_at timestamptz,
    revoked_by tenancy.user_id,
    constraint invitations_pkey primary key (tenant_id, id),
    constraint invitations_tenant_id_fkey foreign key (tenant_id)
    references tenancy.tenants (id) on delete cascade,
    constraint invitations_expires_at_check check (expires_at operator (pg_catalog.>) created_at),
    constraint invitations_accepted_check check (
        (accepted_at is null) operator (pg_catalog.=) (accepted_by is null)
    ),
    constraint invitations_accepted_or_revoked_check check (accepted_at is null or revoked_at is null)
);
comment on table tenancy.invitations is
'pgtenancy: invitations to join a tenant with a role, sent to an e-mail address; pending until '
'accepted (once, tenancy.accept_invitation), revoked (tenancy.revoke_invitation) or expired. '
'Tenant table: owners and admins of the tenant read its rows; written by pgtenancy''s functions '
'only. The token is not here (see tenancy.invitation_tokens).';
comment on column tenancy.invitations.email is
'The address the invitation was sent to, its domain in lower case (the local part as given). '
'A token with an email claim accepts it only when the claim is this address, compared '
'case-insensitively.';
comment on column tenancy.invitations.role is 'The role the accepting user becomes a member with.';
comment on column tenancy.invitations.invited_by is
'The user who invited; NULL for a service context (tenancy.set_context without a user).';
comment on column tenancy.invitations.accepted_by is 'The user (token subject) who accepted.';
comment on column tenancy.invitations.revoked_by is
'The user who revoked; NULL for a service context.';

revoke all on tenancy.invitations from public;

create table tenancy.invitation_tokens (
    token_hash bytea not null,
    tenant_id uuid not null,
    invitation_id uuid not null,
    -- The columns accept_invitation needs ride in the index: one probe finds the invitation.
    constraint invitation_tokens_pkey primary key (token_hash) include (tenant_id, invitation_id),
    constraint invitation_tokens_invitation_key unique (tenant_id, invitation_id),
    constraint invitation_tokens_invitation_fkey foreign key (tenant_id, invitation_id)
    references tenancy.invitations (tenant_id, id) on delete cascade,
    constraint invitation_tokens_token_hash_check check (
        pg_catalog.octet_length(token_hash) operator (pg_catalog.=) 32
    )
);
comment on table tenancy.invitation_tokens is
'pgtenancy: the SHA-256 (tenancy.secret_hash) of every invitation token, with the tenant and '
'invitation it leads to: the map tenancy.accept_invitation reads. Platform table, readable by '
'tenancy_owner alone; the token itself is never stored.';

revoke all on tenancy.invitation_tokens from public;
