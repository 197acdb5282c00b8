-- tenancy.context_checked: the verified context value of this transaction, or NULL.

-- The context value is 'v1|tenant|user|role|epoch|nonce', set with SET LOCAL by
-- tenancy.establish_context, which also stores its fingerprint (SHA-256 over the value and the
-- transaction start time) with setval() on an unlogged sequence. currval() of that sequence is
-- private to the session and only tenancy_owner may change it, so a value written by
-- set_config() with another tenant does not match, a value replayed in a later transaction
-- does not match, and a value made before a tenant or membership change (epoch) is
-- revalidated against the tables.
-- Plain SQL, no SET clause: the planner inlines it, so a policy pays for one expression
-- evaluated once per statement. It is VOLATILE because currval() is.
create or replace function tenancy.context_checked(p_roles text[])
returns text
language sql
volatile
as $$
    select case
        when pg_catalog.current_setting('tenancy.context', true) operator(pg_catalog.~~) 'v1|%'
            then case
                when pg_catalog.int8send(pg_catalog.currval('tenancy.context_fingerprint'::pg_catalog.regclass))
                    operator(pg_catalog.=) tenancy.context_fingerprint_of(
                        pg_catalog.current_setting('tenancy.context', true)
                    )
                    then case
                        when (
                            p_roles is null
                            or pg_catalog.split_part(pg_catalog.current_setting('tenancy.context', true), '|', 4)
                            operator(pg_catalog.=) 'service'
                            or pg_catalog.split_part(pg_catalog.current_setting('tenancy.context', true), '|', 4)
                            operator(pg_catalog.=) any(p_roles)
                        )
                        and (
                            pg_catalog.split_part(pg_catalog.current_setting('tenancy.context', true), '|', 5)
                            operator(pg_catalog.=) pg_catalog.pg_sequence_last_value(
                                'tenancy.context_epoch'::pg_catalog.regclass
                            )::pg_catalog.text
                            or tenancy.context_revalidate(pg_catalog.current_setting('tenancy.context', true))
                        )
                            then pg_catalog.current_setting('tenancy.context', true)
                    end
            end
    end
$$;

comment on function tenancy.context_checked(text[]) is
'pgtenancy internal: the context value when it was set by pgtenancy in this transaction, is '
'still valid, and its role is one of p_roles (NULL: any role); NULL otherwise.';

revoke all on function tenancy.context_checked(text[]) from public;
grant execute on function tenancy.context_checked(text[])
to tenancy_app, tenancy_service, tenancy_admin, tenancy_auditor;
