-- pgtenancy domain tenancy.user_id: user ids are text (an identity provider's subject, verbatim).
-- Identity providers name users 'auth0|5f7c…', 'user_2abc…' or by 28-character Firebase ids, not
-- by uuids: memberships store the subject as given, 1 to 255 characters without control
-- characters. Existing uuid ids become their text form, which tokens already carried in sub.

create domain tenancy.user_id as text
constraint user_id_check check (
    pg_catalog.int4ge(pg_catalog.length(value), 1)
    and pg_catalog.int4le(pg_catalog.length(value), 255)
    and not pg_catalog.regexp_like(value, '[[:cntrl:]]')
);
comment on domain tenancy.user_id is
'pgtenancy: a user id, the identity provider''s subject (JWT sub) verbatim: 1 to 255 '
'characters, no control characters.';

alter table tenancy.memberships
alter column user_id type tenancy.user_id using user_id::pg_catalog.text;

-- These functions keep their arguments but return user ids as text now; CREATE OR REPLACE
-- cannot change a result type, so they go first and their files create them again. Nothing
-- depends on them in the catalog (PL/pgSQL and SQL bodies record no dependencies).
drop function if exists tenancy.current_user_id();
drop function if exists tenancy.authenticate(text);
drop function if exists tenancy.require_member_manager();
