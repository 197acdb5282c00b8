-- pgtenancy type tenancy.member_role: the member roles, from most to least privileged.
-- Used by tenancy.memberships.role and every function that takes, returns or compares a role;
-- the generator reads the roles from this type.

create type tenancy.member_role as enum ('owner', 'admin', 'member', 'viewer');
comment on type tenancy.member_role is
'pgtenancy: member roles in decreasing order of privilege: owner and admin manage members, '
'member writes, viewer reads.';

alter table tenancy.memberships drop constraint memberships_role_check;
alter table tenancy.memberships
alter column role type tenancy.member_role using role::tenancy.member_role;
