# ACIR — two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEB_PACKAGES := mricron-data dataset-fashion-mnist insighttoolkit5-examples
DATA := data/brain-atlas
CHECKPOINT := checkpoints/acir-compact-64.pt
PORT ?= 8000
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install system-packages data model db run serve test test-sqlite lint format bench clean

install: $(STAMP)

# torch is installed first with an exact pin: that version is the CPU build on this disk,
# anything looser pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

system-packages:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

data: install system-packages
	test -f $(DATA)/manifest.csv || $(BIN)/acir data brain-atlas --out $(DATA)

# The compact checkpoint is committed; this only retrains when it is missing.
model: data
	test -f $(CHECKPOINT) || $(BIN)/acir train --data $(DATA) --out $(CHECKPOINT)

db: install
	$(BIN)/acir db upgrade

run: model db
	$(BIN)/acir index add $(DATA) --split db --checkpoint $(CHECKPOINT)
	$(BIN)/acir serve --port $(PORT) --example $(DATA)/images/query

serve: install
	$(BIN)/acir serve --port $(PORT)

# Runs the whole suite on SQLite, and on PostgreSQL too when a server answers.
test: install system-packages
	@if $(BIN)/python -c "import psycopg,sys; psycopg.connect('$(subst postgresql+psycopg,postgresql,$(TEST_POSTGRES_URL))').close()" 2>/dev/null; then \
	  echo "PostgreSQL reachable: tests run on SQLite and PostgreSQL"; \
	  ACIR_TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) $(BIN)/pytest; \
	else \
	  echo "PostgreSQL not reachable: tests run on SQLite only"; $(BIN)/pytest; \
	fi

test-sqlite: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: model
	$(BIN)/python bench/encode_latency.py --preset compact
	$(BIN)/python bench/serve.py --checkpoint $(CHECKPOINT)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
