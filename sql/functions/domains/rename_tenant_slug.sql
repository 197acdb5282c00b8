-- tenancy.rename_tenant_slug: give a tenant a new slug; its old subdomains keep resolving for the grace period.

-- The new slug follows create_tenant's rules (22023 when not a DNS label or reserved; 23505 when
-- another tenant has it, or gave it up less than a grace period ago). The tenant's current
-- platform subdomains get expires_at = now() + tenancy.domain_config.slug_grace: they resolve,
-- and the old slug stays this tenant's, until then; <new slug>.<base> is added for every base,
-- and takes over as primary from the old subdomain of the same base. Renaming back within the
-- grace period takes the old subdomains back.
create or replace function tenancy.rename_tenant_slug(p_tenant_id uuid, p_new_slug text)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_slug tenancy.tenant_slug;
    v_old text;
    v_status text;
    v_primary text;
    v_grace interval;
begin
    begin
        v_slug := p_new_slug;
    exception when check_violation then
        v_slug := null;
    end;
    if v_slug is null then
        raise exception using
            errcode = '22023',
            message = format('invalid tenant slug %L', p_new_slug),
            hint = 'A slug is a lower-case DNS label: 3 to 63 characters of a-z, 0-9 and '
                'hyphens, starting and ending with a letter or digit.';
    end if;
    select t.slug, t.status into v_old, v_status from tenancy.tenants as t where t.id = p_tenant_id for update;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('tenant %s does not exist', coalesce(p_tenant_id::text, 'NULL'));
    end if;
    if v_status = 'deleted' then
        raise exception using
            errcode = '55000',
            message = format('tenant %s is deleted: its slug %L stays its own', p_tenant_id, v_old);
    end if;
    if v_old = v_slug then
        return;
    end if;
    perform tenancy.require_slug_available(v_slug, p_tenant_id);
    if exists (select from tenancy.tenants as t where t.slug = v_slug) then
        raise exception using
            errcode = '23505',
            message = format('tenant slug %L is already taken', p_new_slug);
    end if;
    select c.slug_grace into v_grace from tenancy.domain_config as c;
    select d.hostname into v_primary
    from tenancy.tenant_domains as d
    where d.tenant_id = p_tenant_id and d.is_primary and d.kind = 'platform';
    update tenancy.tenant_domains as d
    set expires_at = now() + v_grace, is_primary = false
    where d.tenant_id = p_tenant_id and d.kind = 'platform' and d.expires_at is null;
    update tenancy.domain_claims as c
    set expires_at = now() + v_grace
    where c.tenant_id = p_tenant_id and c.kind = 'platform' and c.expires_at is null;
    -- A concurrent create_tenant of the same slug fails on tenants_slug_key here.
    update tenancy.tenants as t set slug = v_slug, updated_at = now() where t.id = p_tenant_id;
    perform tenancy.sync_platform_domains(p_tenant_id);
    if v_primary is not null then
        update tenancy.tenant_domains as d set is_primary = false
        where d.tenant_id = p_tenant_id and d.is_primary;
        update tenancy.tenant_domains as d set is_primary = true
        where d.tenant_id = p_tenant_id
            and d.hostname = v_slug || substr(v_primary, length(v_old) + 1);
    end if;
end
$$;

comment on function tenancy.rename_tenant_slug(uuid, text) is
'For tenancy_admin and tenancy_service: renames a tenant''s slug (create_tenant''s rules: 22023 '
'when invalid or reserved, 23505 when taken, P0002 for an unknown tenant, 55000 for a deleted one); '
'its subdomains move to '
'the new slug, and the old ones keep resolving, and the old slug stays its own, for the grace '
'period set with tenancy.configure_domains (p_slug_grace).';

revoke all on function tenancy.rename_tenant_slug(uuid, text) from public;
grant execute on function tenancy.rename_tenant_slug(uuid, text) to tenancy_admin, tenancy_service;
