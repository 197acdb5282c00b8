-- tenancy.rotate_webhook_secret: give a webhook endpoint a new signing secret, the old one still signing for a while.

create or replace function tenancy.rotate_webhook_secret(
    p_name text,
    p_secret text default null,
    p_overlap interval default '24 hours'
)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant_id uuid := tenancy.require_usage_role(array['owner', 'admin'], 'configure connectors');
    v_id uuid;
    v_secret text := tenancy.webhook_secret(p_secret);
    v_url text;
    v_next integer;
begin
    if p_overlap is null or p_overlap < interval '0' or p_overlap > interval '30 days' then
        raise exception using
            errcode = '22023',
            message = format('overlap %s is not between 0 and 30 days', coalesce(p_overlap::text, 'NULL'));
    end if;
    select e.id into v_id
    from tenancy.connector_endpoints as e
    where e.tenant_id = v_tenant_id and e.name = p_name and e.kind = 'webhook'
    for update;
    if not found then
        raise exception using
            errcode = 'P0002',
            message = format('webhook endpoint %L does not exist in tenant %s', tenancy.token_excerpt(p_name, 100), v_tenant_id);
    end if;
    -- Secrets that expired are forgotten, and so are all but the newest: it stays valid for the
    -- overlap at the latest, beside the new one, so no more than two secrets ever sign (however
    -- often an owner rotates, each delivery carries two signatures at most).
    delete from tenancy.connector_secrets as s
    where s.endpoint_id = v_id
        and (s.expires_at <= now() or s.secret_id < (
            select max(t.secret_id) from tenancy.connector_secrets as t where t.endpoint_id = v_id
        ));
    update tenancy.connector_secrets as s
    set expires_at = least(coalesce(s.expires_at, 'infinity'), now() + p_overlap)
    where s.endpoint_id = v_id;
    select s.url, s.secret_id + 1 into v_url, v_next
    from tenancy.connector_secrets as s
    where s.endpoint_id = v_id
    order by s.secret_id desc
    limit 1;
    insert into tenancy.connector_secrets (endpoint_id, secret_id, url, signing_secret)
    values (v_id, v_next, v_url, v_secret);
    update tenancy.connector_endpoints as e set updated_at = now() where e.tenant_id = v_tenant_id and e.id = v_id;
    return case when p_secret is null then v_secret end;
end
$$;

comment on function tenancy.rotate_webhook_secret(text, text, interval) is
'For owners and admins of the current tenant: makes p_secret (or a new whsec_ secret, returned '
'once) the signing secret of webhook endpoint p_name; the previous one keeps signing too for '
'p_overlap (default 24 hours, at most 30 days), so receivers can switch without a gap, and any '
'older one stops: each delivery carries one signature per valid secret, two at most. P0002 for an unknown endpoint; 22023; TN001, 42501.';

revoke all on function tenancy.rotate_webhook_secret(text, text, interval) from public;
grant execute on function tenancy.rotate_webhook_secret(text, text, interval) to tenancy_app, tenancy_service, tenancy_admin;
