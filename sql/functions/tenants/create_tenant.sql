-- tenancy.create_tenant: create an active tenant, with its first owner when one is given.

create or replace function tenancy.create_tenant(
    p_slug text,
    p_name text,
    p_owner_user_id text default null,
    p_id uuid default null,
    p_key text default null
)
returns uuid
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid;
    v_slug tenancy.tenant_slug;
    v_name tenancy.tenant_name;
    v_key tenancy.tenant_key;
    v_owner tenancy.user_id;
begin
    -- The rules are the domains' (tenancy.tenant_slug, tenancy.tenant_name); a value they refuse
    -- is reported as 22023 naming it rather than as the cast's 23514.
    begin
        v_slug := p_slug;
    exception when check_violation then
        v_slug := null;
    end;
    if v_slug is null then
        raise exception using
            errcode = '22023',
            message = format('invalid tenant slug %L', p_slug),
            hint = 'A slug is a lower-case DNS label: 3 to 63 characters of a-z, 0-9 and '
                'hyphens, starting and ending with a letter or digit.';
    end if;
    perform tenancy.require_slug_available(v_slug);  -- 22023 when reserved (domains)
    begin
        v_name := btrim(p_name);
    exception when check_violation then
        v_name := null;
    end;
    if v_name is null then
        raise exception using
            errcode = '22023',
            message = format('invalid tenant name %L: 1 to 200 characters required', p_name);
    end if;
    begin
        v_key := p_key;
    exception when check_violation then
        raise exception using
            errcode = '22023',
            message = format('invalid tenant key %L: 1 to 255 characters, no control characters', p_key);
    end;
    if p_owner_user_id is not null then
        v_owner := tenancy.checked_user_id(p_owner_user_id);  -- 22023 naming an invalid id
    end if;
    if p_id is not null and exists (select from tenancy.tenants as t where t.id = p_id) then
        raise exception using
            errcode = '23505',
            message = format('tenant id %s is already taken', p_id);
    end if;
    if v_key is not null and exists (select from tenancy.tenants as t where t.key = v_key) then
        raise exception using
            errcode = '23505',
            message = format('tenant key %L is already taken', p_key);
    end if;
    -- The checks above give the usual cases their message; a concurrent insert of the same id or
    -- key still fails on the table's unique constraints.
    -- Placed in this database's placement (tenancy.placements.here).
    insert into tenancy.tenants (id, slug, name, key, placement)
    values (
        coalesce(p_id, gen_random_uuid()), v_slug, v_name, v_key,
        coalesce((select p.name from tenancy.placements as p where p.here), 'home')
    )
    on conflict (slug) do nothing
    returning id into v_tenant_id;
    if v_tenant_id is null then
        raise exception using
            errcode = '23505',
            message = format('tenant slug %L is already taken', p_slug);
    end if;
    perform tenancy.sync_platform_domains(v_tenant_id);  -- <slug>.<base> for every base domain
    -- Without an owner the tenant has no member yet (members come later: an import, invitations).
    if v_owner is not null then
        insert into tenancy.memberships (tenant_id, user_id, role)
        values (v_tenant_id, v_owner, 'owner');
    end if;
    return v_tenant_id;
end
$$;

comment on function tenancy.create_tenant(text, text, text, uuid, text) is
'For tenancy_admin and tenancy_service: creates an active tenant (slug: tenancy.tenant_slug, a '
'lower-case DNS label of 3-63 characters; name: tenancy.tenant_name, trimmed) whose first owner '
'is p_owner_user_id (none when NULL), with the id p_id (generated when NULL) and the '
'application key p_key (tenancy.tenant_key, unique, optional); returns its id. A reserved slug '
'(tenancy.configure_domains) is refused; the tenant gets <slug>.<base> for every base domain.';

revoke all on function tenancy.create_tenant(text, text, text, uuid, text) from public;
grant execute on function tenancy.create_tenant(text, text, text, uuid, text)
to tenancy_admin, tenancy_service;
