-- tenancy.check_subscription_overrides: 22023 unless a subscription's own caps and entitlements are valid.

create or replace function tenancy.check_subscription_overrides(
    p_tenant_id uuid, p_cap_overrides jsonb, p_extra_entitlements text[], p_revoked_entitlements text[]
)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_bad text;
begin
    if jsonb_typeof(p_cap_overrides) is distinct from 'object' then
        raise exception using
            errcode = '22023',
            message = 'cap overrides must be a JSON object of meter keys to numbers (or null for no cap)';
    end if;
    select format('cap override of %L: %s', c.key, coalesce(
        case
            when jsonb_typeof(c.value) not in ('number', 'null') then format('%s is not a number or null', c.value)
            when jsonb_typeof(c.value) = 'number' and c.value::text::numeric < 0 then format('%s is negative', c.value)
        end,
        case
            when not exists (select from tenancy.meters as m where m.tenant_id = p_tenant_id and m.key = c.key)
                then format('tenant %s has no such meter', p_tenant_id)
        end
    ))
    into v_bad
    from jsonb_each(p_cap_overrides) as c
    where jsonb_typeof(c.value) not in ('number', 'null')
        or jsonb_typeof(c.value) = 'number' and c.value::text::numeric < 0
        or not exists (select from tenancy.meters as m where m.tenant_id = p_tenant_id and m.key = c.key)
    order by c.key
    limit 1;
    if v_bad is not null then
        raise exception using errcode = '22023', message = v_bad;
    end if;
    select f into v_bad
    from unnest(coalesce(p_extra_entitlements, '{}') || coalesce(p_revoked_entitlements, '{}')) as f
    where f is null or not regexp_like(f, '^[a-z][a-z0-9_]{0,62}$')
    limit 1;
    if found then
        raise exception using
            errcode = '22023',
            message = format('invalid feature %L: a lower-case letter, then up to 62 lower-case letters, digits and underscores', v_bad);
    end if;
    if p_extra_entitlements is null or p_revoked_entitlements is null then
        raise exception using errcode = '22023', message = 'extra and revoked entitlements must be arrays, not NULL';
    end if;
end
$$;

comment on function tenancy.check_subscription_overrides(uuid, jsonb, text[], text[]) is
'pgtenancy internal: 22023 naming the first bad cap override (not a number from 0 or null, or a '
'meter the tenant lacks) or feature name.';

revoke all on function tenancy.check_subscription_overrides(uuid, jsonb, text[], text[]) from public;
