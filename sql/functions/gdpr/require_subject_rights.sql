-- tenancy.require_subject_rights: the current tenant when the context may act on data subjects (owner, admin or service), else an error.

-- p_subject is checked too: 1 to 500 characters, no control characters. Runs as the caller.
create or replace function tenancy.require_subject_rights(p_function text, p_subject text)
returns uuid
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := tenancy.current_tenant_id();
    v_role text := tenancy.current_member_role();
begin
    if v_tenant is null then
        raise exception using
            errcode = 'TN001',
            message = format('no tenant context: tenancy.%s needs tenancy.authenticate() or tenancy.set_context() first', p_function);
    end if;
    if v_role is null or v_role <> all(array['owner', 'admin', 'service']) then
        raise exception using
            errcode = '42501',
            message = format(
                'tenancy.%s is for owners, admins and service contexts of the tenant; this context''s role is %s',
                p_function, coalesce(v_role, 'NULL')
            );
    end if;
    if p_subject is null or p_subject = '' or length(p_subject) > 500 or p_subject ~ '[\x01-\x1f\x7f]' then
        raise exception using
            errcode = '22023',
            message = format(
                'data subject id %s is not valid: 1 to 500 characters, no control characters',
                coalesce(quote_literal(left(p_subject, 100)), 'NULL')
            );
    end if;
    return v_tenant;
end
$$;

comment on function tenancy.require_subject_rights(text, text) is
'The current tenant id when the context''s role is owner, admin or service and p_subject is a '
'valid subject id; TN001 without a context, 42501 for another role, 22023 for a bad id. Used by '
'the subject rights functions.';

revoke all on function tenancy.require_subject_rights(text, text) from public;
grant execute on function tenancy.require_subject_rights(text, text) to tenancy_app, tenancy_service;
