"""``pgtenancy adopt``: the written migration, run with psql on real schemas, then generate + apply.

Each test gets a fresh database (a clone of the test template) holding an existing application
schema with rows in several tenants; it runs ``pgtenancy adopt`` as a DBA would, runs the file
with ``psql -f``, and checks the catalog and the data afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import run_cli

from pgtenancy import tenant_transaction, testing

PSQL = shutil.which("psql")
pytestmark = pytest.mark.skipif(PSQL is None, reason="psql is not installed")

# The multi-tenant tutorial schema of distributed PostgreSQL: bigint company_id, keys and
# foreign keys led by it already.
TUTORIAL = """
create table public.companies (
    id bigserial primary key, name text not null, image_url text,
    created_at timestamp not null default now(), updated_at timestamp not null default now()
);
create table public.campaigns (
    id bigserial, company_id bigint references public.companies (id), name text not null,
    cost_model text not null default 'cpc', state text not null default 'running',
    monthly_budget bigint, blacklisted_site_urls text[],
    created_at timestamp not null default now(), updated_at timestamp not null default now(),
    primary key (company_id, id)
);
create table public.ads (
    id bigserial, company_id bigint, campaign_id bigint, name text not null, image_url text,
    target_url text, impressions_count bigint default 0, clicks_count bigint default 0,
    created_at timestamp not null default now(), updated_at timestamp not null default now(),
    primary key (company_id, id),
    foreign key (company_id, campaign_id) references public.campaigns (company_id, id)
);
create table public.clicks (
    id bigserial, company_id bigint, ad_id bigint, clicked_at timestamp not null default now(),
    site_url text not null default 'https://example.com', cost_per_click_usd numeric(20, 10),
    user_ip inet not null default '127.0.0.1', user_data jsonb not null default '{}',
    primary key (company_id, id),
    foreign key (company_id, ad_id) references public.ads (company_id, id)
);
create table public.impressions (
    id bigserial, company_id bigint, ad_id bigint, seen_at timestamp not null default now(),
    site_url text not null default 'https://example.com',
    cost_per_impression_usd numeric(20, 10),
    user_ip inet not null default '127.0.0.1', user_data jsonb not null default '{}',
    primary key (company_id, id),
    foreign key (company_id, ad_id) references public.ads (company_id, id)
);
insert into public.companies (name) values ('Acme Corp'), ('Globex'), ('Initech');
insert into public.campaigns (company_id, name)
select c, 'campaign ' || g from generate_series(1, 3) as c, generate_series(1, 2) as g;
insert into public.ads (company_id, campaign_id, name)
select company_id, id, 'ad' from public.campaigns;
insert into public.clicks (company_id, ad_id)
select company_id, id from public.ads, generate_series(1, 5);
insert into public.impressions (company_id, ad_id)
select company_id, id from public.ads, generate_series(1, 5);
"""

TUTORIAL_SPEC = """
[tables."public.companies"]
tenant_column = "id"
[tables."public.campaigns"]
tenant_column = "company_id"
[tables."public.ads"]
tenant_column = "company_id"
[tables."public.clicks"]
tenant_column = "company_id"
[tables."public.impressions"]
tenant_column = "company_id"
"""

# The same application before it was laid out for tenants: keys by id alone, company_id only on
# campaigns, ads and clicks reach their company through their parents.
UNLED = """
create schema shop;
create table shop.companies (id bigserial primary key, name text not null);
create table shop.campaigns (
    id bigserial primary key,
    company_id bigint not null references shop.companies (id),
    name text not null,
    code text,
    constraint campaigns_code_key unique (code)
);
create table shop.ads (
    id bigserial primary key,
    campaign_id bigint not null references shop.campaigns (id) on delete cascade,
    name text not null
);
create index ads_name_idx on shop.ads (name);
create table shop.clicks (
    id bigserial primary key,
    ad_id bigint references shop.ads (id) on delete set null,
    clicked_at timestamptz not null default now()
);
create index clicks_clicked_at_idx on shop.clicks (clicked_at desc) where ad_id is not null;
insert into shop.companies (name) values ('Acme Corp'), ('Globex'), ('Initech');
insert into shop.campaigns (company_id, name, code)
select c, 'campaign ' || g, 'c' || c || '-' || g
from generate_series(1, 3) as c, generate_series(1, 2) as g;
insert into shop.ads (campaign_id, name) select id, 'ad ' || id from shop.campaigns;
insert into shop.clicks (ad_id) select a.id from shop.ads as a, generate_series(1, 40);
"""

UNLED_SPEC = """
[tables."shop.companies"]
tenant_column = "id"
[tables."shop.campaigns"]
tenant_column = "company_id"
[tables."shop.ads"]
tenant_column = "company_id"
[tables."shop.clicks"]
tenant_column = "company_id"
tenant_from = { column = "ad_id", references = "shop.ads" }
"""

# A uuid tenant_id: nullable on projects (filled), missing on tasks and comments (backfilled
# through their parents); the organisations become tenants with their own ids.
LEGACY = """
create schema legacy;
create table legacy.orgs (id uuid primary key, slug text not null unique, name text not null);
create table legacy.projects (
    id bigint generated by default as identity primary key,
    tenant_id uuid references legacy.orgs (id),
    name text not null unique
);
create table legacy.tasks (
    id bigint generated by default as identity primary key,
    project_id bigint not null references legacy.projects (id) on delete cascade,
    title text not null,
    created_at timestamptz not null default now()
);
create index tasks_created_at_idx on legacy.tasks (created_at);
create index tasks_lower_title_idx on legacy.tasks (lower(title)) where title <> '';
create table legacy.comments (
    id bigint generated by default as identity primary key,
    task_id bigint not null references legacy.tasks (id) on delete cascade,
    body text not null
);
insert into legacy.orgs values
    ('11111111-1111-4111-8111-111111111111', 'acme', 'Acme Corp'),
    ('22222222-2222-4222-8222-222222222222', 'globex', 'Globex');
