# The two commands a newcomer needs:  make run  (whole system, locally)   make test  (everything CI runs)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: install kafka-libs lint test test-unit run stop simulate bench contracts clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed  ## Python dependencies into .venv

kafka-libs: install  ## Kafka broker jars from Maven Central into .cache/kafka-libs (git-ignored)
	$(BIN)/chiso infra fetch-kafka

lint: install  ## ruff, mypy --strict, import-linter
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: install kafka-libs lint  ## lint, then unit + integration + e2e tests on a real Kafka broker and PostgreSQL
	$(BIN)/pytest

test-unit: install  ## unit tests only (no broker, no database)
	$(BIN)/pytest tests/unit

run: install kafka-libs  ## start Kafka + PostgreSQL (kept in .cache/infra), provision topics, run all services
	@# the applicant-pseudonym and survey-link keys: yours if set, else random ones kept in .cache (stable across runs)
	mkdir -p .cache; [ -s .cache/dossiers-pseudonym.key ] || $(PY) -c 'import secrets; print(secrets.token_hex(32))' > .cache/dossiers-pseudonym.key; \
	export DOSSIERS_PSEUDONYM_SECRET="$${DOSSIERS_PSEUDONYM_SECRET:-$$(cat .cache/dossiers-pseudonym.key)}"; \
	[ -s .cache/surveys-token.key ] || $(PY) -c 'import secrets; print(secrets.token_hex(32))' > .cache/surveys-token.key; \
	export SURVEYS_TOKEN_SECRET="$${SURVEYS_TOKEN_SECRET:-$$(cat .cache/surveys-token.key)}"; \
	eval "$$($(BIN)/chiso infra up)"; \
	$(BIN)/chiso topics provision; \
	$(BIN)/chiso run all

stop: install  ## stop the local Kafka broker and PostgreSQL started by `make run`
	$(BIN)/chiso infra down

# optional, next to a running `make run`: e.g. make simulate SIM_ARGS="--province 01 --days 30 --rate 200"
SIM_ARGS ?= --province 01 --days 30 --communes 20 --rate 100
simulate: install  ## province traffic (dossiers, SIPAS responses, plan tasks) into the services of `make run`
	eval "$$($(BIN)/chiso infra env)"; \
	export SURVEYS_TOKEN_SECRET="$${SURVEYS_TOKEN_SECRET:-$$(cat .cache/surveys-token.key 2>/dev/null)}"; \
	$(BIN)/chiso simulate $(SIM_ARGS)

bench: install kafka-libs  ## benchmarks on a real broker and database (figures go to BENCHMARKS.md)
	$(PY) -m bench.run

contracts: install  ## regenerate JSON Schemas and AsyncAPI documents after changing contracts/
	$(BIN)/chiso contracts generate

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
