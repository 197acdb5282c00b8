-- tenancy.claim_number_text: a numeric claim as short text, for error messages.
-- No SET clause so that the planner inlines it; every name is schema-qualified instead.

create or replace function tenancy.claim_number_text(p_value numeric)
returns text
language sql
immutable
parallel safe
as $$
    -- 1e400 as 1.000e+400, not as 401 digits.
    select case
        when pg_catalog.length(p_value::pg_catalog.text) operator(pg_catalog.<=) 24 then p_value::pg_catalog.text
        else pg_catalog.btrim(pg_catalog.to_char(p_value, '9.999EEEE'))
    end
$$;

comment on function tenancy.claim_number_text(numeric) is
'pgtenancy internal: a numeric token claim as text, in scientific notation when longer than 24 '
'characters, so that error messages name huge or tiny values legibly.';

revoke all on function tenancy.claim_number_text(numeric) from public;
