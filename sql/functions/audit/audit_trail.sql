-- tenancy.audit_trail: the audit rows of one entity (an application entity or a table row), in the order they were written.

-- Whole tenancy.audit_logs rows, so a caller reads every column it could read from the table
-- (the same rows: it runs as the caller, and the trail's row level security decides: owners and
-- admins of the context's tenant, service contexts, tenancy_auditor for every tenant). For a
-- table row ('"schema"."table"', the quoted name tenancy.tg_audit records) the entity id is
-- compared as jsonb's canonical text, so '{"id":42}' finds '{"id": 42}'; application entities
-- (tenancy.log_audit) compare as given. A NULL entity id finds the rows recorded without one.
create or replace function tenancy.audit_trail(p_entity_type text, p_entity_id text)
returns setof tenancy.audit_logs
language plpgsql
stable
set search_path = pg_catalog, pg_temp
set jit = off
as $$
declare
    v_id text := p_entity_id;
begin
    if p_entity_type is null then
        raise exception using
            errcode = '22023',
            message = 'the entity type of an audit trail must not be NULL';
    end if;
    if pg_catalog.starts_with(p_entity_type, '"') and v_id is not null then
        begin
            v_id := v_id::jsonb::text;
        exception when invalid_text_representation then
            raise exception using
                errcode = '22023',
                message = pg_catalog.format(
                    'the entity id of a row of %s must be its primary key as a JSON object such as {"id": 42}, got %L',
                    p_entity_type, pg_catalog.left(p_entity_id, 100)
                );
        end;
    end if;
    if v_id is null then
        return query
        select a.* from tenancy.audit_logs as a
        where a.entity_type operator (pg_catalog.=) p_entity_type and a.entity_id is null
        order by a.id;
    else
        return query
        select a.* from tenancy.audit_logs as a
        where a.entity_type operator (pg_catalog.=) p_entity_type and a.entity_id operator (pg_catalog.=) v_id
        order by a.id;
    end if;
end
$$;

comment on function tenancy.audit_trail(text, text) is
'The tenancy.audit_logs rows of one entity, by id (the order they were written): an '
'application entity of tenancy.log_audit (''user'', ''auth0|1b2c…'') or a table row '
'(''"app"."projects"'', ''{"id": 42}''; the id is compared as canonical JSON). Runs as the caller: '
'owners and admins see their tenant''s rows, tenancy_auditor every tenant''s, anyone else none. '
'22023 for a NULL entity type or a table row''s id that is not JSON.';

revoke all on function tenancy.audit_trail(text, text) from public;
grant execute on function tenancy.audit_trail(text, text)
to tenancy_app, tenancy_service, tenancy_auditor;
