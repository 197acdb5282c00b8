# pgtenancy: `make demo` and `make test` are the quick start; both run `setup` when needed.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON ?= python3
SQLFLUFF_PATHS := sql examples/app bench tests/pgtap tests/fixtures

# Commands act only on a database they are given: DATABASE_URL when set, else the throwaway
# cluster's URL (started on demand), passed explicitly.
DB_URL = "$${DATABASE_URL:-$$($(BIN)/pgtenancy db url)}"
WITH_DB = DATABASE_URL=$(DB_URL)
# say so before the throwaway cluster is created or started (initdb takes a few seconds)
SAY_DB = [ -n "$${DATABASE_URL:-}" ] || $(BIN)/pgtenancy db status | grep -q '^running' \
	|| echo "starting the throwaway PostgreSQL cluster (pgtenancy db start; make db-stop stops it)"

LINTS := lint-sqlfluff lint-ruff lint-mypy lint-generated lint-pgspot

.PHONY: help setup demo test test-checks test-pgtap test-py updatecheck lint $(LINTS) generate check-generated bench db \
	db-stop clean

help:
	@echo "make demo   - set up, start a throwaway PostgreSQL, migrate, and tell the isolation story"
	@echo "make test   - lint, pg_prove over tests/pgtap, pytest over tests/py, updatecheck"
	@echo "make lint   - sqlfluff, ruff, mypy, generated files up to date (and pgspot), side by side"
	@echo "make updatecheck - install the previous release, seed it, migrate to HEAD, run pgTAP"
	@echo "make bench  - RLS vs explicit WHERE latency ratios, audited vs plain writes, usage metering vs bare SQL, with pgbench; the outbox's enqueue cost and relay throughput"
	@echo "make generate - regenerate sql/policies, tests/fixtures (policies and pgTAP tests), examples/app/policies, the generator's golden cases"
	@echo "make db / make db-stop - start / stop the throwaway cluster"

$(STAMP): pyproject.toml
	@bash scripts/setup.sh "$(PYTHON)" "$(VENV)"
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	@$(SAY_DB); url=$(DB_URL) && $(PY) examples/app/demo.py --database-url "$$url"

db: $(STAMP)
	$(BIN)/pgtenancy db start

db-stop:
	@if [ -x $(BIN)/pgtenancy ]; then $(BIN)/pgtenancy db stop; else echo "not running"; fi

# The catalog is read from scratch databases built without the generated policies (see
# scripts/devdb.py); the generator's golden cases (tests/generator) render from their snapshots.
generate: $(STAMP)
	$(BIN)/pgtenancy generate --spec sql/tenancy.toml --out sql/policies --tests tests/pgtap/generated \
		--database-url "$$($(PY) scripts/devdb.py core)"
	$(BIN)/pgtenancy generate --flavour citus --spec sql/tenancy.toml --out sql/citus/policies \
		--database-url "$$($(PY) scripts/devdb.py core)"
	$(BIN)/pgtenancy generate --spec tests/fixtures/tenancy.toml --out tests/fixtures/policies \
		--tests tests/pgtap/generated --database-url "$$($(PY) scripts/devdb.py fixtures)"
	$(BIN)/pgtenancy generate --spec examples/app/tenancy.toml --out examples/app/policies \
		--database-url "$$($(PY) scripts/devdb.py app)"
	$(PY) tests/generator/golden.py

check-generated: $(STAMP)
	$(BIN)/pgtenancy generate --check --spec sql/tenancy.toml --out sql/policies \
		--tests tests/pgtap/generated --database-url "$$($(PY) scripts/devdb.py core)"
	$(BIN)/pgtenancy generate --check --flavour citus --spec sql/tenancy.toml --out sql/citus/policies \
		--database-url "$$($(PY) scripts/devdb.py core)"
	$(BIN)/pgtenancy generate --check --spec tests/fixtures/tenancy.toml --out tests/fixtures/policies \
		--tests tests/pgtap/generated --database-url "$$($(PY) scripts/devdb.py fixtures)"
	$(BIN)/pgtenancy generate --check --spec examples/app/tenancy.toml --out examples/app/policies \
		--database-url "$$($(PY) scripts/devdb.py app)"
	$(BIN)/pytest -q -p no:cacheprovider tests/generator

# The linters are independent: they run side by side, each saying when it starts and finishes
# (sqlfluff, the slowest, on every core).
lint: $(STAMP)
	@echo "lint: sqlfluff, ruff, mypy, generated files and pgspot, in parallel"
	@$(MAKE) --no-print-directory -j5 $(LINTS)
	@echo "lint: all passed"