insert into legacy.projects (tenant_id, name)
select o.id, o.slug || ' project ' || g from legacy.orgs as o, generate_series(1, 2) as g;
insert into legacy.tasks (project_id, title)
select 1 + g % 4, 'task ' || g from generate_series(1, 400) as g;
insert into legacy.comments (task_id, body)
select 1 + g % 400, 'ok' from generate_series(1, 800) as g;
"""

LEGACY_SPEC = """
[tables."legacy.projects"]
[tables."legacy.tasks"]
[tables."legacy.comments"]
"""

ORGS_MAP = "select slug, id, name from legacy.orgs"

# Every key (primary, unique, foreign) and index of the schema's tables, with its first column
# and the tenant column of its table: what adoption must leave tenant-led.
KEYS = """
select c.conrelid::regclass::text, c.conname::text, c.contype::text, a.attname::text,
       c.convalidated
from pg_constraint as c
join pg_attribute as a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
where c.connamespace = %s::regnamespace and c.contype in ('p', 'u', 'f')
order by 1, 2
"""
INDEXES = """
select i.indrelid::regclass::text, ic.relname::text, a.attname::text, i.indisvalid
from pg_index as i
join pg_class as ic on ic.oid = i.indexrelid
left join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
where ic.relnamespace = %s::regnamespace
order by 1, 2
"""


@pytest.fixture
def db(pgtenancy_make_database: Callable[[], str]) -> str:
    """A fresh database of the test template (pgtenancy migrated), for this test alone."""
    return pgtenancy_make_database()


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.encode())


def rows(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(query, params).fetchall()]


def adopt(url: str, spec: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("adopt", "--spec", str(spec), "--out", str(out), *extra, "--database-url", url)


def psql(url: str, path: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """The migration run as its header says: psql -f, stopping at the first error."""
    assert PSQL is not None
    return subprocess.run(
        [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path), "-d", url],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_spec(tmp_path: Path, text: str) -> Path:
    spec = tmp_path / "tenancy.toml"
    spec.write_text(text)
    return spec


NO_TRANSACTION = (
    "create unique index concurrently",
    "create index concurrently",
    "call ",
    "drop index concurrently",
)


def assert_marked(text: str) -> None:
    """Each statement that cannot run in a transaction follows a comment marking it so."""
    lines = text.splitlines()
    found = 0
    for i, line in enumerate(lines):
        if line.startswith(NO_TRANSACTION):
            found += 1
            j = i - 1
            while j >= 0 and lines[j].startswith("--") and "[no transaction]" not in lines[j]:
                j -= 1
            assert j >= 0 and "[no transaction]" in lines[j], line
    assert found


def tenant_column_of(table: str) -> str:
    return (
        "id" if table.endswith(".companies") else "tenant_id" if "legacy" in table else "company_id"
    )


def assert_tenant_led(url: str, schema: str) -> None:
    """Every primary key, unique constraint, foreign key between tenant tables and index of
    the schema's tables starts with the table's tenant column; everything is valid."""
    for table, name, kind, first, validated in rows(url, KEYS, (schema,)):
        if table == "legacy.orgs" or (kind == "f" and name == "projects_tenant_id_fkey"):
            continue  # not a tenant table; a key to it
        assert first == tenant_column_of(table), (table, name, kind, first)
        assert validated, (table, name)
    for table, name, first, valid in rows(url, INDEXES, (schema,)):
        if table != "legacy.orgs":
            assert first == tenant_column_of(table), (table, name, first)
        assert valid, (table, name)


def structure(url: str, schema: str) -> list[tuple[Any, ...]]:
    """Keys, indexes, columns' nullability and constraints, to compare runs."""
    return [
        *rows(url, KEYS, (schema,)),
        *rows(url, INDEXES, (schema,)),
        *rows(
            url,
            "select attrelid::regclass::text, attname::text, attnotnull, atttypid::regtype::text "
            "from pg_attribute where attrelid in (select oid from pg_class "
            "where relnamespace = %s::regnamespace and relkind = 'r') and attnum > 0 "
            "and not attisdropped order by 1, 2",
            (schema,),
        ),
        *rows(
            url,
            "select conrelid::regclass::text, conname::text from pg_constraint "
            "where connamespace = %s::regnamespace and contype = 'c' order by 1, 2",
            (schema,),
        ),
    ]


