-- tenancy.token_excerpt: the start of a token or claim value, for error messages.
-- No SET clause so that the planner inlines it; every name is schema-qualified instead.

create or replace function tenancy.token_excerpt(p_value text, p_length integer)
returns text
language sql
immutable
parallel safe
as $$
    select case
        when pg_catalog.length(p_value) operator(pg_catalog.>) p_length
            then pg_catalog.left(p_value, p_length) operator(pg_catalog.||) '...'
        else p_value
    end
$$;

comment on function tenancy.token_excerpt(text, integer) is
'pgtenancy internal: p_value cut to p_length characters (marked with ...), so that error '
'messages never carry a whole token or an oversized claim.';

revoke all on function tenancy.token_excerpt(text, integer) from public;
