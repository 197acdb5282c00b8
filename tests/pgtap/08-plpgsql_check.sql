-- plpgsql_check over every PL/pgSQL function of the tenancy and tenancy_test schemas: no errors, no warnings.
-- Runs as the superuser pg_prove connects as: creating the extension needs it (rolled back).

begin;
select plan(2);

create extension if not exists plpgsql_check;

-- Every PL/pgSQL function of tenancy and tenancy_test (the test checks) is checked; trigger
-- functions against a generated tenant table (tenancy.tg_audit with its transition tables), the
-- one on tenancy.tenants against that table, the audit trail's guard against tenancy.audit_logs.
create temporary table checked on commit drop as
select
    p.oid::regprocedure as fn,
    r.level,
    r.message,
    r.lineno
from pg_catalog.pg_proc as p
cross join
    lateral plpgsql_check_function_tb(
        p.oid,
        case
            when p.oid = 'tenancy.tg_domain_claims_tenant_status()'::regprocedure then 'tenancy.tenants'::regclass
            when p.oid = 'tenancy.tg_audit_immutable()'::regprocedure then 'tenancy.audit_logs'::regclass
            when p.oid = 'tenancy.tg_usage_alert_outbox()'::regprocedure then 'tenancy.usage_alerts'::regclass
            when p.oid = 'tenancy.tg_tenant_group_identify()'::regprocedure then 'tenancy.tenants'::regclass
            when p.oid = 'tenancy.tg_security_event_outbox()'::regprocedure then 'tenancy.security_events'::regclass
            when p.prorettype = 'trigger'::regtype then 'app.documents'::regclass
            else 0
        end,
        -- The audit trigger reads the transition tables its generated triggers name.
        oldtable => case when p.oid = 'tenancy.tg_audit()'::regprocedure then 'tenancy_old' end,
        newtable => case
            when p.oid = 'tenancy.tg_audit()'::regprocedure then 'tenancy_new'
            when p.oid = 'tenancy.tg_usage_alert_outbox()'::regprocedure then 'new_alerts'
        end
    ) as r
where
    p.pronamespace in ('tenancy'::regnamespace, 'tenancy_test'::regnamespace)
    and p.prolang = (
        select l.oid from pg_catalog.pg_language as l
        where l.lanname = 'plpgsql'
    );

-- 1: the check ran over the functions (there are more than ten PL/pgSQL functions)
select ok(
    (
        select count(*) from pg_catalog.pg_proc as p
        where
            p.pronamespace = 'tenancy'::regnamespace
            and p.prolang = (
                select l.oid from pg_catalog.pg_language as l
                where l.lanname = 'plpgsql'
            )
    ) > 10,
    'tenancy has PL/pgSQL functions to check'
);

-- 2: no finding at all (expected: none)
select is_empty(
    'select fn::text, level, message, lineno from checked',
    'plpgsql_check finds no error or warning in any tenancy or tenancy_test function'
);

select * from finish();
rollback;
