-- tenancy_test: pgTAP checks of tenant tables, installed into test databases only (never by migrate).

create schema if not exists tenancy_test;
comment on schema tenancy_test is
'pgtenancy test checks: functions returning pgTAP lines that test a tenant table (structure, '
'isolation per member role, inserts). Installed into test databases only, after pgTAP.';

-- The checks switch to tenancy_app and tenancy_service part way and call each other then.
grant usage on schema tenancy_test to public;