# -- the tutorial schema: keys lead already, tenants from the companies -----------------------


def test_tutorial_schema_gets_its_tenants_and_nothing_else_changes(db: str, tmp_path: Path) -> None:
    execute(db, TUTORIAL)
    before = structure(db, "public")
    spec, out = write_spec(tmp_path, TUTORIAL_SPEC), tmp_path / "0042_adopt.sql"
    res = adopt(db, spec, out, "--tenant-map", "select id, name from public.companies")
    assert res.returncode == 0, res.stderr
    assert "0 tenant column(s) to add" in res.stdout and "3 tenant(s) to create" in res.stdout
    text = out.read_text()
    assert "create index" not in text and "alter table" not in text  # keys lead already
    run = psql(db, out)
    assert run.returncode == 0, run.stderr
    assert structure(db, "public") == before
    tenants = rows(
        db,
        "select t.key::text, t.slug::text, t.name::text, t.status::text from tenancy.tenants "
        "as t where t.key is not null order by t.key",
    )
    assert tenants == [
        ("1", "acme-corp-1", "Acme Corp", "active"),
        ("2", "globex-2", "Globex", "active"),
        ("3", "initech-3", "Initech", "active"),
    ]
    # every company_id of every table names a tenant by its key
    orphans = rows(
        db,
        "select count(*) from public.clicks as c "
        "where tenancy.tenant_id_for_key(c.company_id::text) is null",
    )
    assert orphans == [(0,)]
    # a second run creates nothing more; adopt again says the keys are present
    again = psql(db, out)
    assert again.returncode == 0, again.stderr
    assert len(rows(db, "select 1 from tenancy.tenants where key is not null")) == 3
    res = adopt(db, spec, out, "--tenant-map", "select id, name from public.companies")
    assert res.returncode == 0, res.stderr
    assert "0 tenant(s) to create" in res.stdout
    assert "0 to create, 3 already present" in out.read_text()


# -- keys that do not lead, tenant columns to add and backfill ---------------------------------