# quietly RUN a command; print its output only when it fails
QUIETLY = out=$$(mktemp); run() { "$$@" >"$$out" 2>&1 || { cat "$$out"; rm -f "$$out"; exit 1; }; \
	rm -f "$$out"; }

# sqlfluff -v names each file as it finishes: count them as progress, keep the rest for failures.
lint-sqlfluff: $(STAMP)
	@start=$$SECONDS; total=$$(find $(SQLFLUFF_PATHS) -name '*.sql' | wc -l); out=$$(mktemp); \
	echo "  sqlfluff: $$total files on every core ..."; \
	$(BIN)/sqlfluff lint -v --processes 0 --disable-progress-bar $(SQLFLUFF_PATHS) 2>&1 \
	  | awk -v n="$$total" -v out="$$out" '{ print > out } /^== \[/ { c++; \
	      if (c % 15 == 0 && c < n) { printf "  sqlfluff: %d/%d files\n", c, n; fflush() } }'; \
	rc=$${PIPESTATUS[0]}; [ "$$rc" = 0 ] || { grep -v '^== \[.*\] PASS$$' "$$out"; rm -f "$$out"; exit 1; }; \
	rm -f "$$out"; echo "  sqlfluff: $$total files passed in $$((SECONDS - start)) s"

lint-ruff: $(STAMP)
	@$(BIN)/ruff check -q pgtenancy generator tests examples bench scripts
	@$(BIN)/ruff format -q --check pgtenancy generator tests examples bench scripts
	@echo "  ruff: passed"

lint-mypy: $(STAMP)
	@start=$$SECONDS; $(QUIETLY); run $(BIN)/mypy; echo "  mypy: passed in $$((SECONDS - start)) s"

lint-generated: $(STAMP)
	@start=$$SECONDS; export $(WITH_DB); $(QUIETLY); run $(MAKE) --no-print-directory check-generated; \
	echo "  generated files: up to date ($$((SECONDS - start)) s)"

lint-pgspot: $(STAMP)
	@$(QUIETLY); run bash scripts/pgspot.sh $(BIN)/pgspot; echo "  pgspot: passed"

# The suite runs twice: on a freshly migrated database, and on one that already held tenants
# and rows when every function and policy was applied again.
test-pgtap: $(STAMP)
	@$(SAY_DB); export $(WITH_DB); for mode in fresh seeded; do \
	  echo "== pgTAP on a $$mode database"; \
	  url=$$($(PY) -m pgtenancy.testing create $$( [ $$mode = seeded ] && echo --seeded )) || exit 1; \
	  set -- $$($(PY) -c 'import sys; from psycopg.conninfo import conninfo_to_dict as c; \
	    p = c(sys.argv[1]); print(p.get("host", "localhost"), p.get("port", 5432), p["dbname"], \
	    p.get("user", "postgres"))' "$$url"); \
	  pg_prove --recurse --ext .sql -h "$$1" -p "$$2" -d "$$3" -U "$$4" tests/pgtap; rc=$$?; \
	  $(PY) -m pgtenancy.testing drop "$$url"; \
	  [ $$rc = 0 ] || exit $$rc; \
	done

# Two pytest processes, each taking whole files in turn, each on a cluster of its own
# (tests/py/conftest.py), apart from lint, pgTAP and the update check on the throwaway cluster.
test-py: $(STAMP)
	@$(SAY_DB); echo "== pytest tests/py"; export $(WITH_DB); $(BIN)/pytest -n 2 --dist loadfile tests/py

# The previous release installed and seeded, migrated to this checkout, then the pgTAP suite.
updatecheck: $(STAMP)
	@$(SAY_DB); $(PY) scripts/updatecheck.py --database-url $(DB_URL)

# pytest (most of the time, mostly waiting on the database) runs side by side with the rest:
# lint, pgTAP and the update check, one after the other; their lines interleave as they come.
# The throwaway cluster is started first, so that the two do not both start it.
test: $(STAMP)
	@$(SAY_DB); [ -n "$${DATABASE_URL:-}" ] || $(BIN)/pgtenancy db url >/dev/null
	@$(MAKE) --no-print-directory -j2 test-py test-checks

test-checks: $(STAMP)
	@$(MAKE) --no-print-directory lint test-pgtap updatecheck

bench: $(STAMP)
	@$(SAY_DB); export $(WITH_DB); $(PY) bench/run.py && $(PY) bench/audit.py && $(PY) bench/usage.py \
		&& $(PY) bench/outbox.py

clean: db-stop
	rm -rf $(VENV) .pgtenancy
