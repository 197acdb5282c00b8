-- tenancy.tg_tenant_group_identify: a tenant created or changed (name, slug, status, branding, region) enqueues PostHog's $groupidentify for it.

create or replace function tenancy.tg_tenant_group_identify()
returns trigger
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := (to_jsonb(new) ->> case when tg_table_name = 'tenants' then 'id' else 'tenant_id' end)::uuid;
    v_tenant tenancy.tenants;
    v_settings tenancy.tenant_settings;
    v_id uuid := tenancy.uuid_v7();
    v_key text;
begin
    v_key := '$tenant_' || v_tenant_id::text;
    select t.* into v_tenant from tenancy.tenants as t where t.id = v_tenant_id;
    -- A deleted (offboarded) tenant has no rows in any tenant table, the outbox's included.
    if v_tenant.status = 'deleted' then
        return null;
    end if;
    select s.* into v_settings from tenancy.tenant_settings as s where s.tenant_id = v_tenant_id;
    insert into tenancy.analytics_events (tenant_id, id, occurred_at, actor, event, distinct_id, ordering_key, properties)
    values (
        v_tenant_id, v_id, now(), null, '$groupidentify', v_key, v_key,
        jsonb_build_object(
            '$group_type', 'tenant',
            '$group_key', v_tenant_id::text,
            '$group_set', jsonb_strip_nulls(jsonb_build_object(
                'name', v_tenant.name, 'slug', v_tenant.slug, 'status', v_tenant.status,
                'region', v_settings.region, 'display_name', v_settings.branding ->> 'display_name',
                'created_at', v_tenant.created_at
            ))
        )
    );
    insert into tenancy.deliveries (tenant_id, event_id, destination_id, source, occurred_at, ordering_key, next_attempt_at)
    values (v_tenant_id, v_id, '00000000-0000-0000-0000-000000000000', 'analytics', now(), v_key, now());
    return null;
end
$$;

comment on function tenancy.tg_tenant_group_identify() is
'pgtenancy internal: row trigger on tenancy.tenants and tenancy.tenant_settings: enqueues the '
'analytics event $groupidentify of the tenant (group type tenant, key its id) with its name, '
'slug, status, region and display name, so PostHog''s group properties follow the tenant; '
'nothing for a deleted tenant (offboarding leaves none of its rows).';

revoke all on function tenancy.tg_tenant_group_identify() from public;

drop trigger if exists tenancy_group_identify on tenancy.tenants;
create trigger tenancy_group_identify
after insert or update of name, slug, status on tenancy.tenants
for each row
execute function tenancy.tg_tenant_group_identify();
comment on trigger tenancy_group_identify on tenancy.tenants is
'Enqueues PostHog''s $groupidentify when a tenant is created or its name, slug or status changes.';

drop trigger if exists tenancy_group_identify on tenancy.tenant_settings;
create trigger tenancy_group_identify
after insert or update of branding, region on tenancy.tenant_settings
for each row
execute function tenancy.tg_tenant_group_identify();
comment on trigger tenancy_group_identify on tenancy.tenant_settings is
'Enqueues PostHog''s $groupidentify when a tenant''s branding or region changes.';
