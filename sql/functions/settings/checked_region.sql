-- tenancy.checked_region: a region tag given to a pgtenancy function, checked against tenancy.region_tag.

create or replace function tenancy.checked_region(p_region text)
returns tenancy.region_tag
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_region is null then
        raise exception using errcode = '22023', message = 'region is NULL';
    end if;
    return p_region::tenancy.region_tag;
exception when check_violation then
    raise exception using
        errcode = '22023',
        message = format('invalid region %L', tenancy.token_excerpt(p_region, 100)),
        hint = 'A region tag is 1 to 32 characters of a-z, 0-9 and hyphens, starting with a letter '
            'and not ending with a hyphen (eu, us-east-1).';
end
$$;

comment on function tenancy.checked_region(text) is
'pgtenancy internal: p_region as a tenancy.region_tag; 22023 naming the value otherwise, and for '
'NULL.';

revoke all on function tenancy.checked_region(text) from public;
