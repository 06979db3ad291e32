# Every target creates or refreshes the pinned environment first, so
# each one works on a fresh machine with only Python 3.11+ installed.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
RUN := $(UV) run --frozen --no-sync

.PHONY: env demo test test-slow lint typecheck bench-cancellation \
	bench-jobs bench-jobs-postgres bench-waiters bench-dashboard chaos clean bytecode

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

# Benchmarks time the start of worker processes: give every system the
# compiled bytecode an installed application has. (Where
# PYTHONDONTWRITEBYTECODE is set, as on CI machines, nothing would be
# cached, and every start would compile every module again.)
$(VENV)/.compiled: $(VENV)/.synced
	$(RUN) python -m compileall -q -j 0 $(VENV)/lib > /dev/null
	touch $@

bytecode: $(VENV)/.compiled
	$(RUN) python -m compileall -q -j 0 src bench apps > /dev/null

bench-jobs: env bytecode
	$(RUN) python -m bench.jobs

# Needs PostgreSQL (BENCH_POSTGRES_URL) and Redis (BENCH_REDIS_URL, an
# empty database) on 127.0.0.1; add ARGS=--million for the deep queue.
bench-jobs-postgres: env bytecode
	$(RUN) python -m bench.jobs_postgres $(ARGS)

# 6,000 Client.wait calls in one process on PostgreSQL (BENCH_POSTGRES_URL):
# an unrelated read meanwhile, and how soon each wait returns.
bench-waiters: env
	$(RUN) python -m bench.waiters $(ARGS)

# Dashboard page times with 1,000,000 jobs in SQLite (filled once, kept
# in /tmp); ARGS="--jobs N" for fewer, ARGS="--postgres URL" to add one.
bench-dashboard: env
	$(RUN) python -m bench.dashboard $(ARGS)

# Fault, load and abuse scenarios at full size (~30 min), then their
# figures into docs/chaos.md; BACKBURNER_CHAOS_SCALE=0.1 for a shorter run.
CHAOS_RESULTS := bench/results/chaos
chaos: env
	@command -v faketime >/dev/null 2>&1 || { \
		echo "make chaos: the clock scenario needs libfaketime;" \
			"install it first (apt-get install -y faketime)" >&2; \
		exit 1; }
	rm -rf $(CHAOS_RESULTS)
	BACKBURNER_CHAOS_SCALE=$${BACKBURNER_CHAOS_SCALE:-1} \
	BACKBURNER_CHAOS_RESULTS=$(CHAOS_RESULTS) \
		$(RUN) pytest -m chaos -p no:cacheprovider tests/chaos; \
	status=$$?; $(RUN) python -m bench.chaos_report $(CHAOS_RESULTS) && \
		exit $$status

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
	find src bench apps tests -name __pycache__ -type d -prune -exec rm -rf {} +
