-- tenancy.log_audit: an application-level event in the current tenant's audit trail.

create or replace function tenancy.log_audit(
    p_action text,
    p_entity_type text,
    p_entity_id text,
    p_old jsonb,
    p_new jsonb,
    p_metadata jsonb default '{}'
)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := tenancy.context_tenant_id(null::text[]);
    v_slot text;
begin
    if v_tenant is null then
        raise exception using
            errcode = 'TN001',
            message = 'no tenant context: tenancy.log_audit needs tenancy.authenticate() or tenancy.set_context() earlier in the transaction';
    end if;
    if p_action is null or p_action !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' or length(p_action) > 100 then
        raise exception using
            errcode = '22023',
            message = format(
                'audit action %s is not valid: 1 to 100 characters, lower-case words of a-z, 0-9 and _ '
                'joined by dots (user.updated)', coalesce(quote_literal(left(p_action, 100)), 'NULL')
            );
    end if;
    if p_entity_type is null or p_entity_type !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' or length(p_entity_type) > 100 then
        raise exception using
            errcode = '22023',
            message = format(
                'audit entity type %s is not valid: 1 to 100 characters, lower-case words of a-z, 0-9 and _ '
                'joined by dots (user, billing.invoice)', coalesce(quote_literal(left(p_entity_type, 100)), 'NULL')
            );
    end if;
    if length(p_entity_id) > 500 or p_entity_id ~ '[\x01-\x1f\x7f]' then
        raise exception using
            errcode = '22023',
            message = format(
                'audit entity id %L is not valid: at most 500 characters, no control characters', left(p_entity_id, 100)
            );
    end if;
    if jsonb_typeof(p_old) is distinct from 'object' and p_old is not null
        or jsonb_typeof(p_new) is distinct from 'object' and p_new is not null then
        raise exception using
            errcode = '22023',
            message = format(
                'audit old and new values must be JSON objects or NULL, got %s and %s',
                coalesce(left(p_old::text, 50), 'NULL'), coalesce(left(p_new::text, 50), 'NULL')
            );
    end if;
    if p_metadata is null or jsonb_typeof(p_metadata) <> 'object' then
        raise exception using
            errcode = '22023',
            message = format('audit metadata must be a JSON object, got %s', coalesce(left(p_metadata::text, 50), 'NULL'));
    end if;
    v_slot := tenancy.context_user_slot();
    insert into tenancy.audit_logs (
        tenant_id, txid, action, entity_type, entity_id, old_data, new_data, changed_columns,
        actor_user_id, actor_role, api_key_id, metadata
    )
    values (
        v_tenant, pg_current_xact_id()::text::bigint, p_action, p_entity_type, p_entity_id, p_old, p_new,
        case when p_old is not null and p_new is not null then
            array(
                select k.key from (
                    select key from jsonb_object_keys(p_old) as key
                    union
                    select key from jsonb_object_keys(p_new) as key
                ) as k
                where (p_old -> k.key) is distinct from (p_new -> k.key)
                order by k.key
            )
        end,
        case when v_slot <> '' and not starts_with(v_slot, chr(30)) then v_slot end,
        tenancy.current_member_role(),
        case when starts_with(v_slot, chr(30)) then substr(v_slot, 2)::uuid end,
        tenancy.request_metadata() || p_metadata
    );
    -- Not RETURNING, which would need SELECT on the trail; the sequence is this session's.
    return currval('tenancy.audit_logs_id_seq'::regclass);
end
$$;

comment on function tenancy.log_audit(text, text, text, jsonb, jsonb, jsonb) is
'Records an application event in the current tenant''s audit trail (TN001 without a context): '
'action and entity type as lower-case dotted words (user.updated, user), the entity''s id, its '
'old and new values (JSON objects or NULL; changed_columns is computed), metadata merged over '
'the request metadata. Returns the audit row''s id. 22023 for a malformed argument.';

revoke all on function tenancy.log_audit(text, text, text, jsonb, jsonb, jsonb) from public;
grant execute on function tenancy.log_audit(text, text, text, jsonb, jsonb, jsonb)
to tenancy_app, tenancy_service;
