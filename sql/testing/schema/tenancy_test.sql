-- tenancy_test: pgTAP checks of tenant tables, installed into test databases only (never by migrate).

create schema if not exists tenancy_test;
comment on schema tenancy_test is
'pgtenancy test checks: functions returning pgTAP lines that test a tenant table (structure, '
'isolation per member role, inserts). Installed into test databases only, after pgTAP.';

-- Every function pins search_path to pg_catalog, public, pg_temp: pgTAP's assertions (ok, is,
-- policies_are ...) are called unqualified from public, where the test template installs pgTAP,
-- and pgTAP finds its own helpers through the same path. Everything else is schema-qualified.
-- The checks switch to tenancy_app and tenancy_service part way and call each other then.
grant usage on schema tenancy_test to public;
