-- tenancy.checked_branding: a branding document, normalised and checked against tenancy.branding.

-- The rules are the constraints of the domain tenancy.branding (sql/migrations/0013), one per
-- field. Before the check, JSON nulls are dropped (a null field is an absent one), display_name
-- is trimmed and colours are lower-cased. A document the domain refuses is checked again one
-- field at a time, so the 22023 raised names the first offending field (in key order) with its
-- value as given, and quotes the comment of the constraint it failed as the rule.
create or replace function tenancy.checked_branding(p_branding jsonb)
returns tenancy.branding
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_branding jsonb;
    v_key text;
    v_value jsonb;
    v_constraint text;
begin
    if p_branding is null then
        raise exception using
            errcode = '22023',
            message = 'branding is NULL',
            hint = 'Pass ''{}'' to remove every branding field.';
    end if;
    if jsonb_typeof(p_branding) <> 'object' then
        raise exception using
            errcode = '22023',
            message = format(
                'invalid branding %s: a JSON object is required, got %s',
                tenancy.token_excerpt(p_branding::text, 200), jsonb_typeof(p_branding)
            );
    end if;
    select coalesce(
        jsonb_object_agg(
            e.key,
            case
                when jsonb_typeof(e.value) <> 'string' then e.value
                when e.key = 'display_name' then to_jsonb(btrim(e.value #>> '{}'))
                when e.key like '%\_color' then to_jsonb(lower(e.value #>> '{}'))
                else e.value
            end
        ),
        '{}'::jsonb
    ) into v_branding
    from jsonb_each(p_branding) as e
    where jsonb_typeof(e.value) <> 'null';
    for v_key, v_value in
        select e.key, e.value from jsonb_each(v_branding) as e order by e.key
    loop
        begin
            perform jsonb_build_object(v_key, v_value)::tenancy.branding;
        exception when check_violation then
            get stacked diagnostics v_constraint = constraint_name;
            raise exception using
                errcode = '22023',
                message = format(
                    'invalid branding field %s: %s',
                    v_key, tenancy.token_excerpt(jsonb_object_field(p_branding, v_key)::text, 200)
                ),
                hint = format(
                    'The rule: %s.',
                    coalesce(
                        (
                            select obj_description(c.oid, 'pg_constraint') from pg_constraint as c
                            where c.contypid = 'tenancy.branding'::regtype and c.conname = v_constraint
                        ),
                        v_constraint
                    )
                );
        end;
    end loop;
    return v_branding;
end
$$;

comment on function tenancy.checked_branding(jsonb) is
'pgtenancy internal: p_branding as a tenancy.branding (JSON nulls dropped, display_name trimmed, '
'colours lower-cased); 22023 naming the first offending field and its value otherwise, with the '
'rule in the hint.';

revoke all on function tenancy.checked_branding(jsonb) from public;