def test_unled_bigint_schema_becomes_tenant_led_online(db: str, tmp_path: Path) -> None:
    execute(db, UNLED)
    spec, out = write_spec(tmp_path, UNLED_SPEC), tmp_path / "adopt.sql"
    res = adopt(db, spec, out, "--tenant-map", "select id, name from shop.companies")
    assert res.returncode == 0, res.stderr
    assert "2 tenant column(s) to add" in res.stdout
    text = out.read_text()
    # the file says how to run it, and marks what cannot run in a transaction
    assert "psql -v ON_ERROR_STOP=1 -f" in text and "NOT in one transaction" in text
    assert_marked(text)
    run = psql(db, out)
    assert run.returncode == 0, run.stderr
    assert_tenant_led(db, "shop")
    # the tenant columns: bigint, NOT NULL, no CHECK left behind
    cols = rows(
        db,
        "select attrelid::regclass::text, format_type(atttypid, atttypmod), attnotnull "
        "from pg_attribute where attname = 'company_id' and attrelid in "
        "('shop.campaigns'::regclass, 'shop.ads'::regclass, 'shop.clicks'::regclass) order by 1",
    )
    assert cols == [
        ("shop.ads", "bigint", True),
        ("shop.campaigns", "bigint", True),
        ("shop.clicks", "bigint", True),
    ]
    # every row got its parent's company, through two levels
    wrong = rows(
        db,
        "select count(*) from shop.clicks as k join shop.ads as a on a.id = k.ad_id "
        "join shop.campaigns as c on c.id = a.campaign_id "
        "where k.company_id <> c.company_id or a.company_id <> c.company_id",
    )
    assert wrong == [(0,)]
    assert rows(db, "select count(distinct company_id) from shop.clicks") == [(3,)]
    # the foreign keys keep their actions, now per tenant
    fks = dict(
        rows(
            db,
            "select conname::text, pg_get_constraintdef(oid) from pg_constraint "
            "where connamespace = 'shop'::regnamespace and contype = 'f'",
        )
    )
    assert fks["ads_campaign_id_fkey"] == (
        "FOREIGN KEY (company_id, campaign_id) REFERENCES shop.campaigns(company_id, id) "
        "ON DELETE CASCADE"
    )
    assert fks["clicks_ad_id_fkey"] == (
        "FOREIGN KEY (company_id, ad_id) REFERENCES shop.ads(company_id, id) "
        "ON DELETE SET NULL (ad_id)"
    )
    # a row written the old way (no company_id) gets it from its parent
    execute(db, "insert into shop.clicks (ad_id) values (1)")
    assert rows(db, "select company_id from shop.clicks order by id desc limit 1") == [(1,)]
    # deleting an ad keeps its clicks, in their company
    company = rows(db, "select company_id from shop.ads where id = 2")
    execute(db, "delete from shop.ads where id = 2")
    kept = rows(db, "select company_id, count(*) from shop.clicks where ad_id is null group by 1")
    assert kept == [(company[0][0], 40)]
    # running the file again changes nothing
    before = structure(db, "shop")
    again = psql(db, out)
    assert again.returncode == 0, again.stderr
    assert structure(db, "shop") == before
    # and adopt run again finds nothing left to do but the tenants, already there
    res = adopt(db, spec, tmp_path / "again.sql", "--tenant-map", "select id from shop.companies")
    assert res.returncode == 0, res.stderr
    assert "0 tenant column(s) to add, 0 backfill(s), 0 key(s)" in res.stdout, res.stdout
    assert "0 tenant(s) to create" in res.stdout


def test_uuid_schema_adopted_then_generated_and_applied_unedited(db: str, tmp_path: Path) -> None:
    execute(db, LEGACY)
    spec, out = write_spec(tmp_path, LEGACY_SPEC), tmp_path / "adopt.sql"
    res = adopt(db, spec, out, "--tenant-map", ORGS_MAP)
    assert res.returncode == 0, res.stderr
    run = psql(db, out)
    assert run.returncode == 0, run.stderr
    assert_tenant_led(db, "legacy")
    # the organisations are tenants, with their ids, their slugs as keys (valid slugs as is)
    assert rows(
        db,
        "select id::text, slug::text, key::text from tenancy.tenants "
        "where key is not null order by key",
    ) == [
        ("11111111-1111-4111-8111-111111111111", "acme", "acme"),
        ("22222222-2222-4222-8222-222222222222", "globex", "globex"),
    ]
    # generate + apply, unedited
    policies = tmp_path / "policies"
    gen = run_cli("generate", "--spec", str(spec), "--out", str(policies), "--database-url", db)
    assert gen.returncode == 0, gen.stderr
    applied = run_cli("apply", str(policies), "--database-url", db)
    assert applied.returncode == 0, applied.stderr
    # isolation holds: a trusted backend sees one tenant's rows, and writes into it
    name = f"t_adopt_{uuid.uuid4().hex[:8]}"
    execute(db, f"create role {name} login in role tenancy_service")
    execute(db, f"grant usage on schema legacy to {name}")
    service = testing.as_login(db, name)
    acme = uuid.UUID("11111111-1111-4111-8111-111111111111")
    expected = rows(
        db,
        "select count(*) from legacy.tasks as t join legacy.projects as p on p.id = t.project_id "
        "where p.tenant_id = %s",
        (acme,),
    )[0][0]
    assert 0 < expected < 400
    with psycopg.connect(service) as conn:
        with tenant_transaction(conn, acme):
            assert conn.execute("select count(*) from legacy.tasks").fetchone() == (expected,)
            assert conn.execute(
                "select count(distinct tenant_id) from legacy.comments"
            ).fetchone() == (1,)
            project = conn.execute("select min(id) from legacy.projects").fetchone()
            assert project is not None
            conn.execute(
                "insert into legacy.tasks (project_id, title) values (%s, 'new')", (project[0],)
            )
        with tenant_transaction(conn, acme):
            row = conn.execute("select tenant_id from legacy.tasks where title = 'new'").fetchone()
            assert row == (acme,)
    # without a context, nothing
    with psycopg.connect(service) as conn:
        assert conn.execute("select count(*) from legacy.tasks").fetchone() == (0,)


