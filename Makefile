# Every target creates or refreshes the pinned environment first, so
# each one works on a fresh machine with only Python 3.11+ installed.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
RUN := $(UV) run --frozen --no-sync

.PHONY: env demo test test-slow lint typecheck bench-cancellation \
	bench-jobs bench-jobs-postgres chaos clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check \
		-r requirements-bootstrap.txt

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --all-extras --python $(VENV)/bin/python
	touch $@

env: $(VENV)/.synced

# The reference app (apps/catalogue); the older cancellation-only demo
# is still there: $(RUN) python -m backburner.demo
demo: env
	PYTHONPATH=apps/catalogue $(RUN) python -m catalogue

lint: env
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: env
	$(RUN) mypy

test: lint typecheck
	$(RUN) pytest

test-slow: env
	$(RUN) pytest -m slow

bench-cancellation: env
	$(RUN) python -m bench.cancellation

bench-jobs: env
	$(RUN) python -m bench.jobs

# Needs PostgreSQL (BENCH_POSTGRES_URL) and Redis (BENCH_REDIS_URL, an
# empty database) on 127.0.0.1; add ARGS=--million for the deep queue.
bench-jobs-postgres: env
	$(RUN) python -m bench.jobs_postgres $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
