-- pgtenancy on Citus: distribute this database (run once on the coordinator, as a superuser).
--
--     psql -v ON_ERROR_STOP=1 -d DATABASE -f sql/citus/distribute.sql
--
-- Before: pgtenancy migrated; the Citus flavour of every tenant table's policies applied (the
-- checked-in sql/citus/policies/ for pgtenancy's own tables, `pgtenancy generate --flavour
-- citus` for the application's); the workers added (citus_add_node). The steps are
-- tenancy.citus_distribution_plan(), which this script prints and then executes, one statement
-- at a time, only when the citus extension exists: on plain PostgreSQL it prints the plan and
-- stops, so the plan can be read (and tested) anywhere. A plan with a problem (a tenant table
-- whose policies Citus would refuse, an inheritance child) is refused before anything is done.
-- The steps are idempotent only up to Citus: a table already distributed makes
-- create_distributed_table fail, so run it once, on a database not yet distributed.
\set ON_ERROR_STOP on
\pset pager off
set client_min_messages = warning;

\echo 'pgtenancy: the distribution plan (tenancy.citus_distribution_plan())'
select
    p.step,
    p.action,
    coalesce(p.relation::text, '') as relation,
    coalesce(p.distribution_column::text, '') as "column",
    coalesce(p.colocate_with::text, '') as colocate_with,
    coalesce(p.statement, '') as statement,
    coalesce(p.reason, '') as reason
from tenancy.citus_distribution_plan() as p
order by p.step;

select
    exists(
        select from tenancy.citus_distribution_plan() as p
        where p.action = 'problem'
    ) as has_problems,
    exists(
        select from pg_catalog.pg_extension as e
        where e.extname = 'citus'
    ) as has_citus
\gset

\if :has_problems
\echo 'pgtenancy: the plan has problems (action problem above): nothing was done'
do $$ begin raise exception using errcode = '55000', message = 'the distribution plan has problems'; end $$;
\endif

\if :has_citus
\echo 'pgtenancy: citus is installed: executing the plan'
-- Citus refuses to distribute a table with triggers unless this is on (the guard triggers of the
-- generated policy files, the platform tables' own); it applies to this session only.
set citus.enable_unsafe_triggers = on; -- noqa: PRS
select p.statement
from tenancy.citus_distribution_plan() as p
where p.statement is not null
order by p.step
\gexec
\echo 'pgtenancy: distributed; now run sql/citus/verify.sql'
\else
\echo 'pgtenancy: the citus extension is not installed here: plan printed, nothing executed'
\endif