# -- the backfill: interrupted, resumed, and never blocking other writers ----------------------

SLOW = """
create function legacy.slow() returns trigger language plpgsql as $$
begin perform pg_sleep(0.002); return new; end $$;
create trigger slow before update on legacy.tasks for each row execute function legacy.slow();
insert into legacy.tasks (project_id, title)
select 1 + g % 4, 'bulk ' || g from generate_series(1, 2600) as g;
"""


def filled(url: str) -> int:
    """Tasks with a tenant (0 before the file has added the column)."""
    try:
        return int(rows(url, "select count(tenant_id) from legacy.tasks")[0][0])
    except psycopg.errors.UndefinedColumn:
        return 0


def test_an_interrupted_backfill_resumes_and_other_writers_are_not_blocked(
    db: str, tmp_path: Path
) -> None:
    execute(db, LEGACY)
    execute(db, SLOW)  # 3,000 tasks; each batch of 100 takes about 0.2 s
    spec, out = write_spec(tmp_path, LEGACY_SPEC), tmp_path / "adopt.sql"
    res = adopt(db, spec, out, "--batch-size", "100")
    assert res.returncode == 0, res.stderr
    assert PSQL is not None
    proc = subprocess.Popen(
        [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(out), "-d", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while filled(db) < 300:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # a writer to a row the backfill has not reached waits for no lock
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("set lock_timeout = '150ms'")
            started = time.monotonic()
            conn.execute("update legacy.tasks set title = 'edited' where id = 2900")
            assert time.monotonic() - started < 1.0
        # kill the session mid-way
        with psycopg.connect(db, autocommit=True) as conn:
            killed = conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where datname = current_database() and query like 'call tenancy_adopt.%'"
            ).fetchall()
        assert killed == [(True,)]
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = filled(db)
    # committed batches stay; the row written meanwhile got its tenant from the trigger
    assert 300 <= done < 3000
    assert rows(db, "select tenant_id is not null from legacy.tasks where id = 2900") == [(True,)]
    execute(db, "drop trigger slow on legacy.tasks")
    run = psql(db, out)
    assert run.returncode == 0, run.stderr
    assert "set on" in run.stderr
    assert filled(db) == 3000
    assert_tenant_led(db, "legacy")
    wrong = rows(
        db,
        "select count(*) from legacy.tasks as t join legacy.projects as p on p.id = t.project_id "
        "where t.tenant_id <> p.tenant_id",
    )
    assert wrong == [(0,)]


def test_rows_without_a_parent_tenant_stop_the_file_with_their_count(
    db: str, tmp_path: Path
) -> None:
    execute(db, LEGACY)
    execute(db, "update legacy.projects set tenant_id = null where id = 1")
    spec, out = write_spec(tmp_path, LEGACY_SPEC), tmp_path / "adopt.sql"
    assert adopt(db, spec, out).returncode == 0
    run = psql(db, out)
    assert run.returncode != 0
    assert "row(s) of legacy." in run.stderr and "have no tenant_id" in run.stderr, run.stderr
    # fixed, then run again: it finishes
    execute(
        db,
        "update legacy.projects set tenant_id = '22222222-2222-4222-8222-222222222222' "
        "where id = 1",
    )
    run = psql(db, out)
    assert run.returncode == 0, run.stderr
    assert_tenant_led(db, "legacy")


# -- refusals: each names the value, exits 2 and writes nothing --------------------------------


def refused(db: str, tmp_path: Path, spec_text: str, *extra: str) -> str:
    spec, out = write_spec(tmp_path, spec_text), tmp_path / "adopt.sql"
    res = adopt(db, spec, out, *extra)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stdout == ""
    assert not out.exists()
    assert f"nothing was written to {out}" in res.stderr
    return res.stderr


def test_an_unknown_table_is_named(db: str, tmp_path: Path) -> None:
    execute(db, LEGACY)
    err = refused(db, tmp_path, LEGACY_SPEC + '[tables."legacy.nope"]\n[tables."legacy.gone"]\n')
    assert "table 'legacy.nope': does not exist in the database" in err
    assert "table 'legacy.gone': does not exist in the database" in err  # every problem, one run


def test_an_unsupported_tenant_column_type_is_named(db: str, tmp_path: Path) -> None:
    execute(db, "create table public.notes (id bigint primary key, org varchar(20) not null)")
    err = refused(db, tmp_path, '[tables."public.notes"]\ntenant_column = "org"\n')
    assert "tenant column 'org' is character varying(20)" in err
    assert "uuid" in err and "bigint" in err


def test_a_missing_tenant_column_without_a_source_is_refused_with_the_fix(
    db: str, tmp_path: Path
) -> None:
    execute(db, "create table public.notes (id bigint primary key, body text)")
    err = refused(db, tmp_path, '[tables."public.notes"]\n')
    assert "has no column 'tenant_id'" in err and "tenant_from = {" in err


def test_tenant_from_naming_an_unlisted_table_is_refused(db: str, tmp_path: Path) -> None:
    execute(db, LEGACY)
    err = refused(
        db,
        tmp_path,
        '[tables."legacy.comments"]\n'
        'tenant_from = { column = "task_id", references = "legacy.tasks" }\n',
    )
    assert "tenant_from references 'legacy.tasks', which is not a table of the spec" in err


def test_a_foreign_key_from_an_unlisted_table_to_a_rebuilt_key_is_refused(
    db: str, tmp_path: Path
) -> None:
    execute(db, LEGACY)
    err = refused(db, tmp_path, '[tables."legacy.projects"]\n[tables."legacy.tasks"]\n')
    assert "foreign key comments_task_id_fkey of legacy.comments references (id)" in err
    assert "list legacy.comments in the spec" in err


def test_a_table_without_a_primary_key_is_refused(db: str, tmp_path: Path) -> None:
    execute(db, "create table public.logs (tenant_id uuid not null, line text)")
    err = refused(db, tmp_path, '[tables."public.logs"]\n')
    assert "table 'public.logs': has no primary key" in err


def test_a_failing_tenant_map_query_is_named(db: str, tmp_path: Path) -> None:
    execute(db, TUTORIAL)
    err = refused(
        db, tmp_path, TUTORIAL_SPEC, "--tenant-map", "select id, nam from public.companies"
    )
    assert "--tenant-map query failed" in err and '"nam"' in err


def test_a_tenant_map_with_a_duplicate_key_is_refused(db: str, tmp_path: Path) -> None:
    execute(db, TUTORIAL)
    err = refused(
        db,
        tmp_path,
        TUTORIAL_SPEC,
        "--tenant-map",
        "select id % 2, name from public.companies",
    )
    assert "--tenant-map returns the key '1' more than once" in err


def test_a_tenant_map_may_not_write(db: str, tmp_path: Path) -> None:
    execute(db, TUTORIAL)
    err = refused(
        db,
        tmp_path,
        TUTORIAL_SPEC,
        "--tenant-map",
        "with d as (delete from public.clicks returning company_id) select company_id from d",
    )
    assert "--tenant-map query failed" in err
    assert rows(db, "select count(*) from public.clicks") == [(30,)]


def test_a_tenant_map_with_an_unusable_column_is_refused(db: str, tmp_path: Path) -> None:
    execute(db, TUTORIAL)
    err = refused(
        db, tmp_path, TUTORIAL_SPEC, "--tenant-map", "select id, created_at from public.companies"
    )
    assert "--tenant-map column 2 (created_at) is timestamp without time zone" in err


def test_an_invalid_tenant_from_is_refused_by_the_spec(db: str, tmp_path: Path) -> None:
    err = refused(db, tmp_path, '[tables."public.x"]\ntenant_from = "public.y"\n')
    assert "tenant_from must be tenant_from = { column =" in err


def test_a_refused_run_leaves_an_existing_file_alone(db: str, tmp_path: Path) -> None:
    out = tmp_path / "adopt.sql"
    out.write_text("-- reviewed\n")
    spec = write_spec(tmp_path, '[tables."public.nope"]\n')
    res = adopt(db, spec, out)
    assert res.returncode == 2
    assert out.read_text() == "-- reviewed\n"


def test_adopt_never_writes_to_the_database(db: str, tmp_path: Path) -> None:
    execute(db, UNLED)
    before = structure(db, "shop")
    spec, out = write_spec(tmp_path, UNLED_SPEC), tmp_path / "adopt.sql"
    assert adopt(db, spec, out, "--tenant-map", "select id from shop.companies").returncode == 0
    assert structure(db, "shop") == before
    assert rows(db, "select count(*) from tenancy.tenants where key is not null") == [(0,)]
    assert rows(db, "select to_regnamespace('tenancy_adopt')") == [(None,)]


def test_adopt_needs_a_database_url(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    spec = write_spec(tmp_path, LEGACY_SPEC)
    res = run_cli("adopt", "--spec", str(spec), "--out", str(tmp_path / "a.sql"), env=env)
    assert res.returncode == 2 and "which database?" in res.stderr
    assert not (tmp_path / "a.sql").exists()


def test_a_foreign_key_reaching_the_tenant_column_another_way_is_refused(
    db: str, tmp_path: Path
) -> None:
    execute(
        db,
        "create table public.orgs (id bigint primary key);"
        "create table public.notes (id bigint primary key, org_id bigint not null,"
        " partner_id bigint references public.orgs (id));",
    )
    err = refused(
        db,
        tmp_path,
        '[tables."public.orgs"]\ntenant_column = "id"\n'
        '[tables."public.notes"]\ntenant_column = "org_id"\n',
    )
    assert "foreign key notes_partner_id_fkey references public.orgs.id" in err


def test_a_composite_primary_key_is_walked_in_batches(db: str, tmp_path: Path) -> None:
    execute(
        db,
        "create table public.accounts (id bigint primary key, tenant_id uuid not null);"
        "create table public.entries (kind text, id bigint, account_id bigint not null"
        " references public.accounts (id), primary key (kind, id));"
        "insert into public.accounts select g, gen_random_uuid() from generate_series(1, 5) g;"
        "insert into public.entries select k, g, 1 + g % 5"
        " from unnest(array['a', 'b', 'c']) k, generate_series(1, 250) g;",
    )
    spec = write_spec(tmp_path, '[tables."public.accounts"]\n[tables."public.entries"]\n')
    out = tmp_path / "adopt.sql"
    res = adopt(db, spec, out, "--batch-size", "7")
    assert res.returncode == 0, res.stderr
    run = psql(db, out)
    assert run.returncode == 0, run.stderr
    assert "public.entries: tenant_id set on 750 row(s)" in run.stderr
    assert rows(
        db,
        "select count(*) from public.entries as e join public.accounts as a"
        " on a.id = e.account_id where e.tenant_id = a.tenant_id",
    ) == [(750,)]
    assert rows(
        db,
        "select pg_get_constraintdef(oid) from pg_constraint"
        " where conrelid = 'public.entries'::regclass and contype = 'p'",
    ) == [("PRIMARY KEY (tenant_id, kind, id)",)]


def test_an_index_adopt_cannot_rebuild_is_left_for_review_and_named(
    db: str, tmp_path: Path
) -> None:
    execute(
        db,
        "create table public.docs (id bigint primary key, tenant_id uuid not null, title text);"
        "create index docs_title_hash on public.docs using hash (title);",
    )
    spec, out = write_spec(tmp_path, '[tables."public.docs"]\n'), tmp_path / "adopt.sql"
    res = adopt(db, spec, out)
    assert res.returncode == 0, res.stderr
    assert "warning: public.docs: index docs_title_hash (hash) does not lead with tenant_id" in (
        res.stderr
    )
    text = out.read_text()
    assert "-- REVIEW public.docs" in text
    run = psql(db, out)
    assert run.returncode == 0, run.stderr
    # the primary key was rebuilt; the hash index is untouched
    assert rows(
        db,
        "select indexrelid::regclass::text from pg_index where indrelid = 'public.docs'::regclass"
        " order by 1",
    ) == [("docs_pkey_tenant",), ("docs_title_hash",)]
