-- tenancy.secret_hash: the SHA-256 under which a token, API key or invitation is stored and looked up.
-- No SET clause so that the planner inlines it; every name is schema-qualified instead. STABLE
-- because convert_to() is: an IMMUTABLE function calling it would not be inlined.

create or replace function tenancy.secret_hash(p_secret text)
returns bytea
language sql
stable
strict
parallel safe
as $$
    -- A plain SHA-256 suffices: the secrets hashed here carry 256 random bits (or are signed
    -- tokens), so there is nothing to guess that a slow hash would protect.
    select pg_catalog.sha256(pg_catalog.convert_to(p_secret, 'UTF8'))
$$;

comment on function tenancy.secret_hash(text) is
'pgtenancy internal: SHA-256 of a secret (token, API key, invitation) as stored and looked up; '
'the secret itself is never stored.';

revoke all on function tenancy.secret_hash(text) from public;
