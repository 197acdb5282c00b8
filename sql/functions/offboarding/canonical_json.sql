-- tenancy.canonical_json: one fixed text for a JSON value, to hash (deletion certificates).
-- migrate: as-role tenancy_audit_owner

-- Objects with their keys in code point order (the bytes of UTF-8, collation "C"), no
-- whitespace anywhere, strings escaped as jsonb prints them (", \ and the control characters
-- only, never non-ASCII), numbers as jsonb keeps them. For the certificates' values (objects,
-- arrays, strings, integers) this is what Python's
-- json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) writes, so anyone
-- can recompute a certificate's SHA-256 outside the database. Owned by the audit trail's owner,
-- like the verification that relies on it.
create or replace function tenancy.canonical_json(p_value jsonb)
returns text
language plpgsql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
    case jsonb_typeof(p_value)
        when 'object' then
            return '{' || coalesce((
                select string_agg(
                    to_jsonb(e.key)::text || ':' || tenancy.canonical_json(e.value), ','
                    order by e.key collate "C"
                )
                from jsonb_each(p_value) as e
            ), '') || '}';
        when 'array' then
            return '[' || coalesce((
                select string_agg(tenancy.canonical_json(a.value), ',' order by a.n)
                from jsonb_array_elements(p_value) with ordinality as a (value, n)
            ), '') || ']';
        else
            -- A string, number, true, false or null: jsonb's own text, which has no whitespace.
            return p_value::text;
    end case;
end
$$;

comment on function tenancy.canonical_json(jsonb) is
'The canonical text of a JSON value: object keys in code point order, no whitespace, strings '
'escaped as jsonb prints them; for objects, arrays, strings and integers the same text as '
'Python''s json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False). '
'Deletion certificates hash it (SHA-256 of its UTF-8 bytes). NULL for NULL.';

revoke all on function tenancy.canonical_json(jsonb) from public;
grant execute on function tenancy.canonical_json(jsonb) to tenancy_owner, tenancy_admin, tenancy_auditor;
