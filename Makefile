# pgtenancy: `make demo` and `make test` are the quick start; both run `setup` when needed.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON ?= python3
SQLFLUFF_PATHS := sql examples/app bench tests/pgtap

.PHONY: help setup demo test test-pgtap test-py lint generate check-generated bench db db-stop clean

help:
	@echo "make demo   - set up, start a throwaway PostgreSQL, migrate, and tell the isolation story"
	@echo "make test   - lint, pg_prove over tests/pgtap, pytest over tests/py"
	@echo "make lint   - sqlfluff, ruff, mypy, and generated files up to date"
	@echo "make bench  - RLS vs explicit WHERE latency ratios with pgbench"
	@echo "make generate - regenerate sql/policies and the example app's policies and tests"
	@echo "make db / make db-stop - start / stop the throwaway cluster"

$(STAMP): pyproject.toml
	@bash scripts/setup.sh "$(PYTHON)" "$(VENV)"
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) examples/app/demo.py

db: $(STAMP)
	$(BIN)/pgtenancy db start

db-stop:
	@if [ -x $(BIN)/pgtenancy ]; then $(BIN)/pgtenancy db stop; else echo "not running"; fi

generate: $(STAMP)
	$(BIN)/pgtenancy generate --spec sql/tenancy.toml --out sql/policies --tests tests/pgtap/generated \
		--database-url "$$($(PY) scripts/devdb.py core)"
	$(BIN)/pgtenancy generate --spec examples/app/tenancy.toml --out examples/app/policies \
		--tests tests/pgtap/generated --database-url "$$($(PY) scripts/devdb.py app)"

check-generated: $(STAMP)
	$(BIN)/pgtenancy generate --check --spec sql/tenancy.toml --out sql/policies \
		--tests tests/pgtap/generated --database-url "$$($(PY) scripts/devdb.py core)"
	$(BIN)/pgtenancy generate --check --spec examples/app/tenancy.toml --out examples/app/policies \
		--tests tests/pgtap/generated --database-url "$$($(PY) scripts/devdb.py app)"

lint: $(STAMP)
	$(BIN)/sqlfluff lint $(SQLFLUFF_PATHS)
	$(BIN)/ruff check pgtenancy generator tests examples bench scripts
	$(BIN)/ruff format --check pgtenancy generator tests examples bench scripts
	$(BIN)/mypy
	bash scripts/pgspot.sh $(BIN)/pgspot
	$(MAKE) --no-print-directory check-generated

# The suite runs twice: on a freshly migrated database, and on one that already held tenants
# and rows when every function and policy was applied again.
test-pgtap: $(STAMP)
	@for mode in fresh seeded; do \
	  echo "== pgTAP on a $$mode database"; \
	  url=$$($(PY) -m pgtenancy.testing create $$( [ $$mode = seeded ] && echo --seeded )) || exit 1; \
	  set -- $$($(PY) -c 'import sys; from psycopg.conninfo import conninfo_to_dict as c; \
	    p = c(sys.argv[1]); print(p.get("host", "localhost"), p.get("port", 5432), p["dbname"], \
	    p.get("user", "postgres"))' "$$url"); \
	  pg_prove --recurse --ext .sql -h "$$1" -p "$$2" -d "$$3" -U "$$4" tests/pgtap; rc=$$?; \
	  $(PY) -m pgtenancy.testing drop "$$url"; \
	  [ $$rc = 0 ] || exit $$rc; \
	done

test-py: $(STAMP)
	$(BIN)/pytest tests/py

test: lint test-pgtap test-py

bench: $(STAMP)
	$(PY) bench/run.py

clean: db-stop
	rm -rf $(VENV) .pgtenancy
