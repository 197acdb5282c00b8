-- tenancy.request_metadata: the request metadata tenancy.set_request_metadata set in this transaction, or {}.

-- set_request_metadata stores '<transaction start in epoch seconds>|<json>'; a value with another
-- tag (left in the session by set_config(..., false), on a pooled connection) is ignored, never
-- parsed. One SQL expression without a SET clause, every name schema-qualified, so that the
-- audit trigger and the functions writing audit rows get it inlined.
create or replace function tenancy.request_metadata()
returns jsonb
language sql
stable
parallel restricted
as $$
    select case
        when pg_catalog.starts_with(
            pg_catalog.current_setting('tenancy.request_metadata', true),
            (extract(epoch from pg_catalog.now()))::pg_catalog.text operator(pg_catalog.||) '|'
        )
            then pg_catalog.substr(
                pg_catalog.current_setting('tenancy.request_metadata', true),
                pg_catalog.length((extract(epoch from pg_catalog.now()))::pg_catalog.text) operator(pg_catalog.+) 2
            )::pg_catalog.jsonb
        else '{}'::pg_catalog.jsonb
    end
$$;

comment on function tenancy.request_metadata() is
'The request metadata tenancy.set_request_metadata set in this transaction (a JSON object), or '
'{} when none was: a value set otherwise, or left in the session by an earlier transaction, is '
'ignored.';

revoke all on function tenancy.request_metadata() from public;
grant execute on function tenancy.request_metadata() to tenancy_app, tenancy_service, tenancy_admin;
